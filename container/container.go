// Package container holds Berth's containers: their record, their status
// with its table of legal transitions, and the store that indexes them.
// A container's status changes in one place only, Container.Update: the
// server decides what should happen, this package checks that it may, saves
// it and only then lets anyone see it.
package container

import (
	"fmt"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/lifecycle"
	"github.com/berth-dev/berth/internal/objstore"
)

// State is a container's lifecycle state.
type State string

const (
	StateCreated State = "created"
	StateRunning State = "running"
	StateExited  State = "exited"
)

// stateNext is the table of legal state changes; staying put is legal too.
var stateNext = map[State][]State{
	StateCreated: {StateRunning, StateExited},
	StateRunning: {StateExited},
}

// Container is one CRI container. The exported fields are filled in while
// CreateContainer builds the container (or recovery reads its record),
// before it is added to the store; from then on they never change. All that
// changes is the Status, through Update.
type Container struct {
	ID        string
	Name      string
	PodID     string
	Config    *runtime.ContainerConfig
	CreatedAt time.Time
	// ImageID is the storage image the rootfs was made from; ImageRef is
	// the repo digest reported as ContainerStatus.image_ref.
	ImageID  string
	ImageRef string
	// ImageName is the image as ContainerStatus and ListContainers name it:
	// what the pod spec says (the kubelet creates from the image's id and
	// passes the name as user_specified_image), else what the client
	// asked for, else a tag of the image; "" in records older than it.
	ImageName string
	// Handler is the runtime handler and CgroupParent the cgroup parent,
	// both the pod's.
	Handler      string
	CgroupParent string
	// Bundle holds config.json; LogPath is the CRI log file.
	Bundle  string
	LogPath string
	// Mounts are reported in ContainerStatus; VolumeDirs back the image's
	// anonymous volumes and are removed with the container.
	Mounts     []*runtime.Mount
	VolumeDirs []string
	// ImageMounts are the images mounted for image volumes, each once.
	ImageMounts []string
	StopSignal  string
	// User is the identity the process runs as, as resolved at creation.
	User *runtime.ContainerUser

	status *lifecycle.Box[Status]
}

// Status is what changes about a container over its life.
type Status struct {
	Phase lifecycle.Phase
	State State
	// Starting is set while StartContainer runs the runtime's start: an exit
	// seen meanwhile is left for the start to record after "running", so
	// that STARTED always precedes STOPPED. It is not saved: a restart ends
	// every call.
	Starting  bool
	StartedAt time.Time
	Exit      Exit
	Resources *runtime.LinuxContainerResources
	// ImagesReleased is set once a removal released the image volumes'
	// mounts: a removal finished after a crash must not release a mount
	// another container holds.
	ImagesReleased bool
}

// Exit is how a container ended.
type Exit struct {
	Code       int32
	FinishedAt time.Time
	Reason     string // Completed, Error, OOMKilled
	Message    string
}

// Records is where container records are kept (checkpoint.Dir).
type Records interface {
	Save(id string, v any) error
	Delete(id string) error
}

// unsyncedSaver is Records that can also save a record without waiting for
// the disk (checkpoint.Dir): the record of a container still being created
// need not survive a crash of the node, only one of the daemon.
type unsyncedSaver interface {
	SaveUnsynced(id string, v any) error
}

// Hooks connect a container to its owner: Records keeps its record and
// Changed, if set, hears of every committed status change, in order, before
// the next one (the server publishes CRI events from it).
type Hooks struct {
	Records Records
	Changed func(c *Container, old, next Status)
}

// New returns a container in the Created state, phase Creating.
func New(id, name, podID string, cfg *runtime.ContainerConfig, h Hooks) *Container {
	c := &Container{ID: id, Name: name, PodID: podID, Config: cfg, CreatedAt: time.Now()}
	c.status = newBox(c, Status{Phase: lifecycle.Creating, State: StateCreated, Resources: cfg.GetLinux().GetResources()}, h)
	return c
}

func newBox(c *Container, st Status, h Hooks) *lifecycle.Box[Status] {
	hooks := lifecycle.Hooks[Status]{
		Check: c.checkTransition,
		Save: func(old, next Status) error {
			// Starting is not saved: a change of it alone would write
			// the same record again, and cost StartContainer a sync.
			if onlyStarting(old, next) {
				return nil
			}
			if next.Phase == lifecycle.Removed {
				return h.Records.Delete(c.ID)
			}
			rec, err := c.record(next)
			if err != nil {
				return err
			}
			if u, ok := h.Records.(unsyncedSaver); ok && next.Phase == lifecycle.Creating {
				// A creation that a node crash loses is undone all the
				// same: at start-up, what Berth made that no record
				// names (the storage container, conmon) is removed.
				return u.SaveUnsynced(c.ID, rec)
			}
			return h.Records.Save(c.ID, rec)
		},
	}
	if h.Changed != nil {
		hooks.Changed = func(old, next Status) { h.Changed(c, old, next) }
	}
	return lifecycle.NewBox(st, hooks)
}

// onlyStarting reports whether next differs from old in Starting alone,
// which is not saved: saving would write the same record again, and cost
// StartContainer a sync. (An update that changes nothing, as Checkpoint's,
// is saved.)
func onlyStarting(old, next Status) bool {
	if old.Starting == next.Starting {
		return false
	}
	old.Starting = next.Starting
	return old == next
}

// GetID and Created let the object store index containers.
func (c *Container) GetID() string      { return c.ID }
func (c *Container) Created() time.Time { return c.CreatedAt }

// Status returns the status as last saved.
func (c *Container) Status() Status { return c.status.Get() }

// State returns the lifecycle state.
func (c *Container) State() State { return c.status.Get().State }

// Update is the one way a container's status changes: fn edits a copy;
// the change is checked against the transition tables, saved, made visible
// and reported to Hooks.Changed, before any other update of c begins. fn
// may return lifecycle.Unchanged to change nothing.
func (c *Container) Update(fn func(*Status) error) error { return c.status.Update(fn) }

func (c *Container) checkTransition(old, next Status) error {
	if err := lifecycle.CheckPhase("container", c.ID, old.Phase, next.Phase); err != nil {
		return err
	}
	if old.State != next.State && !legal(stateNext[old.State], next.State) {
		return &lifecycle.TransitionError{Kind: "container", ID: c.ID, What: "state", From: string(old.State), To: string(next.State)}
	}
	if next.Starting && next.State != StateCreated {
		return &lifecycle.TransitionError{Kind: "container", ID: c.ID, What: "state", From: string(old.State), To: "starting"}
	}
	return nil
}

func legal(next []State, to State) bool {
	for _, s := range next {
		if s == to {
			return true
		}
	}
	return false
}

// Store holds the daemon's containers.
type Store = objstore.Store[*Container]

// NewStore returns an empty container store.
func NewStore() *Store { return objstore.New[*Container]("container") }

// Name builds the unique container name the kubelet's conventions expect.
func Name(md *runtime.ContainerMetadata, pod *runtime.PodSandboxMetadata) string {
	return fmt.Sprintf("k8s_%s_%s_%s_%s_%d", md.GetName(), pod.GetName(), pod.GetNamespace(), pod.GetUid(), md.GetAttempt())
}

// ExitReason names an exit the way the kubelet shows it.
func ExitReason(code int32, oom bool) string {
	switch {
	case oom:
		return "OOMKilled"
	case code == 0:
		return "Completed"
	default:
		return "Error"
	}
}
