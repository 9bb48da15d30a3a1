package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// namespaceOptions is a pod's or container's linux section with the given
// namespace options, as crictl's JSON spells them (enum numbers).
func namespaceOptions(opts map[string]any) map[string]any {
	return map[string]any{"linux": map[string]any{"security_context": map[string]any{"namespace_options": opts}}}
}

// TestTargetPid is `kubectl debug --target=app` as a crictl session: a
// debug container in pid namespace mode TARGET of the running container
// "app" sees app's processes, and app sees the debugger's. A target that is
// empty, unknown or in another pod is InvalidArgument; one that is not
// running is FailedPrecondition; neither leaves anything behind.
func TestTargetPid(t *testing.T) {
	b := startBerth(t)
	ctx := ctxT(t)
	// Kubelet-shaped pods: the host's network, a pid namespace per
	// container, so no infra process.
	kubeletShaped := namespaceOptions(map[string]any{
		"network": int(runtime.NamespaceMode_NODE), "pid": int(runtime.NamespaceMode_CONTAINER),
	})
	podID, podFile := b.runPod(t, "debugged", kubeletShaped, "busybox")
	appID := b.runContainer(t, podID, podFile, "app", "busybox", map[string]any{"command": []string{"sleep", "3600"}})

	debugger := namespaceOptions(map[string]any{"pid": int(runtime.NamespaceMode_TARGET), "target_id": appID})
	debugger["command"] = []string{"sleep", "86400"}
	dbgID := b.runContainer(t, podID, podFile, "debugger", "busybox", debugger)

	// app's command is the init of the namespace they now share.
	ps := b.mustCrictl(t, "exec", dbgID, "ps", "-o", "pid,args")
	if !hasProcess(ps, "1", "sleep 3600") || !hasProcess(ps, "", "sleep 86400") {
		t.Errorf("ps in the debugger does not list app's sleep 3600 as pid 1 and its own sleep:\n%s", ps)
	}
	if ps := b.mustCrictl(t, "exec", appID, "ps", "-o", "pid,args"); !hasProcess(ps, "", "sleep 86400") {
		t.Errorf("ps in app does not list the debugger's sleep 86400:\n%s", ps)
	}
	appNS, dbgNS := pidNamespace(t, b.inspect(t, appID).Info.Pid), pidNamespace(t, b.inspect(t, dbgID).Info.Pid)
	if appNS != dbgNS {
		t.Errorf("app is in %s, the debugger in %s", appNS, dbgNS)
	}

	// Bad targets, over gRPC as the kubelet sends them.
	otherID, otherFile := b.runPod(t, "other", kubeletShaped)
	otherApp := b.runContainer(t, otherID, otherFile, "app", "busybox", map[string]any{"command": []string{"sleep", "3600"}})
	createdID := strings.TrimSpace(b.mustCrictl(t, "create", podID, ctrJSON(t, "never-started", "busybox", map[string]any{"command": []string{"sleep", "3600"}}), podFile))
	exitedID := b.runContainer(t, podID, podFile, "exits", "busybox", map[string]any{"command": []string{"true"}})
	if _, err := b.waitExited(ctx, exitedID); err != nil {
		t.Fatal(err)
	}
	podCfg := kubeletPod("debugged")
	const field = "config.linux.security_context.namespace_options.target_id"
	for _, tc := range []struct {
		name, target string
		code         codes.Code
	}{
		{"empty target id", "", codes.InvalidArgument},
		{"unknown target", "0123456789abcdef", codes.InvalidArgument},
		{"target in another pod", otherApp, codes.InvalidArgument},
		{"target created, never started", createdID, codes.FailedPrecondition},
		{"target exited", exitedID, codes.FailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.runtime.CreateContainer(ctx, &runtime.CreateContainerRequest{
				PodSandboxId: podID, SandboxConfig: podCfg,
				Config: &runtime.ContainerConfig{
					Metadata: &runtime.ContainerMetadata{Name: "bad-debugger"},
					Image:    &runtime.ImageSpec{Image: "busybox"},
					Command:  []string{"sleep", "3600"},
					Linux: &runtime.LinuxContainerConfig{SecurityContext: &runtime.LinuxContainerSecurityContext{
						NamespaceOptions: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_TARGET, TargetId: tc.target},
					}},
				},
			})
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), field) {
				t.Errorf("CreateContainer with target %q = %v; want %s naming %s", tc.target, err, tc.code, field)
			}
		})
	}
	// The refused creates made nothing: the pod holds app, the debugger
	// and the two bad targets, the other pod its app.
	list, err := b.runtime.ListContainers(ctx, &runtime.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.GetContainers()); n != 5 {
		t.Errorf("%d containers after the refused creates, want 5: %v", n, list.GetContainers())
	}

	b.mustCrictl(t, "rmp", "-f", podID)
	b.mustCrictl(t, "rmp", "-f", otherID)
	if recs := b.containerRecords(t); len(recs) != 0 {
		t.Errorf("container records left: %v", recs)
	}
	b.assertNoPodLeftovers(t, nil)
}

// hasProcess tells whether ps -o pid,args output lists a process running
// args, with pid pid unless pid is "".
func hasProcess(ps, pid, args string) bool {
	for _, l := range strings.Split(ps, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && strings.Join(f[1:], " ") == args && (pid == "" || f[0] == pid) {
			return true
		}
	}
	return false
}

// pidNamespace is the pid namespace process pid is in ("pid:[4026531836]").
func pidNamespace(t *testing.T, pid int) string {
	t.Helper()
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		t.Fatalf("pid namespace of process %d: %v", pid, err)
	}
	return ns
}
