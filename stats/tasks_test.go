package stats

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestReadKeyed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "memory.events")
	os.WriteFile(p, []byte("low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\n"), 0o644)
	for _, tc := range []struct {
		key  string
		want uint64
	}{{"oom_kill", 2}, {"max", 12}, {"absent", 0}} {
		if got := readKeyed(p, tc.key); got != tc.want {
			t.Errorf("readKeyed(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
	if got := readKeyed(filepath.Join(t.TempDir(), "missing"), "oom_kill"); got != 0 {
		t.Errorf("missing file = %d", got)
	}
}

// The test process itself, listed in a fake cgroup.procs, has threads, open
// descriptors and (through a socket it opens) sockets.
func TestReadTasksCountsOwnProcess(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	got := readTasks(dir)
	if got.Threads == 0 || got.FileDescriptors == 0 {
		t.Errorf("tasks of this process = %+v, want threads and descriptors", got)
	}
}
