package install

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A report line: "OK   <check>: <detail>", or WARN/FAIL with a fix.
var (
	okLine  = regexp.MustCompile(`^OK   [a-z0-9. ]+: \S.*$`)
	badLine = regexp.MustCompile(`^(WARN|FAIL) [a-z0-9. ]+: \S.*; fix: \S.*$`)
)

// checkArgs point `berth check` at this machine's runtimes, conmon, CNI
// plugins, kernel and cgroups, but at the test's own config, CNI conf dir,
// storage and image policy, so the node's /etc does not change the result.
func checkArgs(t *testing.T, cniDir string) []string {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "berth.toml")
	if err := os.WriteFile(cfg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{
		"--config", cfg, "--config-dir", filepath.Join(dir, "berth.toml.d"),
		"--cni-config-dir", cniDir,
		"--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "runroot"),
		"--state-dir", filepath.Join(dir, "state"), "--run-dir", filepath.Join(dir, "run"),
		"--listen", filepath.Join(dir, "run", "berth.sock"),
		"--registries-conf", filepath.Join(repo, "contrib/containers/registries.conf"),
		"--signature-policy", filepath.Join(repo, "contrib/containers/policy.json"),
	}
}

// berthCheck runs `berth check`, logs its report and checks every line's
// form: each says OK, or what is wrong and how to fix it.
func berthCheck(t *testing.T, args ...string) (report string, code int) {
	t.Helper()
	out, errOut, code := run(t, repo, berth, append([]string{"check"}, args...)...)
	t.Logf("berth check (exit %d):\n%s%s", code, out, errOut)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) < 15 {
		t.Errorf("berth check printed %d lines, want one per check", len(lines))
	}
	fails := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "FAIL") {
			fails++
		}
		if !okLine.MatchString(l) && !badLine.MatchString(l) {
			t.Errorf("line is neither OK nor a problem with a fix: %q", l)
		}
	}
	if (fails > 0) != (code == 1) || (code != 0 && code != 1) {
		t.Errorf("exit %d with %d FAIL lines", code, fails)
	}
	return out, code
}

// On this machine, with the default bridge conflist in place, every check
// passes: the runtimes, conmon, plugins, cgroups (crun on the hybrid
// layout), overlay, the paths and the kernel features.
func TestCheckReadyNode(t *testing.T) {
	netd := t.TempDir()
	conflist, err := os.ReadFile(filepath.Join(repo, "contrib/cni/10-berth-bridge.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(netd, "10-berth-bridge.conflist"), conflist, 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := berthCheck(t, checkArgs(t, netd)...)
	if code != 0 {
		t.Fatalf("berth check found this node not ready (exit %d)", code)
	}
	for _, want := range []string{
		"OK   runtime handler crun: ", "OK   runtime handler runc: ", "OK   conmon: ",
		"OK   cgroup driver: cgroupfs", "OK   cgroups: ",
		"OK   cni network: \"berth\"", "OK   cni plugins: network \"berth\" needs bridge, host-local, portmap",
		"OK   overlay: ", "OK   storage root: ",
		"OK   kernel seccomp: ", "kernel user namespaces: ", "OK   kernel network namespaces: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Ran as root, the probes really ran.
	if os.Geteuid() == 0 {
		for _, want := range []string{"an overlay mount in", "a network namespace can be created"} {
			if !strings.Contains(out, want) {
				t.Errorf("report lacks %q", want)
			}
		}
	}
}

// With the CNI conf dir emptied, check names the problem and the fix.
func TestCheckEmptyCNIConfDir(t *testing.T) {
	netd := t.TempDir()
	out, code := berthCheck(t, checkArgs(t, netd)...)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := "FAIL cni network: no CNI network config (*.conflist, *.conf, *.json) in " + netd +
		"; fix: `make install` lays down a default bridge conflist (10-berth-bridge.conflist), or install your network provider"
	if !strings.Contains(out, want) {
		t.Errorf("report lacks\n%s", want)
	}
}

// After `make install`, check against the installed config and conf dir
// finds the network ready.
func TestCheckAfterInstall(t *testing.T) {
	dest := t.TempDir()
	makeInstall(t, "DESTDIR="+dest)
	args := checkArgs(t, filepath.Join(dest, "etc/cni/net.d"))
	args[1] = filepath.Join(dest, "etc/berth/berth.toml")
	args[3] = filepath.Join(dest, "etc/berth/berth.toml.d")
	out, _ := berthCheck(t, args...)
	if !strings.Contains(out, "OK   cni network: \"berth\" (cniVersion 1.0.0) from "+filepath.Join(dest, "etc/cni/net.d/10-berth-bridge.conflist")) {
		t.Errorf("the installed conflist is not the usable network")
	}
	if !strings.Contains(out, "OK   config: "+filepath.Join(dest, "etc/berth/berth.toml")) {
		t.Errorf("check did not read the installed config")
	}
}

// A config that does not load is itself a failed check.
func TestCheckBadConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "berth.toml")
	os.WriteFile(cfg, []byte("[runtime]\ncgroup_manager = \"cgroupfz\"\n"), 0o644)
	out, _, code := run(t, repo, berth, "check", "--config", cfg, "--config-dir", "")
	if code != 1 || !strings.HasPrefix(out, "FAIL config: ") || !strings.Contains(out, "cgroup_manager") || !strings.Contains(out, "; fix: ") {
		t.Errorf("bad config: exit %d\n%s", code, out)
	}
}
