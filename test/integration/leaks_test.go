package integration

import (
	"bufio"
	"os"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// mountsUnder lists the mount points below dir, deepest first.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatalf("read mountinfo: %v", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			out = append(out, fields[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out
}

// unmountUnder fails the test for every mount left below root after the
// daemon stopped, then unmounts them so the temp dir can be removed.
func unmountUnder(t *testing.T, root string) {
	t.Helper()
	for _, m := range mountsUnder(t, root) {
		// The overlay driver keeps its own home bind-mounted private while
		// the store is open; after Shutdown nothing may remain.
		t.Errorf("mount left after berth stopped: %s", m)
		unix.Unmount(m, unix.MNT_DETACH)
	}
}
