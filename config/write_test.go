package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestWriteRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{name: "defaults", edit: func(*Config) {}},
		{
			name: "everything changed",
			edit: func(c *Config) {
				c.API = APIConfig{
					Listen: "/run/b.sock", StreamAddress: "::1", StreamPort: "10010",
					StreamTLSCert: "/c", StreamTLSKey: "/k", MetricsAddress: "[::1]:9090",
				}
				c.Storage = StorageConfig{Driver: "vfs", Root: "/r", RunRoot: "/rr", DriverOptions: []string{"a=b", "c=d"}}
				c.Image.PinnedImages = []string{"registry.k8s.io/pause:3.10", "quay.io/x/y@sha256:0123"}
				c.Image.AuthFile = "/auth.json"
				c.Image.PullProgressTimeout = Duration{90*time.Second + 5*time.Millisecond}
				c.Runtime.Handlers["kata.qemu"] = RuntimeHandler{Path: "/k"}
				c.Runtime.Handlers["crun"] = RuntimeHandler{Path: "/opt/crun"}
				c.Runtime.Handlers[`odd "name"`] = RuntimeHandler{Path: "/o", Root: "/o"}
				c.Runtime.DefaultHandler = "kata.qemu"
				c.Runtime.LogSizeMax = 1 << 40
				c.Runtime.PidsLimit = 0
				c.Runtime.DefaultCapabilities = nil
				c.Runtime.DefaultSysctls = []string{"net.ipv4.ping_group_range=0 2147483647"}
				c.Runtime.DropInfra = false
				c.Runtime.SeccompProfile = "/seccomp.json"
				c.Network.CNIPluginDirs = []string{"/only"}
				c.Log = LogConfig{Level: "debug", Format: "json"}
			},
		},
		{
			name: "strings that need escaping",
			edit: func(c *Config) {
				c.Image.PauseImage = "quote\" backslash\\ tab\t newline\n cr\r nul\x00 del\x7f bell\a é 日本 🚢"
				c.Storage.DriverOptions = []string{`'single'`, `"""triple"""`, "# not a comment", "[not.a.table]"}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := Default()
			tc.edit(want)
			var out bytes.Buffer
			if err := Write(&out, want); err != nil {
				t.Fatalf("Write: %v", err)
			}
			path := filepath.Join(t.TempDir(), "berth.toml")
			if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := Load(path, "", true)
			if err != nil {
				t.Fatalf("Load of written config: %v\n%s", err, out.String())
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the config:\ngot  %+v\nwant %+v\n%s", got, want, out.String())
			}
		})
	}
}

func TestWriteLayout(t *testing.T) {
	var out bytes.Buffer
	if err := Write(&out, Default()); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"# Berth configuration",
		"\n# Where Berth listens: the CRI socket, the streaming server and metrics.\n[api]\n# Path of the CRI gRPC unix socket.\nlisten = \"/run/berth/berth.sock\"\n",
		"\n# Runtime handlers by name (the RuntimeClass handler).\n[runtime.handlers.crun]\n",
		"\n[runtime.handlers.runc]\n# Path of the OCI runtime binary.\npath = \"/usr/bin/runc\"\n",
		"pull_progress_timeout = \"1m0s\"\n",
		"log_size_max = -1\n",
		"drop_infra = true\n",
		"default_capabilities = [\n  \"CHOWN\",\n",
		"cni_plugin_dirs = [\"/opt/cni/bin\", \"/usr/lib/cni\"]\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	for line := range strings.SplitSeq(s, "\n") {
		if strings.HasPrefix(line, "#") && len(line) > maxLineLen {
			t.Errorf("comment line longer than %d: %q", maxLineLen, line)
		}
	}
	// Keys of [runtime] must come before its sub-tables, or TOML would file
	// them under the last handler.
	if strings.Index(s, "shm_size =") > strings.Index(s, "[runtime.handlers.") {
		t.Error("a [runtime] key is written after [runtime.handlers.*]")
	}
}

// TestSchemaDocumented keeps `berth config` and the generated reference
// complete: every key needs a comment tag.
func TestSchemaDocumented(t *testing.T) {
	var walk func(key string, typ reflect.Type)
	walk = func(key string, typ reflect.Type) {
		for _, f := range tomlFields(typ) {
			k := strings.TrimPrefix(key+"."+f.name, ".")
			if f.comment == "" {
				t.Errorf("%s has no comment tag", k)
			}
			ft := typ.Field(f.index).Type
			if ft.Kind() == reflect.Map {
				ft = ft.Elem()
				k += ".<name>"
			}
			if isTable(ft) {
				walk(k, ft)
			}
		}
	}
	walk("", reflect.TypeFor[Config]())
}

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		in      any
		want    string
		wantErr bool
	}{
		{in: "a\"b", want: `"a\"b"`},
		{in: "\x01", want: `"\u0001"`},
		{in: int8(-3), want: "-3"},
		{in: uint16(7), want: "7"},
		{in: uint64(1 << 63), wantErr: true},
		{in: 2.0, want: "2.0"},
		{in: 1e300, want: "1e+300"},
		{in: 0.5, want: "0.5"},
		{in: []int{1, 2}, want: "[1, 2]"},
		{in: []bool{}, want: "[]"},
		{in: Duration{time.Second}, want: `"1s"`},
		{in: map[string]int{}, wantErr: true},
	} {
		got, err := formatValue(reflect.ValueOf(tc.in))
		if tc.wantErr {
			if err == nil {
				t.Errorf("formatValue(%#v) = %s, want error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("formatValue(%#v) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatKey(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{in: []string{"runtime", "handlers", "crun"}, want: "runtime.handlers.crun"},
		{in: []string{"runtime", "handlers", "kata.qemu"}, want: `runtime.handlers."kata.qemu"`},
		{in: []string{"a-b_C9"}, want: "a-b_C9"},
		{in: []string{""}, want: `""`},
		{in: []string{"a b"}, want: `"a b"`},
	} {
		if got := formatKey(tc.in); got != tc.want {
			t.Errorf("formatKey(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
