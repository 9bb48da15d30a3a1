package network

import "golang.org/x/sys/unix"

// isNetNS reports whether path is a mounted namespace file (nsfs). A pin
// file whose mount is gone is an empty regular file, which plugins reject
// with "unknown FS magic" rather than treating it as a missing netns.
func isNetNS(path string) bool {
	if path == "" {
		return false
	}
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}
