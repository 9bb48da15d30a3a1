package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// berthCmd runs the berth binary to completion.
func berthCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(env.binary, args...).CombinedOutput()
	return string(out), err
}

func TestConfigMergesFileDropInsAndFlags(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "berth.toml")
	dropins := filepath.Join(dir, "berth.toml.d")
	writeFile(t, main, "[image]\npause_image = \"example.com/pause:file\"\n[log]\nlevel = \"debug\"\n")
	// Drop-ins apply in lexical order: 20 overrides 10.
	writeFile(t, filepath.Join(dropins, "10-a.toml"), "[image]\npause_image = \"example.com/pause:10\"\n")
	writeFile(t, filepath.Join(dropins, "20-b.toml"), "[image]\npause_image = \"example.com/pause:20\"\n[runtime.handlers.kata]\npath = \"/usr/bin/kata-runtime\"\nroot = \"/run/kata\"\n")

	out, err := berthCmd(t, "config", "--config", main, "--config-dir", dropins, "--log-level", "warn")
	if err != nil {
		t.Fatalf("berth config: %v\n%s", err, out)
	}
	for _, want := range []string{
		`pause_image = "example.com/pause:20"`, // last drop-in wins over the file
		`level = "warn"`,                       // a flag wins over the file
		`[runtime.handlers.kata]`,              // drop-ins add handlers ...
		`[runtime.handlers.crun]`,              // ... without dropping the defaults
		`listen = "/run/berth/berth.sock"`,     // defaults fill the rest
		"# ",                                   // and every key is explained
	} {
		if !strings.Contains(out, want) {
			t.Errorf("berth config: want %q in:\n%s", want, out)
		}
	}

	// The printed configuration is itself a valid config file.
	printed := filepath.Join(dir, "printed.toml")
	writeFile(t, printed, out)
	again, err := berthCmd(t, "config", "--config", printed, "--config-dir", filepath.Join(dir, "none"))
	if err != nil {
		t.Fatalf("berth config of its own output: %v\n%s", err, again)
	}
	if again != out {
		t.Errorf("berth config does not round-trip:\nfirst:\n%s\nsecond:\n%s", out, again)
	}
}

func TestConfigRejectsBadFiles(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          []string
	}{
		{"unknown key", "[runtime]\nno_such_option = true\n", []string{"bad.toml", "runtime.no_such_option"}},
		{"invalid value", "[runtime]\ncgroup_manager = \"upstart\"\n", []string{"runtime.cgroup_manager"}},
		{"unknown handler", "[runtime]\ndefault_handler = \"nope\"\n", []string{"runtime.default_handler", "nope"}},
		{"bad duration", "[image]\npull_progress_timeout = \"soon\"\n", []string{"bad.toml", "pull_progress_timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "bad.toml")
			writeFile(t, file, tc.content)
			// The daemon itself must refuse to start, not only `berth config`.
			out, err := berthCmd(t, "--config", file, "--config-dir", filepath.Join(dir, "d"),
				"--listen", filepath.Join(dir, "s.sock"), "--root", filepath.Join(dir, "root"),
				"--runroot", filepath.Join(dir, "runroot"), "--state-dir", filepath.Join(dir, "state"),
				"--run-dir", filepath.Join(dir, "run"))
			if err == nil {
				t.Fatalf("berth started with %s:\n%s", tc.content, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("error should name %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	out, err := berthCmd(t, "version")
	if err != nil || !strings.HasPrefix(out, "berth version ") {
		t.Fatalf("berth version: %v %q", err, out)
	}
}
