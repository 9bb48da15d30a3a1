// Package container holds Berth's containers: their record, lifecycle state
// with checked transitions, and the store that indexes them.
package container

import (
	"fmt"
	"sync"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/objstore"
)

// State is a container's lifecycle state.
type State string

const (
	StateCreated State = "created"
	StateRunning State = "running"
	StateExited  State = "exited"
)

// Container is one CRI container. Fields set at creation never change; the
// lifecycle fields are behind mu.
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

	mu        sync.Mutex
	phase     Phase
	state     State
	startedAt time.Time
	exit      Exit
	resources *runtime.LinuxContainerResources
}

// Exit is how a container ended.
type Exit struct {
	Code       int32
	FinishedAt time.Time
	Reason     string // Completed, Error, OOMKilled
	Message    string
}

// New returns a container record in the Created state.
func New(id, name, podID string, cfg *runtime.ContainerConfig) *Container {
	return &Container{
		ID: id, Name: name, PodID: podID, Config: cfg,
		CreatedAt: time.Now(), state: StateCreated, phase: PhaseCreating,
		resources: cfg.GetLinux().GetResources(),
	}
}

// GetID and Created let the object store index containers.
func (c *Container) GetID() string      { return c.ID }
func (c *Container) Created() time.Time { return c.CreatedAt }

// Snapshot is a consistent copy of the lifecycle fields.
type Snapshot struct {
	Phase     Phase
	State     State
	StartedAt time.Time
	Exit      Exit
	Resources *runtime.LinuxContainerResources
}

// Snapshot returns the lifecycle fields at one instant.
func (c *Container) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Snapshot{Phase: c.phase, State: c.state, StartedAt: c.startedAt, Exit: c.exit, Resources: c.resources}
}

// SetPhase records how far creation or removal got, for the next checkpoint.
func (c *Container) SetPhase(p Phase) {
	c.mu.Lock()
	c.phase = p
	c.mu.Unlock()
}

// State returns the lifecycle state.
func (c *Container) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// SetRunning moves a created container to running.
func (c *Container) SetRunning(at time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != StateCreated {
		return fmt.Errorf("container %s is %s, not created: %w", c.ID, c.state, errdefs.ErrFailedPrecondition)
	}
	c.state, c.startedAt = StateRunning, at
	return nil
}

// SetExited records the exit of a created or running container. A second
// exit report (the watcher and a stop both notice) keeps the first.
func (c *Container) SetExited(e Exit) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == StateExited {
		return false
	}
	c.state, c.exit = StateExited, e
	return true
}

// SetResources records the limits last applied by UpdateContainerResources.
func (c *Container) SetResources(r *runtime.LinuxContainerResources) {
	c.mu.Lock()
	c.resources = r
	c.mu.Unlock()
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
