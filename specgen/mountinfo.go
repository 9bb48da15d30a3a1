package specgen

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// checkPropagation makes sure the host mount holding src propagates as a
// shared (or, unless shared is required, a slave) mount, as CRI-O does: an
// rshared or rslave bind of a private mount would silently propagate
// nothing. It reads the host's mount table anew on every call.
func (h *Host) checkPropagation(field, src string, shared bool) error {
	mp, opts, err := mountOf(h.mountinfo, src)
	if err != nil {
		return preconditionf(field, "find the mount of %s: %v", src, err)
	}
	isShared, isSlave := false, false
	for _, o := range opts {
		isShared = isShared || strings.HasPrefix(o, "shared:")
		isSlave = isSlave || strings.HasPrefix(o, "master:")
	}
	switch {
	case shared && !isShared:
		return preconditionf(field, "%s is on mount %s, which is not a shared mount", src, mp)
	case !shared && !isShared && !isSlave:
		return preconditionf(field, "%s is on mount %s, which is neither a shared nor a slave mount", src, mp)
	}
	return nil
}

// mountOf finds, in the mountinfo file, the mount point holding path p (the
// last, topmost mount of the longest matching mount point) and its optional
// propagation fields.
func mountOf(mountinfo, p string) (string, []string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	best, bestOpts := "", []string(nil)
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		fields := strings.Fields(s.Text())
		if len(fields) < 7 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp != p && !strings.HasPrefix(p, strings.TrimSuffix(mp, "/")+"/") {
			continue
		}
		if len(mp) < len(best) {
			continue
		}
		var opts []string
		for _, o := range fields[6:] {
			if o == "-" {
				break
			}
			opts = append(opts, o)
		}
		best, bestOpts = mp, opts
	}
	if err := s.Err(); err != nil {
		return "", nil, err
	}
	if best == "" {
		return "", nil, os.ErrNotExist
	}
	return best, bestOpts, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) the kernel
// puts in mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
