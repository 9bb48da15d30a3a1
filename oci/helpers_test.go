package oci

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// testRootfs is a read-only busybox root shared by every test container.
var testRootfs string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() != 0 {
			fmt.Println("oci: integration tests need root; running pure tests only")
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "berth-oci-rootfs-")
		if err != nil {
			fmt.Println(err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := buildRootfs(dir); err != nil {
			fmt.Println("build rootfs:", err)
			return 1
		}
		testRootfs = dir
		return m.Run()
	}()
	os.Exit(code)
}

// buildRootfs copies busybox-static into dir/bin and hard-links its applets.
// Hard links, not symlinks: masking one applet must not mask busybox.
func buildRootfs(dir string) error {
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	src, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return err
	}
	bb := filepath.Join(dir, "bin", "busybox")
	if err := os.WriteFile(bb, src, 0o755); err != nil {
		return err
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return err
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" {
			continue
		}
		if err := os.Link(bb, filepath.Join(dir, "bin", applet)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	return nil
}

// testEnv is one runtime handler under test with its own run dir, runtime
// root and cgroup parent, all removed at the end of the test.
type testEnv struct {
	t      *testing.T
	rt     *Runtime
	parent string // cgroup parent, e.g. "/berth-test-1234-crun"
	n      int
}

func newTestEnv(t *testing.T, handler string) *testEnv {
	t.Helper()
	if testRootfs == "" {
		t.Skip("needs root")
	}
	for _, bin := range []string{"/usr/bin/conmon", "/usr/bin/" + handler} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
	if handler == "crun" {
		ensureHugetlbV1(t)
	}
	// A short run dir keeps attach socket paths under 108 bytes.
	runDir, err := os.MkdirTemp("/run", "berth-test-")
	if err != nil {
		t.Fatal(err)
	}
	env := &testEnv{t: t, parent: fmt.Sprintf("/berth-test-%d-%s", os.Getpid(), handler)}
	rt, err := New(Config{
		Name: handler, Path: "/usr/bin/" + handler, Root: filepath.Join(runDir, handler),
		ConmonPath: "/usr/bin/conmon", RunDir: runDir, ConmonLogLevel: "debug",
	})
	if err != nil {
		t.Fatal(err)
	}
	env.rt = rt
	t.Cleanup(func() {
		mounts, _ := cgroupMounts()
		for _, m := range mounts {
			dir := filepath.Join(m, env.parent)
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.IsDir() {
					t.Errorf("cgroup left behind: %s/%s", dir, e.Name())
					_ = os.Remove(filepath.Join(dir, e.Name()))
				}
			}
			if err := os.Remove(dir); err != nil && !os.IsNotExist(err) {
				t.Errorf("remove test cgroup parent: %v", err)
			}
		}
		os.RemoveAll(runDir)
	})
	return env
}

// ensureHugetlbV1 mounts hugetlb on cgroup v1 in a hybrid layout: crun
// refuses hybrid setups where a controller is left on cgroup2.
func ensureHugetlbV1(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/unified"); err != nil {
		return
	}
	if mountinfoHas(" /sys/fs/cgroup/hugetlb ") {
		return
	}
	if err := os.MkdirAll("/sys/fs/cgroup/hugetlb", 0o755); err != nil {
		t.Skipf("cannot prepare hugetlb cgroup for crun: %v", err)
	}
	if err := syscall.Mount("cgroup", "/sys/fs/cgroup/hugetlb", "cgroup", 0, "hugetlb"); err != nil {
		t.Skipf("cannot mount hugetlb cgroup for crun: %v", err)
	}
}

func mountinfoHas(s string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	return bytes.Contains(b, []byte(s))
}

// newContainer writes a bundle running args and returns its Container.
func (e *testEnv) newContainer(args ...string) *Container {
	e.t.Helper()
	e.n++
	id := fmt.Sprintf("%s-%d-%d", e.rt.Name(), os.Getpid(), e.n)
	bundle := e.t.TempDir()
	writeSpec(e.t, bundle, testSpec(testRootfs, args, e.parent+"/"+id))
	c := &Container{
		ID: id, Name: "test-" + id, BundleDir: bundle,
		LogPath: filepath.Join(bundle, "ctr.log"), CgroupParent: e.parent,
	}
	e.t.Cleanup(func() {
		if err := e.rt.DeleteContainer(bgCtx(), c); err != nil {
			e.t.Errorf("cleanup: %v", err)
		}
	})
	return c
}

func testSpec(rootfs string, args []string, cgroupsPath string) *specs.Spec {
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_NET_BIND_SERVICE"}
	return &specs.Spec{
		Version: SpecVersion,
		Root:    &specs.Root{Path: rootfs, Readonly: true},
		Process: &specs.Process{
			Args: args, Cwd: "/", Env: []string{"PATH=/bin", "HOME=/"},
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Hostname: "berth-test",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: cgroupsPath,
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list"},
			ReadonlyPaths: []string{"/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// longWait bounds a wait for something that is bound to happen: generous,
// so that a busy machine makes a test slow rather than failing it. A wait
// returns as soon as its condition holds.
const longWait = time.Minute

// waitFor polls cond every 10ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// processesMentioning lists host processes whose command line contains s.
func processesMentioning(s string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(s)) || e.Name() == "self" {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && bytes.Contains(st, []byte(") Z")) {
			continue // a zombie waiting for init to reap it holds nothing
		}
		found = append(found, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
	}
	return found
}

// procStatField returns field n (1-based, as in proc(5)) of /proc/pid/stat.
func procStatField(pid, n int) string {
	return statField(fmt.Sprintf("/proc/%d/stat", pid), n)
}

// statField returns field n (1-based) of the stat file at path, "" when
// the task is gone.
func statField(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	rest := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if n-3 < 0 || n-3 >= len(rest) {
		return ""
	}
	return rest[n-3]
}

// exitedFully reports whether process pid, which started at started
// (field 22 of its stat), has finished exiting: reaped, or every thread of
// it a zombie. Only then are its files released. An exiting process loses
// its command line and its /proc/pid/fd entries first, and still holds the
// files themselves while the kernel runs their deferred release (a fifo it
// read can still be opened for writing), running or preempted for as long
// as a busy machine takes.
func exitedFully(pid int, started string) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || procStatField(pid, 22) != started {
		return true // reaped (and maybe the pid reused)
	}
	for _, task := range tasks {
		switch statField(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()), 3) {
		case "Z", "X", "": // a zombie, dead, or gone since the listing
		default:
			return false
		}
	}
	return true
}

func writeSpec(t *testing.T, bundle string, spec *specs.Spec) {
	t.Helper()
	if err := WriteSpec(bundle, spec); err != nil {
		t.Fatal(err)
	}
}

// sharedFds lists descriptors of pid that are open files of this process
// too (same pipe, socket or file), i.e. leaked into it.
func sharedFds(pid int) []string {
	ours := map[string]bool{}
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && (strings.HasPrefix(l, "pipe:") || strings.HasPrefix(l, "socket:")) {
			ours[l] = true
		}
	}
	var shared []string
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, _ = os.ReadDir(dir)
	for _, e := range entries {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && ours[l] {
			shared = append(shared, e.Name()+" -> "+l)
		}
	}
	return shared
}
