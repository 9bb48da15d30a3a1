package specgen

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:1001::/home/bob:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`

const testGroup = `root:x:0:
daemon:x:1:
staff:x:50:alice,bob
alice:x:1000:
bob:x:1001:
extra:x:50000:alice
nogroup:x:65534:
`

// fakeHost is a cgroup v1 host that can grant every capability but
// CAP_SYS_RESOURCE, with 2MB and 1GB pages and swap accounting, and no
// mount table (a test of mount propagation gives its own); edit changes
// it further.
func fakeHost(edit func(*Host)) *Host {
	h := &Host{
		lastCap:   40,
		bounding:  (1<<41 - 1) &^ (1 << 24),
		oomAdj:    0,
		nofile:    1048576,
		hugepages: map[string]bool{"2MB": true, "1GB": true},
		swap:      true,
	}
	if edit != nil {
		edit(h)
	}
	return h
}

// newRootfs makes a small rootfs with /etc/passwd and /etc/group.
func newRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"etc", "bin", "tmp", "proc", "sys", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "etc/passwd"), testPasswd)
	writeFile(t, filepath.Join(root, "etc/group"), testGroup)
	return root
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// baseInput is a plain container in a pod with pinned namespaces and its
// own PID namespace, on fakeHost(nil); tests change what they look at.
func baseInput(t *testing.T) Input {
	t.Helper()
	return Input{
		ID:     "c1",
		Rootfs: newRootfs(t),
		Config: &runtime.ContainerConfig{
			Metadata: &runtime.ContainerMetadata{Name: "ctr"},
			Image:    &runtime.ImageSpec{Image: "busybox"},
			Command:  []string{"sh"},
			Linux: &runtime.LinuxContainerConfig{
				SecurityContext: &runtime.LinuxContainerSecurityContext{
					NamespaceOptions: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_CONTAINER},
				},
			},
		},
		Sandbox: SandboxInfo{
			ID: "pod1", CgroupParent: "/kubepods/pod1",
			NetNS: "/run/berth/ns/net/pod1", IPCNS: "/run/berth/ns/ipc/pod1", UTSNS: "/run/berth/ns/uts/pod1",
			Hostname: "pod1-host",
		},
		CgroupManager:       "cgroupfs",
		DefaultCapabilities: []string{"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "KILL"},
		Host:                fakeHost(nil),
	}
}

// sc returns in's container security context.
func sc(in *Input) *runtime.LinuxContainerSecurityContext {
	return in.Config.Linux.SecurityContext
}

func mustGenerate(t *testing.T, in Input) *Result {
	t.Helper()
	res, err := Generate(in)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return res
}

// wantErr checks that err wraps sentinel and names field.
func wantErr(t *testing.T, err, sentinel error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error naming %q, got none", field)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %q does not wrap %v", err, sentinel)
	}
	if !strings.Contains(err.Error(), field) {
		t.Fatalf("error %q does not name %q", err, field)
	}
}

func findMount(spec *specs.Spec, dest string) *specs.Mount {
	for i := range spec.Mounts {
		if spec.Mounts[i].Destination == dest {
			return &spec.Mounts[i]
		}
	}
	return nil
}

func hasNS(spec *specs.Spec, t specs.LinuxNamespaceType) (specs.LinuxNamespace, bool) {
	for _, n := range spec.Linux.Namespaces {
		if n.Type == t {
			return n, true
		}
	}
	return specs.LinuxNamespace{}, false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
