package server

import (
	"context"
	"syscall"
	"time"

	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/checkpoint"
	"github.com/berth-dev/berth/namespaces"
	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/nri"
	"github.com/berth-dev/berth/oci"
	"github.com/berth-dev/berth/storage"
)

// The server declares what it uses of each subsystem, and nothing more, so
// its logic runs against fakes in unit tests (fakes_test.go) as kubelet's
// runtime manager does. The daemon passes the production types in Deps.

// ImageStore is what the server uses of the image store.
type ImageStore interface {
	Image(ctx context.Context, ref string) (*storage.Image, error)
	PullImage(ctx context.Context, ref string, creds storage.Credentials) (storage.PullResult, error)
	ListImages(ctx context.Context, filter string) ([]*storage.Image, error)
	RemoveImage(ctx context.Context, ref string) error
	FsInfo(ctx context.Context) (storage.FsInfo, error)
	// MountImage mounts an image read-only for an image volume.
	MountImage(id string) (string, error)
	UnmountImage(id string) error
}

// RootfsStore is what the server uses of the containers' root filesystems.
type RootfsStore interface {
	CreateRootfs(ctx context.Context, id, name, imageID string, owner storage.Owner) error
	MountRootfs(id string) (string, error)
	// RootfsRunDir is a storage-owned run dir of id: the infra container's
	// bundle (a container's bundle is its runtime persist dir).
	RootfsRunDir(id string) (string, error)
	RemoveRootfs(id string) error
	ListRootfs() ([]storage.Rootfs, error)
	WritableLayerUsage(id string) (bytes, inodes uint64, err error)
	LayersDir() string
}

// PodNetwork is what the server uses of the pod network.
type PodNetwork interface {
	Status() error
	Setup(ctx context.Context, pod network.Pod) (*network.Result, error)
	Teardown(ctx context.Context, pod network.Pod) error
	GC(ctx context.Context, keep []network.Pod) error
}

// PodNamespaces is what the server uses of the host to give a pod
// namespaces of its own and a /dev/shm: pinning them and mounting it need
// root (namespaces.Host).
type PodNamespaces interface {
	Pin(ctx context.Context, podID string, opts namespaces.Options) (*namespaces.Pinned, error)
	Unpin(p *namespaces.Pinned) error
	// Remove unpins every namespace of the pod, when the Pinned value is
	// not at hand (a pod restored from its record, a leftover).
	Remove(podID string) error
	List() ([]string, error)
	PinPath(kind, podID string) string
	IsPinned(path string) bool
	MountShm(path string, size int64) error
	UnmountShm(path string) error
}

// Records is where one kind of record (pods' or containers') is kept
// across restarts: a checkpoint.Dir in production.
type Records interface {
	Save(id string, v any) error
	Delete(id string) error
}

// OCIRuntime is what the server uses of one runtime handler.
type OCIRuntime interface {
	Name() string
	CreateContainer(ctx context.Context, c *oci.Container) (pid int, err error)
	// LaunchContainer starts c's conmon, which runs the runtime's create
	// once its Launched.Create is called; PersistDir is the runtime's dir
	// of c, where its bundle may go.
	LaunchContainer(ctx context.Context, c *oci.Container) (oci.Launched, error)
	PersistDir(c *oci.Container) string
	StartContainer(ctx context.Context, c *oci.Container) error
	StopContainer(ctx context.Context, c *oci.Container, timeout time.Duration, stopSignal syscall.Signal) error
	DeleteContainer(ctx context.Context, c *oci.Container) error
	UpdateResources(ctx context.Context, c *oci.Container, res *specs.LinuxResources) error
	ReopenLog(ctx context.Context, c *oci.Container) error

	State(ctx context.Context, c *oci.Container) (*specs.State, error)
	Exit(c *oci.Container) (st oci.ExitStatus, exited bool, err error)
	InitPid(c *oci.Container) (int, error)
	InitAlive(c *oci.Container) bool
	IsConmonAlive(c *oci.Container) bool

	ExecSync(ctx context.Context, c *oci.Container, cmd []string, timeout time.Duration) (*oci.ExecResult, error)
	ExecStream(ctx context.Context, c *oci.Container, cmd []string, s oci.Streams) (int32, error)
	Attach(ctx context.Context, c *oci.Container, s oci.Streams) error
}

// NRI is what the server tells node resource plugins (nri.NRI): every pod
// and container event, with the adjustments and updates they answer.
// Deps.NRI nil turns NRI off.
type NRI interface {
	BlockPluginSync() (unblock func())
	RunPodSandbox(ctx context.Context, pod *api.PodSandbox) error
	UpdatePodSandbox(ctx context.Context, pod *api.PodSandbox, overhead, resources *api.LinuxResources) error
	PostUpdatePodSandbox(ctx context.Context, pod *api.PodSandbox) error
	StopPodSandbox(ctx context.Context, pod *api.PodSandbox) error
	RemovePodSandbox(ctx context.Context, pod *api.PodSandbox) error
	CreateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error)
	PostCreateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error
	StartContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error
	PostStartContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error
	UpdateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container, res *api.LinuxResources) (*api.LinuxResources, []*api.ContainerUpdate, error)
	PostUpdateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error
	StopContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) ([]*api.ContainerUpdate, error)
	RemoveContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error
	// ApplyLater applies updates plugins returned, outside the caller's
	// locks.
	ApplyLater(updates []*api.ContainerUpdate)
}

var (
	_ NRI           = (*nri.NRI)(nil)
	_ ImageStore    = (*storage.ImageService)(nil)
	_ RootfsStore   = (*storage.RootfsService)(nil)
	_ PodNetwork    = (*network.Manager)(nil)
	_ PodNamespaces = namespaces.Host{}
	_ Records       = checkpoint.Dir("")
	_ OCIRuntime    = (*oci.Runtime)(nil)
)
