package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(*Config)
		wantErr []string // substrings; nil means valid
	}{
		{name: "defaults are valid", edit: func(*Config) {}},
		{
			name: "everything optional set",
			edit: func(c *Config) {
				c.API.StreamTLSCert, c.API.StreamTLSKey = "/etc/berth/tls.crt", "/etc/berth/tls.key"
				c.API.MetricsAddress = ":9090"
				c.API.StreamPort = "65535"
				c.Storage.Driver = "vfs"
				c.Storage.DriverOptions = []string{"overlay.mountopt=nodev"}
				c.Image.AuthFile = "/etc/berth/auth.json"
				c.Runtime.DefaultSysctls = []string{"net.ipv4.ping_group_range=0 2147483647"}
				c.Runtime.CgroupManager = "systemd"
				c.Runtime.LogSizeMax = 8192
				c.Runtime.PidsLimit = 0
				c.Runtime.ShmSize = "1g"
				c.Log.Level, c.Log.Format = "debug", "json"
			},
		},
		{
			name:    "default handler not configured",
			edit:    func(c *Config) { c.Runtime.DefaultHandler = "foo" },
			wantErr: []string{`runtime.default_handler: "foo" is not a configured handler (have: crun, runc)`},
		},
		{
			name:    "no handlers at all",
			edit:    func(c *Config) { c.Runtime.Handlers = nil },
			wantErr: []string{"(have: none)"},
		},
		{
			name: "handler paths",
			edit: func(c *Config) {
				c.Runtime.Handlers["kata.qemu"] = RuntimeHandler{Path: "kata-runtime", Root: "run/kata"}
				c.Runtime.Handlers["empty"] = RuntimeHandler{}
			},
			wantErr: []string{
				`runtime.handlers."kata.qemu".path: must be an absolute path, got "kata-runtime"`,
				`runtime.handlers."kata.qemu".root: must be an absolute path`,
				`runtime.handlers.empty.path: must be set`,
			},
		},
		{
			name:    "cgroup manager",
			edit:    func(c *Config) { c.Runtime.CgroupManager = "cgroupv2" },
			wantErr: []string{`runtime.cgroup_manager: must be "cgroupfs" or "systemd", got "cgroupv2"`},
		},
		{
			name: "log level and format",
			edit: func(c *Config) { c.Log.Level, c.Log.Format = "trace", "yaml" },
			wantErr: []string{
				`log.level: must be "debug", "info", "warn" or "error", got "trace"`,
				`log.format: must be "text" or "json", got "yaml"`,
			},
		},
		{
			name:    "storage driver",
			edit:    func(c *Config) { c.Storage.Driver = "btrfs" },
			wantErr: []string{`storage.driver: must be "", "overlay" or "vfs", got "btrfs"`},
		},
		{
			name:    "driver option form",
			edit:    func(c *Config) { c.Storage.DriverOptions = []string{"nodev"} },
			wantErr: []string{`storage.driver_options: "nodev" is not in key=value form`},
		},
		{
			name: "relative and empty paths",
			edit: func(c *Config) {
				c.API.Listen = "berth.sock"
				c.Storage.Root = ""
				c.Storage.RunRoot = "run"
				c.Runtime.StateDir = "./state"
				c.Runtime.Conmon = "conmon"
				c.Network.CNIPluginDirs = []string{"/opt/cni/bin", "bin"}
				c.Image.SignaturePolicy = "policy.json"
			},
			wantErr: []string{
				`api.listen: must be an absolute path, got "berth.sock"`,
				`storage.root: must be set`,
				`storage.runroot: must be an absolute path`,
				`runtime.state_dir: must be an absolute path`,
				`runtime.conmon: must be an absolute path`,
				`network.cni_plugin_dirs: must be an absolute path, got "bin"`,
				`image.signature_policy: must be an absolute path`,
			},
		},
		{
			name:    "no cni plugin dirs",
			edit:    func(c *Config) { c.Network.CNIPluginDirs = nil },
			wantErr: []string{"network.cni_plugin_dirs: must name at least one directory"},
		},
		{
			name: "stream port",
			edit: func(c *Config) { c.API.StreamPort = "65536" },
			wantErr: []string{
				`api.stream_port: port "65536" is not a number from 0 to 65535`,
			},
		},
		{
			name:    "named stream port",
			edit:    func(c *Config) { c.API.StreamPort = "http" },
			wantErr: []string{`api.stream_port: port "http"`},
		},
		{
			name:    "metrics address",
			edit:    func(c *Config) { c.API.MetricsAddress = "localhost" },
			wantErr: []string{`api.metrics_address: "localhost" is not host:port`},
		},
		{
			name:    "tls key without cert",
			edit:    func(c *Config) { c.API.StreamTLSKey = "/k" },
			wantErr: []string{"api.stream_tls_cert: must be set when api.stream_tls_key is"},
		},
		{
			name:    "tls cert without key",
			edit:    func(c *Config) { c.API.StreamTLSCert = "/c" },
			wantErr: []string{"api.stream_tls_key: must be set when api.stream_tls_cert is"},
		},
		{
			name:    "shm size",
			edit:    func(c *Config) { c.Runtime.ShmSize = "64q" },
			wantErr: []string{`runtime.shm_size: invalid size "64q"`},
		},
		{
			name:    "zero shm size",
			edit:    func(c *Config) { c.Runtime.ShmSize = "0" },
			wantErr: []string{`runtime.shm_size: must be positive`},
		},
		{
			name:    "negative pull timeout",
			edit:    func(c *Config) { c.Image.PullProgressTimeout = Duration{-time.Second} },
			wantErr: []string{"image.pull_progress_timeout: must not be negative, got -1s"},
		},
		{
			name: "nri",
			edit: func(c *Config) {
				c.NRI.Enable, c.NRI.SocketPath, c.NRI.PluginPath = true, "", "plugins"
				c.NRI.RegistrationTimeout, c.NRI.RequestTimeout = Duration{}, Duration{-time.Second}
			},
			wantErr: []string{"nri.socket_path: must be set", `nri.plugin_path: must be an absolute path, got "plugins"`,
				"nri.plugin_registration_timeout: must be positive, got 0s", "nri.plugin_request_timeout: must be positive, got -1s"},
		},
		{
			name:    "nri socket too long",
			edit:    func(c *Config) { c.NRI.SocketPath = "/" + strings.Repeat("s", 120) },
			wantErr: []string{"nri.socket_path:", "longer than a unix socket path"},
		},
		{
			name:    "sysctl form",
			edit:    func(c *Config) { c.Runtime.DefaultSysctls = []string{"net.ipv4.ip_forward=1", "kernel.shmmax", "=1"} },
			wantErr: []string{`"kernel.shmmax" is not in name=value form`, `"=1" is not in name=value form`},
		},
		{
			name:    "log size below conmon's buffer",
			edit:    func(c *Config) { c.Runtime.LogSizeMax = 100 },
			wantErr: []string{"runtime.log_size_max: must be negative (unlimited) or at least 8192, got 100"},
		},
		{
			name:    "pids limit",
			edit:    func(c *Config) { c.Runtime.PidsLimit = -2 },
			wantErr: []string{"runtime.pids_limit"},
		},
		{
			name:    "capability name",
			edit:    func(c *Config) { c.Runtime.DefaultCapabilities = []string{"CHOWN", "NET ADMIN"} },
			wantErr: []string{`runtime.default_capabilities: "NET ADMIN" is not a capability name`},
		},
		{
			name:    "pause image",
			edit:    func(c *Config) { c.Image.PauseImage = "" },
			wantErr: []string{"image.pause_image: must be set"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.edit(c)
			err := c.Validate()
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate succeeded, want %q", tc.wantErr)
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			// Every line is one problem, and each starts with its key.
			for line := range strings.SplitSeq(err.Error(), "\n") {
				if key, _, _ := strings.Cut(line, ": "); strings.ContainsAny(key, " ") {
					t.Errorf("problem %q does not start with a key", line)
				}
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "0", want: 0},
		{in: "65536", want: 65536},
		{in: "100b", want: 100},
		{in: "512k", want: 512 << 10},
		{in: "64m", want: 64 << 20},
		{in: "64M", want: 64 << 20},
		{in: "64mb", want: 64 << 20},
		{in: "64MiB", want: 64 << 20},
		{in: "2g", want: 2 << 30},
		{in: "", wantErr: true},
		{in: "m", wantErr: true},
		{in: "-1m", wantErr: true},
		{in: "1.5g", wantErr: true},
		{in: "64 m", wantErr: true},
		{in: "64t", wantErr: true},
		{in: "64i", wantErr: true},
		{in: "9223372036854775807", want: 9223372036854775807},
		{in: "9223372036854775808", wantErr: true},
		{in: "9000000000g", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseSize(%q) = %d, want error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}
