package bench

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Kubelet makes CRI requests the way kubelet 1.37 does for a BestEffort
// pod of one busybox container on the cgroupfs driver
// (pkg/kubelet/kuberuntime: generatePodSandboxConfig,
// generateContainerConfig), with the per-pod files kubelet keeps (pod log
// dir, etc-hosts, termination-log, a service account token) under Dir.
type Kubelet struct {
	Dir       string // stands in for /var/lib/kubelet and /var/log/pods
	Namespace string
	// ImageRef is what kubelet puts in ContainerConfig.Image: the image ID
	// ImageStatus answered; UserImage is the pod spec's image.
	ImageRef, UserImage string
	// Command of every container: it must exit on SIGTERM (as PID 1 of
	// its PID namespace it gets no default action), so that StopContainer
	// times the stop and not the grace period.
	Command []string
}

// SleepCommand sleeps until SIGTERM, as a process that handles it does.
var SleepCommand = []string{"sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"}

// Pod is one kubelet pod's identity and files.
type Pod struct {
	Name, Namespace, UID string
	LogDir               string // /var/log/pods/<ns>_<name>_<uid>
	Dir                  string // /var/lib/kubelet/pods/<uid>
}

// CgroupParent is where kubelet's cgroupfs driver puts a BestEffort pod.
func (p *Pod) CgroupParent() string { return "/kubepods/besteffort/pod" + p.UID }

// NewPod makes the pod's identity and the files kubelet writes before it
// calls RunPodSandbox.
func (k *Kubelet) NewPod(name string) (*Pod, error) {
	uid := newUID()
	p := &Pod{
		Name: name, Namespace: k.Namespace, UID: uid,
		LogDir: filepath.Join(k.Dir, "log", "pods", fmt.Sprintf("%s_%s_%s", k.Namespace, name, uid)),
		Dir:    filepath.Join(k.Dir, "lib", "pods", uid),
	}
	if err := os.MkdirAll(p.LogDir, 0o755); err != nil {
		return nil, err
	}
	token := filepath.Join(p.Dir, "volumes", "kubernetes.io~projected", "kube-api-access")
	if err := os.MkdirAll(token, 0o755); err != nil {
		return nil, err
	}
	for f, data := range map[string]string{
		filepath.Join(token, "token"):     "bench-token\n",
		filepath.Join(token, "namespace"): k.Namespace + "\n",
		filepath.Join(token, "ca.crt"):    "",
		filepath.Join(p.Dir, "etc-hosts"): "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
	} {
		if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Remove deletes the pod's kubelet files.
func (p *Pod) Remove() error {
	return errors.Join(os.RemoveAll(p.LogDir), os.RemoveAll(p.Dir))
}

// SandboxConfig is kubelet's PodSandboxConfig: metadata, hostname, the log
// directory, cluster DNS, no port mappings, the labels and annotations it
// adds, and Linux settings with the cgroupfs parent, PID namespace per
// container (no shareProcessNamespace) and the pod network.
func (k *Kubelet) SandboxConfig(p *Pod) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: p.Name, Namespace: p.Namespace, Uid: p.UID, Attempt: 0},
		Hostname:     p.Name,
		LogDirectory: p.LogDir,
		DnsConfig: &runtimeapi.DNSConfig{
			Servers:  []string{"10.96.0.10"},
			Searches: []string{p.Namespace + ".svc.cluster.local", "svc.cluster.local", "cluster.local"},
			Options:  []string{"ndots:5"},
		},
		Labels: map[string]string{
			"app":                         "bench",
			"io.kubernetes.pod.name":      p.Name,
			"io.kubernetes.pod.namespace": p.Namespace,
			"io.kubernetes.pod.uid":       p.UID,
			"pod-template-hash":           "5d8c9f7b6",
		},
		Annotations: map[string]string{
			"kubernetes.io/config.seen":   time.Now().UTC().Format(time.RFC3339Nano),
			"kubernetes.io/config.source": "api",
		},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: p.CgroupParent(),
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: runtimeapi.NamespaceMode_POD,
					Pid:     runtimeapi.NamespaceMode_CONTAINER,
					Ipc:     runtimeapi.NamespaceMode_POD,
				},
				Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined},
			},
			Sysctls:  map[string]string{},
			Overhead: &runtimeapi.LinuxContainerResources{},
			Resources: &runtimeapi.LinuxContainerResources{
				CpuPeriod: 100000, CpuShares: 2,
			},
		},
	}
}

// ContainerConfig is kubelet's ContainerConfig for container name of the
// pod: the image by ID, the command, kubelet's labels and annotations, the
// log path, service environment, the etc-hosts, termination-log and
// service account mounts, and BestEffort resources (cpu shares 2,
// oom_score_adj 1000) with the default masked and read-only paths.
func (k *Kubelet) ContainerConfig(p *Pod, name string) (*runtimeapi.ContainerConfig, error) {
	termDir := filepath.Join(p.Dir, "containers", name)
	if err := os.MkdirAll(termDir, 0o755); err != nil {
		return nil, err
	}
	termLog := filepath.Join(termDir, newUID()[:8])
	if err := os.WriteFile(termLog, nil, 0o666); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(p.LogDir, name), 0o755); err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name, Attempt: 0},
		Image:    &runtimeapi.ImageSpec{Image: k.ImageRef, UserSpecifiedImage: k.UserImage},
		Command:  k.Command,
		Envs: []*runtimeapi.KeyValue{
			{Key: "KUBERNETES_SERVICE_HOST", Value: []byte("10.96.0.1")},
			{Key: "KUBERNETES_SERVICE_PORT", Value: []byte("443")},
			{Key: "KUBERNETES_SERVICE_PORT_HTTPS", Value: []byte("443")},
			{Key: "KUBERNETES_PORT", Value: []byte("tcp://10.96.0.1:443")},
			{Key: "KUBERNETES_PORT_443_TCP", Value: []byte("tcp://10.96.0.1:443")},
			{Key: "KUBERNETES_PORT_443_TCP_PROTO", Value: []byte("tcp")},
			{Key: "KUBERNETES_PORT_443_TCP_PORT", Value: []byte("443")},
			{Key: "KUBERNETES_PORT_443_TCP_ADDR", Value: []byte("10.96.0.1")},
		},
		Mounts: []*runtimeapi.Mount{
			{ContainerPath: "/var/run/secrets/kubernetes.io/serviceaccount", HostPath: filepath.Join(p.Dir, "volumes", "kubernetes.io~projected", "kube-api-access"), Readonly: true, RecursiveReadOnly: false},
			{ContainerPath: "/etc/hosts", HostPath: filepath.Join(p.Dir, "etc-hosts")},
			{ContainerPath: "/dev/termination-log", HostPath: termLog},
		},
		Labels: map[string]string{
			"io.kubernetes.container.name": name,
			"io.kubernetes.pod.name":       p.Name,
			"io.kubernetes.pod.namespace":  p.Namespace,
			"io.kubernetes.pod.uid":        p.UID,
		},
		Annotations: map[string]string{
			"io.kubernetes.container.hash":                     "6b4f3a1e",
			"io.kubernetes.container.restartCount":             "0",
			"io.kubernetes.container.terminationMessagePath":   "/dev/termination-log",
			"io.kubernetes.container.terminationMessagePolicy": "File",
			"io.kubernetes.pod.terminationGracePeriod":         "30",
		},
		LogPath: filepath.Join(name, "0.log"),
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: &runtimeapi.LinuxContainerResources{
				CpuPeriod:   100000,
				CpuShares:   2,
				OomScoreAdj: 1000,
			},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: runtimeapi.NamespaceMode_POD,
					Pid:     runtimeapi.NamespaceMode_CONTAINER,
					Ipc:     runtimeapi.NamespaceMode_POD,
				},
				Seccomp:       &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined},
				MaskedPaths:   DefaultMaskedPaths,
				ReadonlyPaths: DefaultReadonlyPaths,
			},
		},
	}, nil
}

// kubelet's defaults (pkg/securitycontext, DefaultProcMount).
var (
	DefaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	DefaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// newUID is a random version 4 UUID, as the API server gives pods.
func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// podName is "bench-<phase>-<n>".
func podName(phase string, n int) string { return "bench-" + phase + "-" + strconv.Itoa(n) }
