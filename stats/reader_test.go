package stats

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
)

// copyDir copies the fixture directory src to a new temp dir.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// Files held open are read again from the start, so a later read sees
// what the files hold then; forgetting the cgroup closes them.
func TestHeldFilesReadAgain(t *testing.T) {
	dir := copyDir(t, "testdata/cgroupv2/limited")
	r := &CgroupReader{maxHeld: 100}
	g := &heldCgroup{v2: true, dir: dir}
	for i := range g.fds {
		g.fds[i] = -1
	}
	read := func() Sample {
		t.Helper()
		g.mu.Lock()
		defer g.mu.Unlock()
		fs := newFileSet(r, g)
		defer fs.release()
		s, err := readV2Usage(dir, CPUMemory|ProcessCount, fs)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := read()
	if r.Held() != 6 {
		t.Errorf("%d files held after a read of memory.stat, .current, .max, .swap.current, cpu.stat and pids.current, want 6", r.Held())
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.current"), []byte("123\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 0, 20<<10) // more than a pooled buffer holds
	for len(big) < 20<<10 {
		big = append(big, "nr_periods 1\n"...)
	}
	big = append(big, "usage_usec 7\n"...)
	if err := os.WriteFile(filepath.Join(dir, "cpu.stat"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	second := read()
	if second.Memory.Usage != 123 || second.CPU.UsageNanos != 7000 || second.Processes != first.Processes {
		t.Errorf("second read = usage %d, cpu %d, processes %d; want 123, 7000, %d", second.Memory.Usage, second.CPU.UsageNanos, second.Processes, first.Processes)
	}
	if r.Held() != 6 {
		t.Errorf("%d files held after reading them again, want the same 6", r.Held())
	}
	r.groups = map[string]*heldCgroup{"x": g}
	r.Forget("x")
	if r.Held() != 0 || len(r.groups) != 0 {
		t.Errorf("after Forget: %d files held, %d cgroups", r.Held(), len(r.groups))
	}
	if s := read(); s.Memory.Usage != 123 || r.Held() != 0 {
		t.Errorf("a forgotten cgroup read = %+v with %d held, want a read that holds nothing", s.Memory, r.Held())
	}
}

// The limit on files held is kept: past it, files are opened per read.
func TestHeldFilesLimit(t *testing.T) {
	r := &CgroupReader{maxHeld: 2}
	g := &heldCgroup{v2: true, dir: "testdata/cgroupv2/unlimited"}
	for i := range g.fds {
		g.fds[i] = -1
	}
	for range 3 {
		fs := newFileSet(r, g)
		if _, err := readV2Usage(g.dir, CPUMemory, fs); err != nil {
			t.Fatal(err)
		}
		fs.release()
	}
	if r.Held() != 2 {
		t.Errorf("%d files held, want the limit, 2", r.Held())
	}
	r.closeLocked(g)
	if r.Held() != 0 {
		t.Errorf("%d files held after closing", r.Held())
	}
}

// On the host (as root): a cgroup's files are held between reads, a
// running process's CPU time shows in a later read through them, and a
// removed cgroup is ErrNoCgroup with its files closed.
func TestCgroupReaderHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes a cgroup")
	}
	path := "/berth-stats-test-" + strconv.Itoa(os.Getpid())
	var dirs []string
	if cgroups.IsCgroup2UnifiedMode() {
		dirs = []string{filepath.Join(unifiedRoot, path)}
	} else {
		for _, ctl := range []string{"cpuacct", "memory", "pids"} {
			dirs = append(dirs, filepath.Join("/sys/fs/cgroup", ctl, path))
		}
	}
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Skipf("cannot make a cgroup here: %v", err)
		}
	}
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cleanup := func() {
		cmd.Process.Kill()
		cmd.Wait()
		for _, d := range dirs {
			for range 100 {
				if err := os.Remove(d); err == nil || errors.Is(err, os.ErrNotExist) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	t.Cleanup(cleanup)
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
	}
	r := NewCgroupReader()
	first, err := r.Read(path, CPUMemory|ProcessCount)
	if err != nil {
		t.Fatal(err)
	}
	held := r.Held()
	if held == 0 {
		t.Fatal("no files held after a read")
	}
	time.Sleep(50 * time.Millisecond)
	second, err := r.Read(path, CPUMemory|ProcessCount)
	if err != nil {
		t.Fatal(err)
	}
	// (Memory stays where the shell was charged before it moved: v1
	// moves no charges by default.)
	if second.CPU.UsageNanos <= first.CPU.UsageNanos || second.Processes != 1 {
		t.Errorf("reads through held files: cpu %d then %d, processes %d", first.CPU.UsageNanos, second.CPU.UsageNanos, second.Processes)
	}
	if r.Held() != held {
		t.Errorf("%d files held after the second read, %d after the first", r.Held(), held)
	}
	// What the cgroups library reads agrees on what cannot have moved.
	all, err := r.Read(path, AllFields)
	if err != nil {
		t.Fatal(err)
	}
	if all.Memory.Limit != second.Memory.Limit || all.Processes != second.Processes {
		t.Errorf("library: limit %d, processes %d; held files: %d, %d", all.Memory.Limit, all.Processes, second.Memory.Limit, second.Processes)
	}
	cleanup()
	if _, err := r.Read(path, CPUMemory); !errors.Is(err, ErrNoCgroup) {
		t.Errorf("read of a removed cgroup: %v, want ErrNoCgroup", err)
	}
	if r.Held() != 0 {
		t.Errorf("%d files held after the cgroup went", r.Held())
	}
}
