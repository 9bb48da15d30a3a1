package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/crashpoint"
	"github.com/berth-dev/berth/internal/inflight"
	"github.com/berth-dev/berth/internal/lifecycle"
	"github.com/berth-dev/berth/internal/undo"
	"github.com/berth-dev/berth/namespaces"
	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/sandbox"
	"github.com/berth-dev/berth/specgen"
)

// RunPodSandbox creates and starts a pod-level sandbox: its name, pinned
// namespaces, DNS and hosts files, shared memory, network and (when the pod
// needs one) infra container.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtime.RunPodSandboxRequest) (*runtime.RunPodSandboxResponse, error) {
	cfg := req.GetConfig()
	if err := validateSandboxConfig(cfg); err != nil {
		return nil, err
	}
	handler, err := s.runtimeHandler(req.GetRuntimeHandler())
	if err != nil {
		return nil, err
	}
	// A kubelet whose deadline passes retries with the same name: the
	// creation carries on and its result goes to the retry.
	id, err := s.podCreates.Do(ctx, sandbox.Name(cfg.GetMetadata()), requestKey(req), func(ctx context.Context) (string, error) {
		sb, err := s.runPodSandbox(ctx, cfg, req.GetRuntimeHandler(), handler)
		if err != nil {
			return "", err
		}
		return sb.ID, nil
	})
	if err != nil {
		return nil, err
	}
	return &runtime.RunPodSandboxResponse{PodSandboxId: id}, nil
}

func validateSandboxConfig(cfg *runtime.PodSandboxConfig) error {
	md := cfg.GetMetadata()
	switch {
	case cfg == nil:
		return invalidf("config", "required")
	case md == nil:
		return invalidf("config.metadata", "required")
	case md.GetName() == "":
		return invalidf("config.metadata.name", "required")
	case md.GetNamespace() == "":
		return invalidf("config.metadata.namespace", "required")
	case md.GetUid() == "":
		return invalidf("config.metadata.uid", "required")
	}
	return nil
}

// runtimeHandler resolves a RuntimeClass handler name; empty is the default.
func (s *Server) runtimeHandler(name string) (string, error) {
	if name == "" {
		return s.config.Runtime.DefaultHandler, nil
	}
	if s.runtimeFor(name) != nil {
		return name, nil
	}
	names := s.handlerNames()
	return "", invalidf("runtime_handler", "unknown handler %q (configured: %s)", name, strings.Join(names, ", "))
}

func newID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("read random id: %v", err)) // the kernel's CSPRNG does not fail
	}
	return hex.EncodeToString(b)
}

func (s *Server) runPodSandbox(ctx context.Context, cfg *runtime.PodSandboxConfig, requested, handler string) (*sandbox.Sandbox, error) {
	nsOpts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	hostNet := nsOpts.GetNetwork() == runtime.NamespaceMode_NODE
	hostIPC := nsOpts.GetIpc() == runtime.NamespaceMode_NODE
	sysctls := mergeSysctls(s.config.Runtime.DefaultSysctls, cfg.GetLinux().GetSysctls())
	if _, err := namespaces.ValidateSysctls(sysctls, hostNet, hostIPC); err != nil {
		return nil, fmt.Errorf("config.linux.sysctls: %w", err)
	}
	if !hostNet {
		if err := s.network.Status(); err != nil {
			return nil, fmt.Errorf("pod network is not ready: %v: %w", err, errdefs.ErrFailedPrecondition)
		}
	}

	// Before any lock: a plugin connecting now sees this pod in its sync or
	// hears of it.
	defer s.blockNRISync()()
	id := newID()
	name := sandbox.Name(cfg.GetMetadata())
	var undos undo.Stack
	defer undos.Run(s.log)

	if err := s.podNames.Reserve(name, id); err != nil {
		return nil, fmt.Errorf("reserve pod name: %w", err)
	}
	undos.Add("release pod name "+name, func() error { s.podNames.Release(name, id); return nil })

	sb := sandbox.New(id, name, cfg, requested, handler, filepath.Join(s.config.Runtime.RunDir, "pods", id), s.podRecords)
	sb.CgroupParent = s.cgroupParent(cfg)
	log := s.log.With("pod", id, "name", name)
	steps := newStepTimes(time.Now())
	defer func() { log.Debug("run pod steps", steps.attrs()...) }()
	// The record goes first and its deletion is the last undo: a crash at
	// any later step leaves a "creating" record for recovery to undo.
	if err := sb.Checkpoint(); err != nil {
		return nil, err
	}
	undos.Add("delete pod record", func() error { return sb.SetPhase(lifecycle.Removed) })
	crashpoint.Hit("RunPodSandbox:recorded")
	steps.done("record")
	if err := os.MkdirAll(sb.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create pod dir: %w", err)
	}
	undos.Add("remove pod dir", func() error { return os.RemoveAll(sb.Dir) })
	steps.done("dir")

	inflight.SetStage(ctx, "pod namespaces")
	hostname := cfg.GetHostname()
	pins, err := s.ns.Pin(ctx, id, namespaces.Options{
		NewNet:   !hostNet,
		NewIPC:   !hostIPC,
		NewUTS:   !hostNet,
		Hostname: hostname,
		Sysctls:  sysctls,
	})
	if err != nil {
		return nil, fmt.Errorf("pin namespaces of pod %s: %w", id, err)
	}
	sb.NS = pins
	undos.Add("unpin namespaces", func() error { return s.ns.Unpin(pins) })
	crashpoint.Hit("RunPodSandbox:namespaces")
	steps.done("namespaces")

	if !hostIPC {
		size, _ := config.ParseSize(s.config.Runtime.ShmSize) // validated at start-up
		if err := s.ns.MountShm(sb.ShmPath(), size); err != nil {
			return nil, err
		}
		undos.Add("unmount shm", func() error { return s.ns.UnmountShm(sb.ShmPath()) })
	}
	if err := sb.WriteResolvConf(sandbox.NodeResolvConf); err != nil {
		return nil, err
	}
	steps.done("shm_resolv_conf")

	if !hostNet {
		inflight.SetStage(ctx, "sandbox network creation")
		pod := networkPod(sb)
		undos.Add("tear down pod network", func() error {
			// The caller's context may be what failed; DEL must still run.
			return s.network.Teardown(context.WithoutCancel(ctx), pod)
		})
		res, err := s.network.Setup(ctx, pod)
		if err != nil {
			return nil, fmt.Errorf("set up network of pod %s: %w", id, err)
		}
		if err := sb.SetNetwork(true, res.IPs); err != nil {
			return nil, err
		}
		log.Info("pod network set up", "ips", res.IPs)
		crashpoint.Hit("RunPodSandbox:network")
		steps.done("network")
	}
	if err := sb.WriteHostsAndHostname(sandbox.NodeHosts); err != nil {
		return nil, err
	}
	steps.done("hosts")

	if s.needsInfra(cfg) {
		inflight.SetStage(ctx, "infra container")
		if err := s.startInfra(ctx, sb, &undos); err != nil {
			return nil, fmt.Errorf("start infra container of pod %s: %w", id, err)
		}
		crashpoint.Hit("RunPodSandbox:infra")
		steps.done("infra")
	}

	if s.nri != nil {
		inflight.SetStage(ctx, "NRI plugins")
		// Added first: the plugins before a failing one heard of the pod.
		undos.Add("tell NRI plugins the pod is gone", func() error {
			return s.nri.RemovePodSandbox(context.WithoutCancel(ctx), s.nriPod(sb))
		})
		if err := s.nri.RunPodSandbox(ctx, s.nriPod(sb)); err != nil {
			return nil, err
		}
		crashpoint.Hit("RunPodSandbox:nri")
		steps.done("nri")
	}

	if err := sb.Update(func(st *sandbox.Status) error {
		st.State, st.Phase = sandbox.StateReady, lifecycle.Created
		return nil
	}); err != nil {
		return nil, err
	}
	crashpoint.Hit("RunPodSandbox:done")
	steps.done("record_ready")
	s.sandboxes.Add(sb)
	undos.Commit()
	log.Info("pod sandbox ready", "handler", handler, "hostNetwork", hostNet)
	s.emitSandbox(runtime.ContainerEventType_CONTAINER_CREATED_EVENT, sb)
	s.emitSandbox(runtime.ContainerEventType_CONTAINER_STARTED_EVENT, sb)
	return sb, nil
}

// mergeSysctls lays the pod's sysctls over the configured defaults.
func mergeSysctls(defaults []string, pod map[string]string) map[string]string {
	out := map[string]string{}
	for _, kv := range defaults {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	for k, v := range pod {
		out[k] = v
	}
	return out
}

// cgroupParent is the pod's cgroup parent: the one it asked for, or the
// default of the configured cgroup manager, which specgen decides.
func (s *Server) cgroupParent(cfg *runtime.PodSandboxConfig) string {
	return specgen.CgroupParent(s.config.Runtime.CgroupManager, cfg.GetLinux().GetCgroupParent())
}

// needsInfra tells whether the pod gets a pause container: when its
// containers share a PID namespace (the pause process is its init) or when
// drop_infra is off.
func (s *Server) needsInfra(cfg *runtime.PodSandboxConfig) bool {
	if !s.config.Runtime.DropInfra {
		return true
	}
	return cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetPid() == runtime.NamespaceMode_POD
}

func networkPod(sb *sandbox.Sandbox) network.Pod {
	md := sb.Config.GetMetadata()
	pod := network.Pod{
		ID: sb.ID, Name: md.GetName(), Namespace: md.GetNamespace(), UID: md.GetUid(),
		NetNS: sb.NS.Net,
	}
	for _, pm := range sb.Config.GetPortMappings() {
		if pm.GetHostPort() <= 0 {
			continue // only published ports concern the portmap plugin
		}
		pod.PortMappings = append(pod.PortMappings, network.PortMapping{
			HostPort:      pm.GetHostPort(),
			ContainerPort: pm.GetContainerPort(),
			Protocol:      strings.ToLower(pm.GetProtocol().String()),
			HostIP:        pm.GetHostIp(),
		})
	}
	return pod
}
