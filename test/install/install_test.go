package install

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/config"
)

// installed is one file or directory `make install` lays down.
type installed struct {
	path string      // under DESTDIR
	mode fs.FileMode // type and permission bits
	from string      // repo file it must equal, if any
}

// layout is what `make install` lays down with PREFIX=prefix on an empty
// DESTDIR.
func layout(prefix string) []installed {
	return []installed{
		{prefix + "/bin/berth", 0o755, "bin/berth"},
		{prefix + "/lib/systemd/system/berth.service", 0o644, ""},
		{prefix + "/share/bash-completion/completions/berth", 0o644, "contrib/completion/berth.bash"},
		{"/etc/berth/berth.toml", 0o644, ""},
		{"/etc/berth/berth.toml.d", fs.ModeDir | 0o755, ""},
		{"/etc/cni/net.d/10-berth-bridge.conflist", 0o644, "contrib/cni/10-berth-bridge.conflist"},
		{"/etc/containers/registries.conf", 0o644, "contrib/containers/registries.conf"},
		{"/etc/containers/policy.json", 0o644, "contrib/containers/policy.json"},
		{"/etc/crictl.yaml", 0o644, "contrib/crictl.yaml"},
	}
}

func checkLayout(t *testing.T, dest string, files []installed) {
	t.Helper()
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(dest, f.path))
		if err != nil {
			t.Errorf("not installed: %v", err)
			continue
		}
		if got := fi.Mode() & (fs.ModeType | fs.ModePerm); got != f.mode {
			t.Errorf("%s has mode %v, want %v", f.path, got, f.mode)
		}
		if f.from != "" {
			want, err := os.ReadFile(filepath.Join(repo, f.from))
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(filepath.Join(dest, f.path)); !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s", f.path, f.from)
			}
		}
	}
}

func TestInstallLayout(t *testing.T) {
	dest := t.TempDir()
	out := makeInstall(t, "DESTDIR="+dest)
	t.Logf("make install:\n%s", out)
	checkLayout(t, dest, layout("/usr/local"))

	// Nothing else: every installed file is accounted for.
	want := map[string]bool{}
	for _, f := range layout("/usr/local") {
		want[f.path] = true
	}
	filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		rel := strings.TrimPrefix(p, dest)
		if !d.IsDir() && !want[rel] {
			t.Errorf("make install laid down %s, which the layout does not list", rel)
		}
		return nil
	})
	if ents, _ := os.ReadDir(filepath.Join(dest, "etc/berth/berth.toml.d")); len(ents) != 0 {
		t.Errorf("berth.toml.d is not empty: %v", ents)
	}

	unit, err := os.ReadFile(filepath.Join(dest, "usr/local/lib/systemd/system/berth.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(unit, []byte("\nExecStart=/usr/local/bin/berth\n")) || bytes.Contains(unit, []byte("@BINDIR@")) {
		t.Errorf("unit's ExecStart is not the installed binary:\n%s", unit)
	}

	// berth.toml is `berth config` of the defaults, and loads back as them.
	toml := filepath.Join(dest, "etc/berth/berth.toml")
	cfg, err := config.Load(toml, "", true)
	if err != nil {
		t.Fatalf("installed berth.toml does not load: %v", err)
	}
	var printed, def bytes.Buffer
	if err := config.Write(&printed, cfg); err != nil {
		t.Fatal(err)
	}
	if err := config.Write(&def, config.Default()); err != nil {
		t.Fatal(err)
	}
	if printed.String() != def.String() {
		t.Errorf("installed berth.toml is not the defaults:\n%s", printed.String())
	}
	// The installed binary reads it.
	if out, errOut, code := run(t, dest, filepath.Join(dest, "usr/local/bin/berth"), "config",
		"--config", toml, "--config-dir", filepath.Join(dest, "etc/berth/berth.toml.d")); code != 0 || out != def.String() {
		t.Errorf("installed berth config: exit %d, %s\n%s", code, errOut, out)
	}
}

func TestInstallPrefix(t *testing.T) {
	dest := t.TempDir()
	makeInstall(t, "DESTDIR="+dest, "PREFIX=/usr")
	checkLayout(t, dest, layout("/usr"))
	unit, _ := os.ReadFile(filepath.Join(dest, "usr/lib/systemd/system/berth.service"))
	if !bytes.Contains(unit, []byte("\nExecStart=/usr/bin/berth\n")) {
		t.Errorf("unit's ExecStart is not /usr/bin/berth:\n%s", unit)
	}
}

// A reinstall upgrades what the package owns (binary, unit, completion) and
// keeps every config file the admin may have edited.
func TestInstallKeepsAdminFiles(t *testing.T) {
	dest := t.TempDir()
	makeInstall(t, "DESTDIR="+dest)
	edited := map[string]string{
		"etc/berth/berth.toml":                       "[log]\nlevel = \"debug\"\n",
		"etc/berth/berth.toml.d/50-admin.toml":       "[runtime]\ndefault_handler = \"runc\"\n",
		"etc/containers/registries.conf":             "unqualified-search-registries = [\"quay.io\"]\n",
		"etc/containers/policy.json":                 `{"default":[{"type":"reject"}]}`,
		"etc/crictl.yaml":                            "runtime-endpoint: unix:///elsewhere.sock\n",
		"etc/cni/net.d/10-berth-bridge.conflist":     `{"cniVersion":"1.0.0","name":"admin","plugins":[{"type":"bridge"}]}`,
		"usr/local/lib/systemd/system/berth.service": "[Service]\nExecStart=/old/berth\n",
	}
	for p, data := range edited {
		if err := os.WriteFile(filepath.Join(dest, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := makeInstall(t, "DESTDIR="+dest)
	t.Logf("second make install:\n%s", out)
	for p, data := range edited {
		got, err := os.ReadFile(filepath.Join(dest, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		owned := strings.HasPrefix(p, "usr/")
		switch {
		case owned && string(got) == data:
			t.Errorf("%s was not upgraded", p)
		case !owned && string(got) != data:
			t.Errorf("%s lost the admin's edit:\n%s", p, got)
		}
	}
	if !strings.Contains(out, "keeping existing "+filepath.Join(dest, "etc/berth/berth.toml")) {
		t.Errorf("make install did not say it kept berth.toml:\n%s", out)
	}
}

// The default conflist goes in only where no network config is: a network
// provider's must stay the default network.
func TestInstallLeavesExistingCNIConfig(t *testing.T) {
	for _, name := range []string{"05-flannel.conflist", "87-podman.conf", "99-loopback.json"} {
		t.Run(name, func(t *testing.T) {
			dest := t.TempDir()
			netd := filepath.Join(dest, "etc/cni/net.d")
			if err := os.MkdirAll(netd, 0o755); err != nil {
				t.Fatal(err)
			}
			provider := `{"cniVersion":"1.0.0","name":"provider","plugins":[{"type":"loopback"}]}`
			if err := os.WriteFile(filepath.Join(netd, name), []byte(provider), 0o644); err != nil {
				t.Fatal(err)
			}
			out := makeInstall(t, "DESTDIR="+dest)
			if _, err := os.Stat(filepath.Join(netd, "10-berth-bridge.conflist")); err == nil {
				t.Errorf("make install added 10-berth-bridge.conflist next to %s", name)
			}
			if got, _ := os.ReadFile(filepath.Join(netd, name)); string(got) != provider {
				t.Errorf("%s changed: %s", name, got)
			}
			if !strings.Contains(out, "already holds a network config") {
				t.Errorf("make install did not say why it skipped the conflist:\n%s", out)
			}
		})
	}
	t.Run("other files only", func(t *testing.T) {
		dest := t.TempDir()
		netd := filepath.Join(dest, "etc/cni/net.d")
		os.MkdirAll(netd, 0o755)
		os.WriteFile(filepath.Join(netd, "README"), []byte("notes"), 0o644)
		makeInstall(t, "DESTDIR="+dest)
		if _, err := os.Stat(filepath.Join(netd, "10-berth-bridge.conflist")); err != nil {
			t.Errorf("no default conflist in a dir without network configs: %v", err)
		}
	})
}

// systemd-analyze verify accepts the installed unit (verify.sh), and
// verify.sh is no rubber stamp: it rejects a unit systemd would only warn
// about.
func TestSystemdVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatal("systemd-analyze not found: apt-get install systemd")
	}
	dest := t.TempDir()
	makeInstall(t, "DESTDIR="+dest)
	unit := filepath.Join(dest, "usr/local/lib/systemd/system/berth.service")
	verify := filepath.Join(repo, "contrib/systemd/verify.sh")
	out, errOut, code := run(t, repo, verify, unit, dest)
	if code != 0 {
		t.Fatalf("verify.sh: exit %d\n%s%s", code, out, errOut)
	}
	t.Log(strings.TrimSpace(out))

	for name, edit := range map[string]func(string) string{
		"unknown key": func(u string) string {
			return strings.Replace(u, "KillMode=process", "KillMode=process\nKillModus=process", 1)
		},
		"bad value": func(u string) string { return strings.Replace(u, "KillMode=process", "KillMode=processes", 1) },
		"missing binary": func(u string) string {
			return strings.Replace(u, "ExecStart=/usr/local/bin/berth", "ExecStart=/usr/local/bin/berth-missing", 1)
		},
	} {
		t.Run(name, func(t *testing.T) {
			data, _ := os.ReadFile(unit)
			bad := filepath.Join(t.TempDir(), "berth.service")
			if err := os.WriteFile(bad, []byte(edit(string(data))), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, errOut, code := run(t, repo, verify, bad, dest); code == 0 {
				t.Errorf("verify.sh passed a unit with a %s", name)
			} else {
				t.Log(strings.TrimSpace(errOut))
			}
		})
	}
}
