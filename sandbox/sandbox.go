// Package sandbox holds Berth's pod sandboxes: their record, lifecycle state
// and the store that indexes them by id and name. The server's handlers are
// the only writers; everything else reads through the Store.
package sandbox

import (
	"fmt"
	"sync"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/objstore"
	"github.com/berth-dev/berth/namespaces"
)

// State is a sandbox's lifecycle state.
type State string

const (
	// StateReady: namespaces and network are set up.
	StateReady State = "ready"
	// StateNotReady: stopped (network torn down, containers stopped).
	StateNotReady State = "notready"
)

// Sandbox is one pod sandbox. Fields set at creation never change; the
// mutable ones are behind mu.
type Sandbox struct {
	ID     string
	Name   string
	Config *runtime.PodSandboxConfig
	// RuntimeHandler is the handler as the request named it (reported back
	// as is, "" included); Handler is the one that runs the pod.
	RuntimeHandler string
	Handler        string
	CreatedAt      time.Time
	// Dir holds the pod's resolv.conf, hosts, hostname and shm mount.
	Dir string
	// NS are the pod's pinned namespaces ("" paths are the host's).
	NS *namespaces.Pinned
	// CgroupParent is where the pod's containers' cgroups go.
	CgroupParent string
	// InfraID is the id of the pause container, "" when the pod has none;
	// InfraBundle is its OCI bundle.
	InfraID     string
	InfraBundle string

	mu       sync.Mutex
	phase    Phase
	state    State
	ips      []string
	netSetUp bool
}

// New returns a sandbox record in the NotReady state.
func New(id, name string, cfg *runtime.PodSandboxConfig, requested, handler, dir string) *Sandbox {
	return &Sandbox{
		ID: id, Name: name, Config: cfg, RuntimeHandler: requested, Handler: handler, Dir: dir,
		CreatedAt: time.Now(), state: StateNotReady, phase: PhaseCreating,
	}
}

// State returns the sandbox's state.
func (s *Sandbox) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// SetState moves the sandbox to st.
func (s *Sandbox) SetState(st State) {
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
}

// SetPhase records how far creation or removal got, for the next checkpoint.
func (s *Sandbox) SetPhase(p Phase) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

// Phase returns the sandbox's phase.
func (s *Sandbox) Phase() Phase {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.phase
}

// IPs returns the pod's addresses, primary first.
func (s *Sandbox) IPs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ips...)
}

// SetNetwork records whether the pod network is set up and its addresses.
func (s *Sandbox) SetNetwork(up bool, ips []string) {
	s.mu.Lock()
	s.netSetUp, s.ips = up, ips
	s.mu.Unlock()
}

// NetworkSetUp tells whether a CNI ADD succeeded and no DEL ran since.
func (s *Sandbox) NetworkSetUp() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.netSetUp
}

// GetID and Created let the object store index sandboxes.
func (s *Sandbox) GetID() string      { return s.ID }
func (s *Sandbox) Created() time.Time { return s.CreatedAt }

// Store holds the daemon's sandboxes.
type Store = objstore.Store[*Sandbox]

// NewStore returns an empty sandbox store.
func NewStore() *Store { return objstore.New[*Sandbox]("pod sandbox") }

// HostNetwork tells whether the pod uses the host's network namespace.
func (s *Sandbox) HostNetwork() bool {
	return s.Config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetNetwork() == runtime.NamespaceMode_NODE
}

// Name builds the unique sandbox name the kubelet's conventions expect.
func Name(md *runtime.PodSandboxMetadata) string {
	return fmt.Sprintf("k8s_POD_%s_%s_%s_%d", md.GetName(), md.GetNamespace(), md.GetUid(), md.GetAttempt())
}
