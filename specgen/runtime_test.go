package specgen

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The probe each test container runs: one key=value per line.
const probeScript = `echo cap=$(grep CapEff /proc/self/status | cut -f2)
echo seccomp=$(grep Seccomp: /proc/self/status | cut -f2)
echo uid=$(id -u) gid=$(id -g)
echo groups=$(id -G)
echo hostname=$(hostname)
echo etchostname=$(cat /etc/hostname)
echo oom=$(cat /proc/self/oom_score_adj)
echo nofile=$(ulimit -n)
echo timerlist=$(wc -c < /proc/timer_list)
echo procsys=$( (echo x > /proc/sys/kernel/domainname) 2>/dev/null && echo rw || echo ro)
echo data=$(cat /data/hello) $( (touch /data/new) 2>/dev/null && echo rw || echo ro)
echo sys=$(grep ' /sys sysfs ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1)
echo pwd=$(pwd) $( (touch f) 2>/dev/null && echo rw || echo ro)
echo home=$HOME
echo pid1=$(cat /proc/1/comm)
`

// parseProbe turns the probe's output into a map.
func parseProbe(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// TestRealRuntimes runs generated specs with crun and runc: both must
// accept the default mounts, capabilities, seccomp RuntimeDefault, masked
// paths, pinned namespaces and user resolution, and behave as the spec says.
func TestRealRuntimes(t *testing.T) {
	for _, rt := range []string{"crun", "runc"} {
		t.Run(rt, func(t *testing.T) {
			bin := needRuntime(t, rt)
			root := busyboxRootfs(t)
			podID := fmt.Sprintf("specgen-%s-%d", rt, os.Getpid())
			pinned := pinPod(t, podID, "specgen-host")
			podDir := t.TempDir()
			writeFile(t, filepath.Join(podDir, "hostname"), "specgen-host\n")
			writeFile(t, filepath.Join(podDir, "hosts"), "127.0.0.1 localhost\n")
			writeFile(t, filepath.Join(podDir, "resolv.conf"), "nameserver 127.0.0.1\n")
			data := t.TempDir()
			writeFile(t, filepath.Join(data, "hello"), "hi")
			parent := "/" + podID
			host := ProbeHost()
			base := func(name string) Input {
				return Input{
					ID:     podID + "-" + name,
					Rootfs: root,
					Config: &runtime.ContainerConfig{
						Metadata: &runtime.ContainerMetadata{Name: name},
						Command:  []string{"/bin/sh", "-c", probeScript},
						Mounts:   []*runtime.Mount{{ContainerPath: "/data", HostPath: data, Readonly: true}},
						Linux: &runtime.LinuxContainerConfig{
							Resources: &runtime.LinuxContainerResources{OomScoreAdj: -997, MemoryLimitInBytes: 64 << 20, CpuShares: 512},
							SecurityContext: &runtime.LinuxContainerSecurityContext{
								NamespaceOptions: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_CONTAINER},
								Seccomp:          &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_RuntimeDefault},
							},
						},
					},
					Image: &imagespec.ImageConfig{WorkingDir: "/work"},
					Sandbox: SandboxInfo{
						ID: podID, CgroupParent: parent, Hostname: "specgen-host",
						NetNS: pinned.Net, IPCNS: pinned.IPC, UTSNS: pinned.UTS,
						HostnamePath: filepath.Join(podDir, "hostname"), HostsPath: filepath.Join(podDir, "hosts"),
						ResolvPath: filepath.Join(podDir, "resolv.conf"),
					},
					CgroupManager:       "cgroupfs",
					DefaultCapabilities: []string{"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "KILL"},
					PidsLimit:           100,
					Host:                host,
				}
			}
			check := func(t *testing.T, got map[string]string, want map[string]string) {
				t.Helper()
				for k, v := range want {
					if got[k] != v {
						t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
					}
				}
			}
			nofile := fmt.Sprint(host.nofile)
			oom := fmt.Sprint(host.oomAdj)
			if host.sysResource || host.oomAdj < -997 {
				oom = "-997"
			}

			t.Run("root with defaults", func(t *testing.T) {
				in := base("root")
				res := mustGenerate(t, in)
				got := parseProbe(runSpec(t, bin, in.ID, res.Spec, parent))
				check(t, got, map[string]string{
					"cap": capMask(res.Spec.Process.Capabilities.Effective), "seccomp": "2",
					"uid": "0 gid=0", "hostname": "specgen-host", "etchostname": "specgen-host",
					"oom": oom, "nofile": nofile, "timerlist": "0", "procsys": "ro",
					"data": "hi ro", "sys": "ro", "pwd": "/work rw", "home": "/root", "pid1": "sh",
				})
			})
			t.Run("user from passwd with groups", func(t *testing.T) {
				in := base("alice")
				s := in.Config.Linux.SecurityContext
				s.RunAsUsername, s.SupplementalGroups = "alice", []int64{1234}
				in.Config.WorkingDir = "/home/alice"
				res := mustGenerate(t, in)
				got := parseProbe(runSpec(t, bin, in.ID, res.Spec, parent))
				check(t, got, map[string]string{
					"cap": "0000000000000000", "uid": "1000 gid=1000", "pwd": "/home/alice rw", "home": "/home/alice",
				})
				for _, g := range []string{"1000", "50", "1234", "50000"} {
					if !contains(strings.Fields(got["groups"]), g) {
						t.Errorf("groups %q lack %s", got["groups"], g)
					}
				}
			})
			t.Run("privileged", func(t *testing.T) {
				in := base("priv")
				in.Config.Linux.SecurityContext.Privileged = true
				in.Sandbox.SecurityContext = &runtime.LinuxSandboxSecurityContext{Privileged: true}
				res := mustGenerate(t, in)
				got := parseProbe(runSpec(t, bin, in.ID, res.Spec, parent))
				check(t, got, map[string]string{
					"cap": capMask(res.Spec.Process.Capabilities.Effective), "seccomp": "0", "sys": "rw", "procsys": "rw",
				})
			})
			t.Run("recursive read-only mount", func(t *testing.T) {
				// runc >= 1.1 and crun 1.8 apply "rro" with mount_setattr (Linux >= 5.12).
				sub := filepath.Join(t.TempDir(), "tmpfs")
				if err := os.Mkdir(sub, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := unix.Mount("none", sub, "tmpfs", 0, ""); err != nil {
					t.Fatal(err)
				}
				defer unix.Unmount(sub, unix.MNT_DETACH)
				for _, rro := range []bool{false, true} {
					in := base(fmt.Sprintf("rro-%v", rro))
					in.SupportsRRO = true
					in.Config.Command = []string{"/bin/sh", "-c", "(touch /mnt/tmpfs/f) 2>/dev/null && echo mnt=rw || echo mnt=ro"}
					in.Config.Mounts = []*runtime.Mount{{ContainerPath: "/mnt", HostPath: filepath.Dir(sub), Readonly: true, RecursiveReadOnly: rro}}
					res := mustGenerate(t, in)
					got := parseProbe(runSpec(t, bin, in.ID, res.Spec, parent))
					check(t, got, map[string]string{"mnt": map[bool]string{false: "rw", true: "ro"}[rro]})
				}
			})
			t.Run("infra", func(t *testing.T) {
				id := podID + "-infra"
				spec, err := InfraSpec(InfraInput{
					ID: id, Rootfs: root, CgroupManager: "cgroupfs", Host: host,
					Image: &imagespec.ImageConfig{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{probeScript}},
					Sandbox: SandboxInfo{
						ID: podID, CgroupParent: parent, Hostname: "specgen-host",
						NetNS: pinned.Net, IPCNS: pinned.IPC, UTSNS: pinned.UTS,
						SecurityContext: &runtime.LinuxSandboxSecurityContext{Seccomp: &runtime.SecurityProfile{}},
					},
				})
				if err != nil {
					t.Fatal(err)
				}
				got := parseProbe(runSpec(t, bin, id, spec, parent))
				check(t, got, map[string]string{
					"cap": "0000000000000000", "seccomp": "2", "uid": "65535 gid=65535",
					"hostname": "specgen-host", "pwd": "/ ro", "pid1": "sh",
				})
			})
		})
	}
}
