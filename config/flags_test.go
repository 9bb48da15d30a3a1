package config

import (
	"flag"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadWithFlags(t *testing.T) {
	for _, tc := range []struct {
		name     string
		main     string // content of berth.toml; "" means no file
		dropIn   string // content of berth.toml.d/10.toml; "" means none
		args     []string
		want     func(*Config)
		wantPath bool // the main file is reported as used
		wantErr  string
	}{
		{
			name: "defaults without files or flags",
			want: func(*Config) {},
		},
		{
			name:     "flag beats drop-in beats file",
			main:     "[log]\nlevel = \"warn\"\nformat = \"json\"\n[api]\nlisten = \"/run/file.sock\"\n",
			dropIn:   "[log]\nlevel = \"error\"\n",
			args:     []string{"--log-level", "debug"},
			wantPath: true,
			want: func(c *Config) {
				c.Log.Level = "debug"
				c.Log.Format = "json"
				c.API.Listen = "/run/file.sock"
			},
		},
		{
			name: "unset flags leave the file alone",
			main: "[runtime]\ncgroup_manager = \"systemd\"\n",
			args: []string{"--listen=/run/flag.sock"},
			want: func(c *Config) {
				c.Runtime.CgroupManager = "systemd"
				c.API.Listen = "/run/flag.sock"
			},
			wantPath: true,
		},
		{
			name: "every flag",
			args: []string{
				"--listen", "/l", "--stream-address", "0.0.0.0", "--stream-port", "10010",
				"--metrics-address", ":9090", "--root", "/r", "--runroot", "/rr",
				"--storage-driver", "vfs", "--registries-conf", "/reg", "--signature-policy", "/pol",
				"--pause-image", "pause:1", "--auth-file", "/auth", "--pull-progress-timeout", "0",
				"--state-dir", "/s", "--run-dir", "/rd", "--default-runtime", "runc",
				"--conmon", "/c", "--cgroup-manager", "systemd", "--cni-config-dir", "/cni",
				"--cni-plugin-dir", "/p1", "--cni-plugin-dir", "/p2",
				"--enable-nri", "--nri-socket", "/nri.sock",
				"--log-level", "warn", "--log-format", "json",
			},
			want: func(c *Config) {
				c.API = APIConfig{Listen: "/l", StreamAddress: "0.0.0.0", StreamPort: "10010", MetricsAddress: ":9090"}
				c.Storage.Root, c.Storage.RunRoot, c.Storage.Driver = "/r", "/rr", "vfs"
				c.Image.RegistriesConf, c.Image.SignaturePolicy = "/reg", "/pol"
				c.Image.PauseImage, c.Image.AuthFile = "pause:1", "/auth"
				c.Image.PullProgressTimeout = Duration{}
				c.Runtime.StateDir, c.Runtime.RunDir, c.Runtime.DefaultHandler = "/s", "/rd", "runc"
				c.Runtime.Conmon, c.Runtime.CgroupManager = "/c", "systemd"
				c.Network.CNIConfigDir = "/cni"
				c.Network.CNIPluginDirs = []string{"/p1", "/p2"}
				c.NRI.Enable, c.NRI.SocketPath = true, "/nri.sock"
				c.Log = LogConfig{Level: "warn", Format: "json"}
			},
		},
		{
			name: "plugin dir flag replaces the file's list",
			main: "[network]\ncni_plugin_dirs = [\"/a\", \"/b\"]\n",
			args: []string{"--cni-plugin-dir=/c"},
			want: func(c *Config) {
				c.Network.CNIPluginDirs = []string{"/c"}
			},
			wantPath: true,
		},
		{
			name: "pull timeout flag",
			args: []string{"--pull-progress-timeout=5m"},
			want: func(c *Config) { c.Image.PullProgressTimeout = Duration{5 * time.Minute} },
		},
		{
			name:     "explicit config that exists",
			main:     "[log]\nformat = \"json\"\n",
			args:     []string{"--config", "$dir/berth.toml"},
			want:     func(c *Config) { c.Log.Format = "json" },
			wantPath: true,
		},
		{
			name:    "explicit config must exist",
			args:    []string{"--config", "$dir/missing.toml"},
			wantErr: "missing.toml",
		},
		{
			name:    "flags are validated",
			args:    []string{"--cgroup-manager", "cgroupv2", "--log-level", "loud"},
			wantErr: "invalid configuration: runtime.cgroup_manager",
		},
		{
			name:    "file errors are returned",
			main:    "[runtime]\nfoo = 1\n",
			wantErr: `unknown key "runtime.foo"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{}
			if tc.main != "" {
				files["berth.toml"] = tc.main
			}
			if tc.dropIn != "" {
				files["berth.toml.d/10.toml"] = tc.dropIn
			}
			writeFiles(t, dir, files)

			fs := flag.NewFlagSet("berth", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f := RegisterFlags(fs)
			// Point the defaults into dir, as if the test's files were the
			// system's: --config stays "not given" unless a case passes it.
			f.configPath = filepath.Join(dir, "berth.toml")
			f.configDir = filepath.Join(dir, "berth.toml.d")
			var args []string
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "$dir", dir))
			}
			if err := fs.Parse(args); err != nil {
				t.Fatal(err)
			}

			got, path, err := LoadWithFlags(fs, f)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LoadWithFlags error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadWithFlags: %v", err)
			}
			want := Default()
			tc.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, want)
			}
			if wantPath := filepath.Join(dir, "berth.toml"); tc.wantPath && path != wantPath {
				t.Errorf("path = %q, want %q", path, wantPath)
			} else if !tc.wantPath && path != "" {
				t.Errorf("path = %q, want none", path)
			}
		})
	}
}

func TestConfigPath(t *testing.T) {
	for _, tc := range []struct {
		args         []string
		wantPath     string
		wantExplicit bool
		wantDir      string
	}{
		{args: nil, wantPath: DefaultConfigPath, wantDir: DefaultConfigDir},
		{args: []string{"--config", DefaultConfigPath}, wantPath: DefaultConfigPath, wantExplicit: true, wantDir: DefaultConfigDir},
		{args: []string{"-config=/x.toml", "--config-dir=/x.d"}, wantPath: "/x.toml", wantExplicit: true, wantDir: "/x.d"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("berth", flag.ContinueOnError)
			f := RegisterFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			path, explicit := f.ConfigPath()
			if path != tc.wantPath || explicit != tc.wantExplicit || f.ConfigDir() != tc.wantDir {
				t.Errorf("got %q %v %q, want %q %v %q", path, explicit, f.ConfigDir(), tc.wantPath, tc.wantExplicit, tc.wantDir)
			}
		})
	}
}

func TestLoadWithFlagsNeedsParse(t *testing.T) {
	fs := flag.NewFlagSet("berth", flag.ContinueOnError)
	if _, _, err := LoadWithFlags(fs, RegisterFlags(fs)); err == nil {
		t.Fatal("LoadWithFlags before Parse succeeded")
	}
}
