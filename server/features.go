package server

import (
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// supportsRRO tells whether recursive read-only mounts work here: they need
// mount_setattr(2), Linux 5.12 and later, which crun 1.8 and runc 1.1 use for
// the "rro" option.
var supportsRRO = sync.OnceValue(func() bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	return kernelAtLeast(unix.ByteSliceToString(u.Release[:]), 5, 12)
})

// kernelAtLeast compares a release such as "6.18.0-1-amd64" with major.minor.
func kernelAtLeast(release string, major, minor int) bool {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return false
	}
	maj, err1 := strconv.Atoi(parts[0])
	min, err2 := strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return false
	}
	return maj > major || maj == major && min >= minor
}

// runtimeHandlers lists every handler with its features, and the default
// one again under the empty name the kubelet uses for "no RuntimeClass".
func (s *Server) runtimeHandlerFeatures() []*runtime.RuntimeHandler {
	features := &runtime.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: supportsRRO()}
	out := []*runtime.RuntimeHandler{{Name: "", Features: features}}
	for _, name := range s.handlerNames() {
		out = append(out, &runtime.RuntimeHandler{Name: name, Features: features})
	}
	return out
}
