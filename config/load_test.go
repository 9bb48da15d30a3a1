package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeFiles creates files (name → content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name     string
		main     *string // nil: no main file
		dropIns  map[string]string
		noDir    bool // no drop-in directory at all
		required bool
		want     func(*Config) // edits Default() into the expected config
		wantErr  []string      // substrings of the error; "$main" is the main file
		notErr   []string      // substrings the error must not have
	}{
		{
			name: "no files gives the defaults",
			want: func(*Config) {},
		},
		{
			name:  "absent drop-in directory is fine",
			noDir: true,
			want:  func(*Config) {},
		},
		{
			name:     "required main file missing",
			required: true,
			wantErr:  []string{"$main", "does not exist"},
		},
		{
			name:     "required main file present",
			main:     ptr("[log]\nlevel = \"debug\"\n"),
			required: true,
			want:     func(c *Config) { c.Log.Level = "debug" },
		},
		{
			name: "file overrides only the keys it sets",
			main: ptr(`
[api]
listen = "/run/x.sock"
[runtime]
pids_limit = 1024
drop_infra = false
[image]
pull_progress_timeout = "90s"
`),
			want: func(c *Config) {
				c.API.Listen = "/run/x.sock"
				c.Runtime.PidsLimit = 1024
				c.Runtime.DropInfra = false
				c.Image.PullProgressTimeout = Duration{90 * time.Second}
			},
		},
		{
			name: "drop-ins override the file in lexical order",
			main: ptr("[log]\nlevel = \"debug\"\nformat = \"json\"\n"),
			dropIns: map[string]string{
				"20-b.toml": "[log]\nlevel = \"error\"\n",
				"10-a.toml": "[log]\nlevel = \"warn\"\n[api]\nstream_port = \"10010\"\n",
			},
			want: func(c *Config) {
				c.Log.Level = "error"
				c.Log.Format = "json"
				c.API.StreamPort = "10010"
			},
		},
		{
			name: "only *.toml drop-ins are read",
			dropIns: map[string]string{
				"a.toml.bak":       "[log]\nlevel = \"warn\"\n",
				"README":           "not toml",
				"sub.toml/x.toml":  "[log]\nlevel = \"warn\"\n",
				"50-format.toml":   "[log]\nformat = \"json\"\n",
				"60-nothing.toml":  "# only a comment\n",
				"70-empty.toml":    "",
				"80-section.toml":  "[runtime]\n",
				"90-handlers.toml": "[runtime.handlers]\n",
			},
			want: func(c *Config) { c.Log.Format = "json" },
		},
		{
			name:    "a drop-in adds a handler and keeps the others",
			dropIns: map[string]string{"kata.toml": "[runtime.handlers.kata]\npath = \"/usr/bin/kata-runtime\"\n"},
			want: func(c *Config) {
				c.Runtime.Handlers["kata"] = RuntimeHandler{Path: "/usr/bin/kata-runtime"}
			},
		},
		{
			name: "a drop-in changes one field of a handler",
			main: ptr("[runtime.handlers.crun]\npath = \"/opt/crun\"\n"),
			dropIns: map[string]string{
				"a.toml": "[runtime.handlers.crun]\nroot = \"/run/crun2\"\n",
			},
			want: func(c *Config) {
				c.Runtime.Handlers["crun"] = RuntimeHandler{Path: "/opt/crun", Root: "/run/crun2"}
			},
		},
		{
			name: "inline and dotted keys",
			main: ptr(`runtime.default_handler = "kata"
runtime.handlers = { kata = { path = "/k" }, runc = { root = "/r" } }
`),
			want: func(c *Config) {
				c.Runtime.DefaultHandler = "kata"
				c.Runtime.Handlers["kata"] = RuntimeHandler{Path: "/k"}
				c.Runtime.Handlers["runc"] = RuntimeHandler{Path: "/usr/bin/runc", Root: "/r"}
			},
		},
		{
			name: "a list replaces the list",
			main: ptr("[network]\ncni_plugin_dirs = [\"/a\"]\n[runtime]\ndefault_capabilities = []\n"),
			want: func(c *Config) {
				c.Network.CNIPluginDirs = []string{"/a"}
				c.Runtime.DefaultCapabilities = nil
			},
		},
		{
			name:    "unknown top-level key",
			main:    ptr("listen = \"/x\"\n"),
			wantErr: []string{`$main: unknown key "listen"`},
		},
		{
			name:    "unknown key in a section, every one reported",
			main:    ptr("[runtime]\nfoo = 1\nbar = 2\n"),
			wantErr: []string{`$main: unknown key "runtime.foo"`, `$main: unknown key "runtime.bar"`},
		},
		{
			name:    "unknown table reported once",
			main:    ptr("[runtime.foo]\na = 1\nb = 2\n"),
			wantErr: []string{`unknown key "runtime.foo"`},
			notErr:  []string{"runtime.foo.a", "runtime.foo.b"},
		},
		{
			name:    "unknown key in a handler",
			dropIns: map[string]string{"k.toml": "[runtime.handlers.kata]\npth = \"/k\"\n"},
			wantErr: []string{"k.toml: unknown key \"runtime.handlers.kata.pth\""},
		},
		{
			name:    "key in the wrong case",
			main:    ptr("[Log]\nlevel = \"debug\"\n"),
			wantErr: []string{`unknown key "Log"`},
		},
		{
			name:    "wrong type names file and key",
			main:    ptr("[runtime]\npids_limit = \"many\"\n"),
			wantErr: []string{"$main", `"runtime.pids_limit"`, "incompatible types"},
		},
		{
			name:    "bad duration names file and key",
			dropIns: map[string]string{"t.toml": "[image]\npull_progress_timeout = \"soon\"\n"},
			wantErr: []string{"t.toml", `"image.pull_progress_timeout"`, "invalid duration"},
		},
		{
			name:    "syntax error names file",
			main:    ptr("[api\n"),
			wantErr: []string{"$main", "toml: line"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mainPath := filepath.Join(dir, "berth.toml")
			if tc.main != nil {
				writeFiles(t, dir, map[string]string{"berth.toml": *tc.main})
			}
			dropInDir := filepath.Join(dir, "berth.toml.d")
			if !tc.noDir {
				if err := os.Mkdir(dropInDir, 0o755); err != nil {
					t.Fatal(err)
				}
				writeFiles(t, dropInDir, tc.dropIns)
			}

			got, err := Load(mainPath, dropInDir, tc.required)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Load succeeded, want error containing %q", tc.wantErr)
				}
				for _, s := range tc.wantErr {
					s = strings.ReplaceAll(s, "$main", mainPath)
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				for _, s := range tc.notErr {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q contains %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := Default()
			tc.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Load got\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestLoadDoesNotShareDefaults(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.toml": "[runtime.handlers.kata]\npath = \"/k\"\n"})
	if _, err := Load("", dir, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := Default().Runtime.Handlers["kata"]; ok {
		t.Fatal("Load changed the map of a later Default()")
	}
}

func ptr[T any](v T) *T { return &v }
