package nri

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	nrilog "github.com/containerd/nri/pkg/log"

	"github.com/berth-dev/berth/version"
)

// Domain is what the runtime shows plugins: the pods and containers a
// plugin is synchronized with when it connects, and the way to apply the
// container updates plugins ask for.
type Domain interface {
	ListPodSandboxes() []*api.PodSandbox
	ListContainers() []*api.Container
	// UpdateContainer applies one plugin's update to a container's
	// resources, without telling plugins about it again.
	UpdateContainer(ctx context.Context, u *api.ContainerUpdate) error
}

// Config is how Berth serves plugins.
type Config struct {
	SocketPath          string // external plugins connect here
	PluginPath          string // pre-installed plugins Berth launches
	PluginConfigPath    string // their configuration
	RegistrationTimeout time.Duration
	RequestTimeout      time.Duration
}

// NRI relays pod and container lifecycle events to plugins and brings back
// their adjustments. Each object's Stop and Remove reach plugins once, and a
// Remove is preceded by a Stop, whichever path (a CRI call, an exit, an
// undo) gets there first.
type NRI struct {
	cfg Config
	log *slog.Logger
	a   *adaptation.Adaptation

	mu    sync.Mutex // orders one object's events and guards state and dom
	state map[string]phase
	dom   Domain
}

// phase is how far plugins have heard of an object's life.
type phase int

const (
	started phase = iota + 1 // pod run or container created
	stopped
)

// timeoutsMu guards nri's timeouts, which are process-wide.
var timeoutsMu sync.Mutex

// New prepares the adaptation; nothing listens until Start.
func New(cfg Config, log *slog.Logger) (*NRI, error) {
	if log == nil {
		log = slog.Default()
	}
	n := &NRI{cfg: cfg, log: log, state: map[string]phase{}}
	// nri logs through one package-wide logger, and New already logs.
	bridgeLog.Store(log)
	bridgeOnce.Do(func() { nrilog.Set(slogBridge{}) })
	timeoutsMu.Lock()
	if cfg.RegistrationTimeout > 0 {
		adaptation.SetPluginRegistrationTimeout(cfg.RegistrationTimeout)
	}
	if cfg.RequestTimeout > 0 {
		adaptation.SetPluginRequestTimeout(cfg.RequestTimeout)
	}
	timeoutsMu.Unlock()
	a, err := adaptation.New("berth", version.Version, n.synchronize, n.updateContainers,
		adaptation.WithSocketPath(cfg.SocketPath),
		adaptation.WithPluginPath(cfg.PluginPath),
		adaptation.WithPluginConfigPath(cfg.PluginConfigPath),
	)
	if err != nil {
		return nil, fmt.Errorf("create NRI adaptation: %w", err)
	}
	n.a = a
	return n, nil
}

// Start launches the pre-installed plugins and listens for others, with
// dom as what they see. Objects dom lists count as started (or stopped),
// so a restarted Berth still tells plugins of their Stop and Remove.
func (n *NRI) Start(dom Domain) error {
	// nri removes whatever sits at the socket path before it listens: a
	// second runtime (a containerd, another Berth) must not lose its
	// plugins to us without a word.
	if c, err := net.DialTimeout("unix", n.cfg.SocketPath, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("NRI socket %s is served by another process (another runtime on this node?): set nri.socket_path", n.cfg.SocketPath)
	}
	n.mu.Lock()
	n.dom = dom
	n.seedLocked()
	n.mu.Unlock()
	if err := n.a.Start(); err != nil {
		return fmt.Errorf("start NRI on %s: %w", n.cfg.SocketPath, err)
	}
	n.log.Info("serving NRI", "socket", n.cfg.SocketPath, "pluginPath", n.cfg.PluginPath)
	return nil
}

// Stop closes the socket and stops the plugins Berth launched.
func (n *NRI) Stop() { n.a.Stop() }

// BlockPluginSync keeps a plugin from finishing its synchronization until
// the returned func is called, so an object made meanwhile is either in
// the plugin's sync or reaches it as an event. Call it once per CRI call,
// before any lock: a second hold in one goroutine deadlocks behind a
// waiting sync.
func (n *NRI) BlockPluginSync() func() { return n.a.BlockPluginSync().Unblock }

func (n *NRI) seedLocked() {
	for _, p := range n.dom.ListPodSandboxes() {
		n.state[p.GetId()] = started
	}
	for _, c := range n.dom.ListContainers() {
		ph := started
		if c.GetState() == api.ContainerState_CONTAINER_STOPPED {
			ph = stopped
		}
		n.state[c.GetId()] = ph
	}
}

// synchronize gives a connecting plugin the pods and containers there are.
// Updates it asks for are applied afterwards: applying them here, under
// the sync that blocks every CRI call, could wait on a call's lock.
func (n *NRI) synchronize(ctx context.Context, cb adaptation.SyncCB) error {
	n.mu.Lock()
	pods, ctrs := n.dom.ListPodSandboxes(), n.dom.ListContainers()
	n.mu.Unlock()
	updates, err := cb(ctx, pods, ctrs)
	if err != nil {
		return fmt.Errorf("synchronize plugin: %w", err)
	}
	n.ApplyLater(updates)
	return nil
}

// updateContainers applies the updates a plugin sends on its own, and
// returns the ones that failed.
func (n *NRI) updateContainers(ctx context.Context, updates []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
	var failed []*api.ContainerUpdate
	var errs []error
	for _, u := range updates {
		if u == nil {
			continue
		}
		if err := n.domain().UpdateContainer(ctx, u); err != nil {
			if !u.GetIgnoreFailure() {
				failed = append(failed, u)
				errs = append(errs, fmt.Errorf("container %s: %w", u.GetContainerId(), err))
			}
		}
	}
	return failed, errors.Join(errs...)
}

// ApplyLater applies updates plugins returned with an event, outside the
// event's locks; a failure is logged, as the event has already happened.
func (n *NRI) ApplyLater(updates []*api.ContainerUpdate) {
	if len(updates) == 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, u := range updates {
			if u == nil {
				continue
			}
			if err := n.domain().UpdateContainer(ctx, u); err != nil && !u.GetIgnoreFailure() {
				n.log.Warn("NRI plugin's container update not applied", "container", u.GetContainerId(), "error", err)
			}
		}
	}()
}

func (n *NRI) domain() Domain {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dom
}

// RunPodSandbox tells plugins of a new pod. The pod counts as started even
// when a plugin fails: the ones before it heard of the pod, and the undo's
// RemovePodSandbox tells them it is gone.
func (n *NRI) RunPodSandbox(ctx context.Context, pod *api.PodSandbox) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.state[pod.GetId()] = started
	if err := n.a.RunPodSandbox(ctx, &api.RunPodSandboxRequest{Pod: pod}); err != nil {
		return fmt.Errorf("NRI RunPodSandbox of pod %s: %w", pod.GetId(), err)
	}
	return nil
}

// UpdatePodSandbox tells plugins of new pod-level resources.
func (n *NRI) UpdatePodSandbox(ctx context.Context, pod *api.PodSandbox, overhead, resources *api.LinuxResources) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := n.a.UpdatePodSandbox(ctx, &api.UpdatePodSandboxRequest{Pod: pod, OverheadLinuxResources: overhead, LinuxResources: resources}); err != nil {
		return fmt.Errorf("NRI UpdatePodSandbox of pod %s: %w", pod.GetId(), err)
	}
	return nil
}

// PostUpdatePodSandbox tells plugins the pod's resources were updated.
func (n *NRI) PostUpdatePodSandbox(ctx context.Context, pod *api.PodSandbox) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.a.PostUpdatePodSandbox(ctx, &api.PostUpdatePodSandboxRequest{Pod: pod}); err != nil {
		return fmt.Errorf("NRI PostUpdatePodSandbox of pod %s: %w", pod.GetId(), err)
	}
	return nil
}

// StopPodSandbox tells plugins a pod stopped, once.
func (n *NRI) StopPodSandbox(ctx context.Context, pod *api.PodSandbox) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stopPodLocked(ctx, pod)
}

func (n *NRI) stopPodLocked(ctx context.Context, pod *api.PodSandbox) error {
	if n.state[pod.GetId()] != started {
		return nil
	}
	n.state[pod.GetId()] = stopped
	if err := n.a.StopPodSandbox(ctx, &api.StopPodSandboxRequest{Pod: pod}); err != nil {
		return fmt.Errorf("NRI StopPodSandbox of pod %s: %w", pod.GetId(), err)
	}
	return nil
}

// RemovePodSandbox tells plugins a pod is gone, after its Stop if that was
// not told yet.
func (n *NRI) RemovePodSandbox(ctx context.Context, pod *api.PodSandbox) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.state[pod.GetId()]; !ok {
		return nil
	}
	stopErr := n.stopPodLocked(ctx, pod)
	delete(n.state, pod.GetId())
	if err := n.a.RemovePodSandbox(ctx, &api.RemovePodSandboxRequest{Pod: pod}); err != nil {
		return errors.Join(stopErr, fmt.Errorf("NRI RemovePodSandbox of pod %s: %w", pod.GetId(), err))
	}
	return stopErr
}

// CreateContainer asks plugins to adjust a container about to be created.
// It returns their adjustment (nil when none) and the updates they ask for
// other containers. A failure leaves the container started for plugins, so
// that the undo's RemoveContainer reaches those that heard of it.
func (n *NRI) CreateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.state[ctr.GetId()] = started
	rsp, err := n.a.CreateContainer(ctx, &api.CreateContainerRequest{Pod: pod, Container: ctr})
	if err != nil {
		return nil, nil, fmt.Errorf("NRI CreateContainer of container %s: %w", ctr.GetId(), err)
	}
	return rsp.GetAdjust(), rsp.GetUpdate(), nil
}

// PostCreateContainer tells plugins a container was created.
func (n *NRI) PostCreateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.a.PostCreateContainer(ctx, &api.PostCreateContainerRequest{Pod: pod, Container: ctr}); err != nil {
		return fmt.Errorf("NRI PostCreateContainer of container %s: %w", ctr.GetId(), err)
	}
	return nil
}

// StartContainer tells plugins a container is about to start; an error
// keeps it from starting.
func (n *NRI) StartContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.a.StartContainer(ctx, &api.StartContainerRequest{Pod: pod, Container: ctr}); err != nil {
		return fmt.Errorf("NRI StartContainer of container %s: %w", ctr.GetId(), err)
	}
	return nil
}

// PostStartContainer tells plugins a container started.
func (n *NRI) PostStartContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.a.PostStartContainer(ctx, &api.PostStartContainerRequest{Pod: pod, Container: ctr}); err != nil {
		return fmt.Errorf("NRI PostStartContainer of container %s: %w", ctr.GetId(), err)
	}
	return nil
}

// UpdateContainer asks plugins about new resources for a container. It
// returns the resources to apply (nil: as requested) and the updates they
// ask for other containers, which the caller applies first.
func (n *NRI) UpdateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container, res *api.LinuxResources) (*api.LinuxResources, []*api.ContainerUpdate, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	rsp, err := n.a.UpdateContainer(ctx, &api.UpdateContainerRequest{Pod: pod, Container: ctr, LinuxResources: res})
	if err != nil {
		return nil, nil, fmt.Errorf("NRI UpdateContainer of container %s: %w", ctr.GetId(), err)
	}
	// nri puts the requested container's merged update last, nil when no
	// plugin touched it.
	var own *api.LinuxResources
	var others []*api.ContainerUpdate
	for _, u := range rsp.GetUpdate() {
		if u == nil {
			continue
		}
		if u.GetContainerId() == ctr.GetId() {
			own = u.GetLinux().GetResources()
			continue
		}
		others = append(others, u)
	}
	return own, others, nil
}

// PostUpdateContainer tells plugins a container's resources were updated.
func (n *NRI) PostUpdateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.a.PostUpdateContainer(ctx, &api.PostUpdateContainerRequest{Pod: pod, Container: ctr}); err != nil {
		return fmt.Errorf("NRI PostUpdateContainer of container %s: %w", ctr.GetId(), err)
	}
	return nil
}

// StopContainer tells plugins a container stopped, once, whether a CRI
// call stopped it or it exited; it returns the updates they ask for.
func (n *NRI) StopContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) ([]*api.ContainerUpdate, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stopContainerLocked(ctx, pod, ctr)
}

func (n *NRI) stopContainerLocked(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) ([]*api.ContainerUpdate, error) {
	if n.state[ctr.GetId()] != started {
		return nil, nil
	}
	n.state[ctr.GetId()] = stopped
	rsp, err := n.a.StopContainer(ctx, &api.StopContainerRequest{Pod: pod, Container: ctr})
	if err != nil {
		return nil, fmt.Errorf("NRI StopContainer of container %s: %w", ctr.GetId(), err)
	}
	return rsp.GetUpdate(), nil
}

// RemoveContainer tells plugins a container is gone, after its Stop if
// that was not told yet; updates the Stop brought back are applied later.
func (n *NRI) RemoveContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.state[ctr.GetId()]; !ok {
		return nil
	}
	updates, stopErr := n.stopContainerLocked(ctx, pod, ctr)
	n.ApplyLater(updates)
	delete(n.state, ctr.GetId())
	if err := n.a.RemoveContainer(ctx, &api.RemoveContainerRequest{Pod: pod, Container: ctr}); err != nil {
		return errors.Join(stopErr, fmt.Errorf("NRI RemoveContainer of container %s: %w", ctr.GetId(), err))
	}
	return stopErr
}

// slogBridge carries nri's own log lines into Berth's log. nri has one
// logger for the process, set once; the latest NRI's logger gets them.
type slogBridge struct{}

var (
	bridgeOnce sync.Once
	bridgeLog  atomic.Pointer[slog.Logger]
)

// quiet are nri's lines about choices Berth made on purpose (built without
// WASM plugins, a runtime name nri does not know): not a warning to anyone.
var quiet = []string{"failed to initialize WASM support", "failed to infer runtime NRI version"}

func (slogBridge) logf(ctx context.Context, level slog.Level, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	for _, q := range quiet {
		if strings.HasPrefix(msg, q) {
			level = slog.LevelDebug
		}
	}
	bridgeLog.Load().Log(ctx, level, msg, "component", "nri")
}

func (b slogBridge) Debugf(ctx context.Context, format string, args ...any) {
	b.logf(ctx, slog.LevelDebug, format, args...)
}

func (b slogBridge) Infof(ctx context.Context, format string, args ...any) {
	b.logf(ctx, slog.LevelInfo, format, args...)
}

func (b slogBridge) Warnf(ctx context.Context, format string, args ...any) {
	b.logf(ctx, slog.LevelWarn, format, args...)
}

func (b slogBridge) Errorf(ctx context.Context, format string, args ...any) {
	b.logf(ctx, slog.LevelError, format, args...)
}
