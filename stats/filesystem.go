package stats

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// FilesystemOf describes the filesystem holding path: its size and inodes
// (statfs) and its device, the mount source as /proc/self/mountinfo names
// it (cAdvisor's "device" label).
func FilesystemOf(path string) (Filesystem, error) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		return Filesystem{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return Filesystem{}, fmt.Errorf("stat %s: %w", path, err)
	}
	fs := Filesystem{
		CapacityBytes: sfs.Blocks * uint64(sfs.Bsize),
		Inodes:        sfs.Files,
		InodesFree:    sfs.Ffree,
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return Filesystem{}, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	fs.Device, err = mountSource(f, unix.Major(st.Dev), unix.Minor(st.Dev))
	if err != nil {
		return Filesystem{}, fmt.Errorf("device of %s: %w", path, err)
	}
	return fs, nil
}

// mountSource finds the source of the first mount of device major:minor in
// a mountinfo file ("36 35 8:1 / /var rw - ext4 /dev/sda1 rw"); a device
// with no mount is named "major:minor".
func mountSource(r io.Reader, major, minor uint32) (string, error) {
	want := fmt.Sprintf("%d:%d", major, minor)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[2] != want {
			continue
		}
		for i, f := range fields {
			if f == "-" && i+2 < len(fields) {
				return fields[i+2], nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return want, nil
}
