package namespaces

import (
	"fmt"
	"sort"
	"strings"

	"github.com/berth-dev/berth/errdefs"
)

// Sysctl is one validated sysctl: its dotted name, the namespace kind it
// belongs to and its path under /proc/sys.
type Sysctl struct {
	Name  string
	Value string
	Kind  string // KindNet or KindIPC
	Path  string // relative to /proc/sys, e.g. "net/ipv4/ping_group_range"
}

// ipcSysctlPrefixes and ipcSysctls are the IPC-namespaced sysctls, the same
// set kubelet treats as namespaced (pkg/kubelet/sysctl/namespace.go).
var (
	ipcSysctls        = map[string]bool{"kernel.sem": true}
	ipcSysctlPrefixes = []string{"kernel.shm", "kernel.msg", "fs.mqueue."}
)

// normalizeSysctlName turns the slashed form kubelet also accepts
// ("net/ipv4/conf/eth0.1/forwarding") into the dotted one
// ("net.ipv4.conf.eth0/1.forwarding"): if the first separator is a slash,
// dots and slashes swap.
func normalizeSysctlName(name string) string {
	i := strings.IndexAny(name, "./")
	if i < 0 || name[i] == '.' {
		return name
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, name)
}

// sysctlPath is the path under /proc/sys of a dotted name: dots separate
// components, a slash stands for a dot inside one (an interface "eth0.1").
func sysctlPath(name string) (string, error) {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		p = strings.ReplaceAll(p, "/", ".")
		if p == "" || p == "." || p == ".." || strings.ContainsAny(p, "\x00\n") {
			return "", fmt.Errorf("sysctl %q: malformed name: %w", name, errdefs.ErrInvalidArgument)
		}
		parts[i] = p
	}
	return strings.Join(parts, "/"), nil
}

// sysctlKind says which namespace a sysctl belongs to, "" if it is not
// namespaced (and so would change the host).
func sysctlKind(name string) string {
	if strings.HasPrefix(name, "net.") {
		return KindNet
	}
	if ipcSysctls[name] {
		return KindIPC
	}
	for _, p := range ipcSysctlPrefixes {
		if strings.HasPrefix(name, p) {
			return KindIPC
		}
	}
	return ""
}

// ValidateSysctls checks sysctls for a pod that has (or shares the host's)
// network and IPC namespaces, and returns them sorted by name. Sysctls that
// are not namespaced (kernel.panic, vm.*, ...) are refused, and so are
// namespaced ones of a namespace the pod shares with the host, since
// writing them would change the host. Errors wrap errdefs.ErrInvalidArgument
// and name the sysctl.
func ValidateSysctls(sysctls map[string]string, hostNet, hostIPC bool) ([]Sysctl, error) {
	out := make([]Sysctl, 0, len(sysctls))
	for raw, value := range sysctls {
		name := normalizeSysctlName(raw)
		path, err := sysctlPath(name)
		if err != nil {
			return nil, err
		}
		if strings.ContainsAny(value, "\x00\n") {
			return nil, fmt.Errorf("sysctl %q: value %q has a newline or NUL: %w", name, value, errdefs.ErrInvalidArgument)
		}
		kind := sysctlKind(name)
		switch {
		case kind == "":
			return nil, fmt.Errorf("sysctl %q is not namespaced and would change the host: %w", name, errdefs.ErrInvalidArgument)
		case kind == KindNet && hostNet:
			return nil, fmt.Errorf("sysctl %q needs the pod's own network namespace, not the host's: %w", name, errdefs.ErrInvalidArgument)
		case kind == KindIPC && hostIPC:
			return nil, fmt.Errorf("sysctl %q needs the pod's own IPC namespace, not the host's: %w", name, errdefs.ErrInvalidArgument)
		}
		out = append(out, Sysctl{Name: name, Value: value, Kind: kind, Path: path})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
