// Package server implements the CRI RuntimeService and ImageService. Handlers
// are thin: they validate the request and call into the package that owns the
// resource (storage, network, oci, conmon). Errors are returned as plain
// wrapped errors; instrument.go maps them to gRPC codes in one place.
package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/internal/inflight"
	"github.com/berth-dev/berth/internal/keylock"
	"github.com/berth-dev/berth/internal/registrar"
	"github.com/berth-dev/berth/sandbox"
	"github.com/berth-dev/berth/specgen"
)

// Server is Berth's CRI server. Calls it does not implement yet are answered
// with codes.Unimplemented by the embedded Unimplemented servers.
type Server struct {
	runtime.UnimplementedRuntimeServiceServer
	runtime.UnimplementedImageServiceServer

	config     *config.Config
	configPath string
	log        *slog.Logger

	images  ImageStore
	rootfs  RootfsStore
	network PodNetwork
	ns      PodNamespaces
	events  EventPublisher
	stats   *statsState
	// nri tells node resource plugins of every event; nil when NRI is off.
	nri NRI

	runtimesMu sync.RWMutex
	runtimes   map[string]OCIRuntime

	sandboxes *sandbox.Store
	// podRecords keeps every pod's record; the sandbox package writes it
	// as part of a status update.
	podRecords Records
	podNames   *registrar.Registrar
	podLocks   *keylock.Locks

	// podCreates and ctrCreates keep creations whose caller gave up, for
	// the caller's retry.
	podCreates *inflight.Tracker
	ctrCreates *inflight.Tracker

	containers *container.Store
	ctrNames   *registrar.Registrar
	ctrLocks   *keylock.Locks
	// ctrHooks keep every container's record and publish its events.
	ctrHooks container.Hooks
	// removals are the containers removed whose release goes on in the
	// background (container_remove.go).
	removals removals

	// stream serves exec, attach and port-forward URLs (streaming.go).
	stream streamerSlot

	// appArmor tells that the host enforces AppArmor; read once at
	// start-up, as the kernel's switch cannot change while it runs.
	appArmor bool
	// host holds the properties of this machine that specs depend on;
	// read once at start-up too.
	host *specgen.Host
}

// Deps are the subsystems the server drives; the daemon opens them, a unit
// test passes fakes. Every field but Events must be non-nil.
type Deps struct {
	Images  ImageStore
	Rootfs  RootfsStore
	Network PodNetwork
	// Namespaces pins pods' namespaces and mounts their shm.
	Namespaces PodNamespaces
	// Runtimes are the OCI runtime handlers by name.
	Runtimes map[string]OCIRuntime
	// Events receives container lifecycle events; nil drops them.
	Events EventPublisher
	// NRI relays events to node resource plugins; nil turns NRI off.
	NRI NRI
}

// New builds a server on opened subsystems.
func New(cfg *config.Config, configPath string, deps Deps, log *slog.Logger) *Server {
	events := deps.Events
	if events == nil {
		events = noEvents{}
	}
	s := &Server{
		events:     events,
		nri:        deps.NRI,
		stats:      newStatsState(),
		config:     cfg,
		configPath: configPath,
		log:        log,
		images:     deps.Images,
		rootfs:     deps.Rootfs,
		network:    deps.Network,
		ns:         deps.Namespaces,
		runtimes:   deps.Runtimes,
		sandboxes:  sandbox.NewStore(),
		podNames:   registrar.New(),
		podLocks:   keylock.New(),
		containers: container.NewStore(),
		ctrNames:   registrar.New(),
		ctrLocks:   keylock.New(),
		appArmor:   specgen.AppArmorEnabled(),
		host:       specgen.ProbeHost(),
	}
	s.podRecords = s.sandboxRecords()
	s.ctrHooks = container.Hooks{Records: s.containerRecords(), Changed: s.containerChanged}
	s.podCreates = inflight.New("pod sandbox", abandonAfter, s.removeAbandonedPod)
	s.ctrCreates = inflight.New("container", abandonAfter, s.removeAbandonedContainer)
	return s
}

// abandonAfter is how long a creation's result waits for the kubelet's
// retry; the kubelet retries within its 2-minute runtime request timeout
// plus back-off.
const abandonAfter = 4 * time.Minute

func (s *Server) removeAbandonedPod(id string) {
	sb, err := s.sandboxes.Get(id)
	if err != nil {
		return
	}
	s.log.Info("removing a pod sandbox whose creation nobody collected", "pod", id)
	if err := s.removePodSandbox(context.Background(), sb); err != nil {
		s.log.Error("remove abandoned pod sandbox", "pod", id, "error", err)
	}
}

func (s *Server) removeAbandonedContainer(id string) {
	c, err := s.containers.Get(id)
	if err != nil {
		return
	}
	s.log.Info("removing a container whose creation nobody collected", "container", id)
	if err := s.removeContainer(context.Background(), c); err != nil {
		s.log.Error("remove abandoned container", "container", id, "error", err)
	}
}

// lockPod serializes stop and remove of one pod.
func (s *Server) lockPod(id string) func() { return s.podLocks.Lock(id) }
