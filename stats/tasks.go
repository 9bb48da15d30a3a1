package stats

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Tasks are counts over the processes of a cgroup that cAdvisor reports and
// the cgroup files do not hold: threads, open file descriptors, sockets.
type Tasks struct {
	Threads, FileDescriptors, Sockets uint64
}

// readTasks counts over the processes listed in dir/cgroup.procs. A process
// that exits while being counted is skipped.
func readTasks(dir string) Tasks {
	var t Tasks
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return t
	}
	for _, pid := range strings.Fields(string(procs)) {
		if tasks, err := os.ReadDir(filepath.Join("/proc", pid, "task")); err == nil {
			t.Threads += uint64(len(tasks))
		}
		fdDir := filepath.Join("/proc", pid, "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		t.FileDescriptors += uint64(len(fds))
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && strings.HasPrefix(target, "socket:") {
				t.Sockets++
			}
		}
	}
	return t
}

// readKeyed returns the value of key in a "key value" per line file, such
// as memory.events (v2) or memory.oom_control (v1); 0 when absent.
func readKeyed(path, key string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == key {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
