package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// preflight checks what a run needs from the host before anything starts,
// naming every missing piece at once.
func preflight(tools []string, ports []int) error {
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, "not root: critest runs privileged containers and mounts")
	}
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			problems = append(problems, fmt.Sprintf("%s not on PATH (make deps installs it)", t))
		}
	}
	for _, p := range ports {
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			problems = append(problems, fmt.Sprintf("host port %d is in use; critest needs 12000-12003", p))
			continue
		}
		l.Close()
	}
	if len(problems) > 0 {
		return fmt.Errorf("host not ready:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// critestVersion is what `critest -version` says, for the log.
func critestVersion(critest string) string {
	out, err := exec.Command(critest, "-version").CombinedOutput()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "critest version:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "critest version:"))
		}
	}
	return strings.TrimSpace(string(out))
}

// shmSegments lists the host's System V shared memory segments: id and
// size, from /proc/sysvipc/shm.
func shmSegments() map[int]int64 {
	segs := map[int]int64{}
	data, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		return segs
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		// key shmid perms size cpid lpid nattch ...
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		id, err1 := strconv.Atoi(f[1])
		size, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 == nil && err2 == nil && f[6] == "0" {
			segs[id] = size
		}
	}
	return segs
}

// removeCritestShm removes the segments critest's HostIpc specs made with
// `ipcmk -M 1048576` on the host and never remove: unattached 1 MiB
// segments that were not there before the run.
func removeCritestShm(before map[int]int64) int {
	n := 0
	for id, size := range shmSegments() {
		if _, old := before[id]; old || size != 1048576 {
			continue
		}
		if _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); err == nil {
			n++
		}
	}
	return n
}

// removeTree unmounts whatever is still mounted under dir (deepest first,
// lazily) and removes it. A runtime's storage leaves overlay and shm
// mounts behind when containers outlive it.
func removeTree(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			p := unescapeMount(fields[4])
			if p == dir || strings.HasPrefix(p, dir+"/") {
				mounts = append(mounts, p)
			}
		}
	}
	f.Close()
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			logf("unmount %s: %v", m, err)
		}
	}
	return os.RemoveAll(dir)
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
