// Package namespaces makes a pod's network, IPC and UTS namespaces and pins
// them: each new namespace is bind-mounted onto <Dir>/<net|ipc|uts>/<podID>
// before anything runs in it, so it outlives the infra process and can be
// joined by path (by runc through the OCI spec, by CNI plugins through
// CNI_NETNS). Sysctls of the pod are written into the new namespaces while
// they are made; only namespaced ones are accepted.
package namespaces

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/errdefs"
)

// Kinds of pinned namespaces; each is a sub-directory of Options.Dir and
// the name of the namespace file under /proc/<tid>/ns.
const (
	KindNet = "net"
	KindIPC = "ipc"
	KindUTS = "uts"
)

var kinds = []string{KindNet, KindIPC, KindUTS}

// Options says which namespaces a pod gets of its own and how they are set up.
type Options struct {
	// Dir holds the pins, e.g. <rundir>/ns; a pin is Dir/<kind>/<podID>.
	Dir string
	// NewNet, NewIPC and NewUTS ask for a new namespace of that kind;
	// false means the pod shares the host's.
	NewNet, NewIPC, NewUTS bool
	// Hostname is set in the new UTS namespace; ignored without NewUTS
	// (a pod in the host's UTS namespace has the host's name).
	Hostname string
	// Sysctls are written in the new namespaces, keyed by name in dotted
	// ("net.ipv4.ping_group_range") or slashed ("net/ipv4/ping_group_range")
	// form. Only namespaced sysctls of namespaces the pod owns are accepted.
	Sysctls map[string]string
}

// Pinned names the pins of one pod. A path is "" when the pod uses the
// host's namespace of that kind.
type Pinned struct {
	PodID         string
	Net, IPC, UTS string
}

// paths returns the pins of p keyed by kind, skipping the host's namespaces.
func (p *Pinned) paths() map[string]string {
	out := map[string]string{}
	for kind, path := range map[string]string{KindNet: p.Net, KindIPC: p.IPC, KindUTS: p.UTS} {
		if path != "" {
			out[kind] = path
		}
	}
	return out
}

func (p *Pinned) set(kind, path string) {
	switch kind {
	case KindNet:
		p.Net = path
	case KindIPC:
		p.IPC = path
	case KindUTS:
		p.UTS = path
	}
}

// PinPath is where the pin of podID's namespace of kind lives under dir.
func PinPath(dir, kind, podID string) string {
	return filepath.Join(dir, kind, podID)
}

// validatePodID refuses ids that would escape Dir or name no file.
func validatePodID(podID string) error {
	if podID == "" || podID == "." || podID == ".." || strings.ContainsAny(podID, "/\x00") {
		return fmt.Errorf("pod id %q: %w", podID, errdefs.ErrInvalidArgument)
	}
	return nil
}
