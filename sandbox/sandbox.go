// Package sandbox holds Berth's pod sandboxes: their record, their status
// with its table of legal transitions, and the store that indexes them by id
// and name. A pod's status changes only through Sandbox.Update.
package sandbox

import (
	"fmt"
	"sync"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/lifecycle"
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

// Sandbox is one pod sandbox. The exported fields are filled in while
// RunPodSandbox builds the pod (or recovery reads its record), before it is
// added to the store; from then on they never change. All that changes is
// the Status, through Update.
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
	// InfraBundle is its OCI bundle; InfraPid is its process, whose pid
	// namespace the containers of a pod with pid mode POD join (0 when the
	// pod has none). The pid is kept, not read back from conmon's pid file
	// on each CreateContainer: it is known from the moment the pause
	// container is created.
	InfraID     string
	InfraBundle string
	InfraPid    int

	status *lifecycle.Box[Status]
	// creates is held shared by every CreateContainer in the pod and
	// exclusively by StopPodSandbox, so that no container is added to a pod
	// whose containers are being stopped.
	creates sync.RWMutex
}

// Status is what changes about a pod over its life.
type Status struct {
	Phase lifecycle.Phase
	State State
	// IPs are the pod's addresses, primary first; NetworkSetUp tells
	// whether a CNI ADD succeeded and no DEL ran since.
	IPs          []string
	NetworkSetUp bool
}

// stateNext is the table of legal state changes. A pod becomes ready once,
// at the end of its creation, and never again after it stopped.
var stateNext = map[State][]State{
	StateNotReady: {StateReady},
	StateReady:    {StateNotReady},
}

// Records is where sandbox records are kept (checkpoint.Dir).
type Records interface {
	Save(id string, v any) error
	Delete(id string) error
}

// New returns a sandbox in the NotReady state, phase Creating.
func New(id, name string, cfg *runtime.PodSandboxConfig, requested, handler, dir string, records Records) *Sandbox {
	s := &Sandbox{
		ID: id, Name: name, Config: cfg, RuntimeHandler: requested, Handler: handler, Dir: dir,
		CreatedAt: time.Now(),
	}
	s.status = newBox(s, Status{Phase: lifecycle.Creating, State: StateNotReady}, records)
	return s
}

func newBox(s *Sandbox, st Status, records Records) *lifecycle.Box[Status] {
	return lifecycle.NewBox(st, lifecycle.Hooks[Status]{
		Check: s.checkTransition,
		Save: func(_, next Status) error {
			if next.Phase == lifecycle.Removed {
				return records.Delete(s.ID)
			}
			rec, err := s.record(next)
			if err != nil {
				return err
			}
			return records.Save(s.ID, rec)
		},
	})
}

func (s *Sandbox) checkTransition(old, next Status) error {
	if err := lifecycle.CheckPhase("pod sandbox", s.ID, old.Phase, next.Phase); err != nil {
		return err
	}
	if old.State == next.State {
		return nil
	}
	legal := false
	for _, st := range stateNext[old.State] {
		legal = legal || st == next.State
	}
	if !legal || (next.State == StateReady && old.Phase != lifecycle.Creating) {
		return &lifecycle.TransitionError{Kind: "pod sandbox", ID: s.ID, What: "state", From: string(old.State), To: string(next.State)}
	}
	return nil
}

// Status returns the status as last saved.
func (s *Sandbox) Status() Status { return s.status.Get() }

// State returns the sandbox's state.
func (s *Sandbox) State() State { return s.status.Get().State }

// Phase returns the sandbox's phase.
func (s *Sandbox) Phase() lifecycle.Phase { return s.status.Get().Phase }

// IPs returns the pod's addresses, primary first.
func (s *Sandbox) IPs() []string { return append([]string(nil), s.status.Get().IPs...) }

// NetworkSetUp tells whether a CNI ADD succeeded and no DEL ran since.
func (s *Sandbox) NetworkSetUp() bool { return s.status.Get().NetworkSetUp }

// Update is the one way a sandbox's status changes: fn edits a copy (IPs
// must be replaced, not modified); the change is checked, saved and then
// made visible, before any other update of s begins.
func (s *Sandbox) Update(fn func(*Status) error) error { return s.status.Update(fn) }

// Checkpoint saves the record as it is now; creation uses it for the
// fields it has filled in so far.
func (s *Sandbox) Checkpoint() error { return s.Update(func(*Status) error { return nil }) }

// SetPhase moves the sandbox to phase p.
func (s *Sandbox) SetPhase(p lifecycle.Phase) error {
	return s.Update(func(st *Status) error { st.Phase = p; return nil })
}

// SetNetwork records whether the pod network is set up and its addresses.
func (s *Sandbox) SetNetwork(up bool, ips []string) error {
	return s.Update(func(st *Status) error { st.NetworkSetUp, st.IPs = up, ips; return nil })
}

// SetState moves the sandbox to state.
func (s *Sandbox) SetState(state State) error {
	return s.Update(func(st *Status) error {
		if st.State == state {
			return lifecycle.Unchanged
		}
		st.State = state
		return nil
	})
}

// BeginCreate admits a CreateContainer into the pod: it fails with
// FailedPrecondition unless the pod is ready, and otherwise holds off
// StopPodSandbox until done is called.
func (s *Sandbox) BeginCreate() (done func(), err error) {
	s.creates.RLock()
	if st := s.State(); st != StateReady {
		s.creates.RUnlock()
		return nil, fmt.Errorf("pod sandbox %s is not ready: %w", s.ID, errdefs.ErrFailedPrecondition)
	}
	return s.creates.RUnlock, nil
}

// BlockCreates waits for the container creations under way in the pod and
// keeps new ones out until release is called.
func (s *Sandbox) BlockCreates() (release func()) {
	s.creates.Lock()
	return s.creates.Unlock
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
