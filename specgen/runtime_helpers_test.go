package specgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/namespaces"
)

// needRuntime skips unless the test runs as root and bin is installed.
func needRuntime(t *testing.T, bin string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		t.Skipf("%s not installed", bin)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox-static not installed")
	}
	return p
}

// busyboxRootfs copies busybox-static into a fresh rootfs and hard-links
// its applets there, with the test /etc/passwd and /etc/group.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	root := newRootfs(t)
	bb := filepath.Join(root, "bin", "busybox")
	src, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bb, src, 0o755); err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	s := bufio.NewScanner(bytes.NewReader(list))
	for s.Scan() {
		if name := s.Text(); name != "busybox" && name != "" {
			if err := os.Link(bb, filepath.Join(root, "bin", name)); err != nil && !os.IsExist(err) {
				t.Fatal(err)
			}
		}
	}
	return root
}

// pinPod makes pinned network, IPC and UTS namespaces for a test pod.
func pinPod(t *testing.T, podID, hostname string) *namespaces.Pinned {
	t.Helper()
	dir := t.TempDir()
	p, err := namespaces.Pin(context.Background(), podID, namespaces.Options{
		Dir: dir, NewNet: true, NewIPC: true, NewUTS: true, Hostname: hostname,
	})
	if err != nil {
		t.Fatalf("pin namespaces: %v", err)
	}
	t.Cleanup(func() { namespaces.Unpin(p) })
	return p
}

// runSpec writes spec into a bundle and runs it to completion with the
// runtime at bin, returning its output. The container is deleted and the
// cgroup parent removed afterwards.
func runSpec(t *testing.T, bin, id string, spec *specs.Spec, cgroupParent string) string {
	t.Helper()
	bundle := t.TempDir()
	state := t.TempDir()
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command(bin, "--root", state, "delete", "--force", id).Run()
		removeCgroup(t, cgroupParent)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--root", state, "run", "--bundle", bundle, id)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s run: %v\nstdout: %s\nstderr: %s", filepath.Base(bin), err, out.String(), errOut.String())
	}
	return out.String()
}

// removeCgroup removes the test's cgroup parent (and anything the runtime
// left below it) from every cgroup hierarchy.
func removeCgroup(t *testing.T, parent string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 1 || (g[0] != "cgroup" && g[0] != "cgroup2") {
			continue
		}
		dir := filepath.Join(f[4], parent)
		// Children first: a cgroup directory goes only when empty.
		var dirs []string
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := os.Remove(dirs[i]); err != nil && !os.IsNotExist(err) {
				t.Errorf("remove cgroup %s: %v", dirs[i], err)
			}
		}
	}
}

// capMask is the CapEff value for a list of capability names.
func capMask(names []string) string {
	var m uint64
	for _, n := range names {
		c, _ := capNumber(n)
		m |= 1 << uint(c)
	}
	return fmt.Sprintf("%016x", m)
}
