package server

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/sandbox"
)

func sortedCopy(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// listFixture is a server with pods "pod-a1" (ready), "pod-a2" (stopped)
// and "pod-b3" (ready), and containers "abc111" (running, pod-a1),
// "abc222" (exited, pod-a1) and "def333" (created, pod-b3).
func listFixture(t *testing.T) *Server {
	t.Helper()
	s, _ := fakeServer(t)
	pod := func(id string, labels map[string]string) *sandbox.Sandbox {
		cfg := hostNetworkPod(id)
		cfg.Labels = labels
		cfg.Annotations = map[string]string{"of": id}
		return addReadyPod(t, s, id, cfg)
	}
	pod("pod-a1", map[string]string{"app": "web", "tier": "front"})
	stopped := pod("pod-a2", map[string]string{"app": "web"})
	if err := stopped.SetState(sandbox.StateNotReady); err != nil {
		t.Fatal(err)
	}
	pod("pod-b3", map[string]string{"app": "db"})
	ctr := func(id, pod string, labels map[string]string, state container.State) {
		c := addContainerWith(t, s, id, pod, &runtime.ContainerConfig{
			Metadata:    &runtime.ContainerMetadata{Name: "n-" + id, Attempt: 1},
			Image:       &runtime.ImageSpec{Image: "busybox"},
			Labels:      labels,
			Annotations: map[string]string{"of": id},
		}, state)
		c.ImageRef, c.ImageID = "ref-"+id, "img-"+id
	}
	ctr("abc111", "pod-a1", map[string]string{"app": "web", "tier": "front"}, container.StateRunning)
	ctr("abc222", "pod-a1", map[string]string{"app": "web"}, container.StateExited)
	ctr("def333", "pod-b3", map[string]string{"app": "db"}, container.StateCreated)
	return s
}

func TestListContainersFilters(t *testing.T) {
	s := listFixture(t)
	state := func(st runtime.ContainerState) *runtime.ContainerStateValue {
		return &runtime.ContainerStateValue{State: st}
	}
	for _, tc := range []struct {
		name   string
		filter *runtime.ContainerFilter
		want   []string
	}{
		{"no filter", nil, []string{"abc111", "abc222", "def333"}},
		{"empty filter", &runtime.ContainerFilter{}, []string{"abc111", "abc222", "def333"}},
		{"full id", &runtime.ContainerFilter{Id: "abc222"}, []string{"abc222"}},
		{"id prefix", &runtime.ContainerFilter{Id: "abc"}, []string{"abc111", "abc222"}},
		{"id longer than any", &runtime.ContainerFilter{Id: "abc1111"}, nil},
		{"unknown id", &runtime.ContainerFilter{Id: "zzz"}, nil},
		{"pod id", &runtime.ContainerFilter{PodSandboxId: "pod-a1"}, []string{"abc111", "abc222"}},
		{"pod id prefix", &runtime.ContainerFilter{PodSandboxId: "pod-b"}, []string{"def333"}},
		{"pod without containers", &runtime.ContainerFilter{PodSandboxId: "pod-a2"}, nil},
		{"running", &runtime.ContainerFilter{State: state(runtime.ContainerState_CONTAINER_RUNNING)}, []string{"abc111"}},
		{"exited", &runtime.ContainerFilter{State: state(runtime.ContainerState_CONTAINER_EXITED)}, []string{"abc222"}},
		{"created", &runtime.ContainerFilter{State: state(runtime.ContainerState_CONTAINER_CREATED)}, []string{"def333"}},
		{"unknown state", &runtime.ContainerFilter{State: state(runtime.ContainerState_CONTAINER_UNKNOWN)}, nil},
		{"label", &runtime.ContainerFilter{LabelSelector: map[string]string{"app": "web"}}, []string{"abc111", "abc222"}},
		{"two labels", &runtime.ContainerFilter{LabelSelector: map[string]string{"app": "web", "tier": "front"}}, []string{"abc111"}},
		{"label value differs", &runtime.ContainerFilter{LabelSelector: map[string]string{"app": "cache"}}, nil},
		{"label missing", &runtime.ContainerFilter{LabelSelector: map[string]string{"zone": "a"}}, nil},
		{"pod and state", &runtime.ContainerFilter{PodSandboxId: "pod-a1", State: state(runtime.ContainerState_CONTAINER_EXITED)}, []string{"abc222"}},
		{"id and another pod", &runtime.ContainerFilter{Id: "abc", PodSandboxId: "pod-b3"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := s.ListContainers(context.Background(), &runtime.ListContainersRequest{Filter: tc.filter})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Containers == nil {
				t.Error("containers is nil, want an empty list")
			}
			var ids []string
			for _, c := range resp.GetContainers() {
				ids = append(ids, c.GetId())
			}
			if !slices.Equal(sortedCopy(ids), tc.want) {
				t.Errorf("ids = %v, want %v", ids, tc.want)
			}
		})
	}
}

func TestListContainersReportsFields(t *testing.T) {
	s := listFixture(t)
	resp, err := s.ListContainers(context.Background(), &runtime.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		pod   string
		state runtime.ContainerState
	}{
		"abc111": {"pod-a1", runtime.ContainerState_CONTAINER_RUNNING},
		"abc222": {"pod-a1", runtime.ContainerState_CONTAINER_EXITED},
		"def333": {"pod-b3", runtime.ContainerState_CONTAINER_CREATED},
	}
	if len(resp.GetContainers()) != len(want) {
		t.Fatalf("%d containers, want %d", len(resp.GetContainers()), len(want))
	}
	for _, c := range resp.GetContainers() {
		w := want[c.GetId()]
		stored, _ := s.containers.Get(c.GetId())
		if c.GetPodSandboxId() != w.pod || c.GetState() != w.state {
			t.Errorf("%s: pod, state = %s, %s; want %s, %s", c.GetId(), c.GetPodSandboxId(), c.GetState(), w.pod, w.state)
		}
		if c.GetMetadata().GetName() != "n-"+c.GetId() || c.GetMetadata().GetAttempt() != 1 || c.GetImage().GetImage() != "busybox" ||
			c.GetImageRef() != "ref-"+c.GetId() || c.GetImageId() != "img-"+c.GetId() {
			t.Errorf("%s: metadata, image, image ref, image id = %v %v %q %q", c.GetId(), c.GetMetadata(), c.GetImage(), c.GetImageRef(), c.GetImageId())
		}
		if c.GetCreatedAt() != stored.CreatedAt.UnixNano() || c.GetAnnotations()["of"] != c.GetId() || c.GetLabels()["app"] == "" {
			t.Errorf("%s: created, annotations, labels = %d %v %v", c.GetId(), c.GetCreatedAt(), c.GetAnnotations(), c.GetLabels())
		}
	}
}

// The list is oldest first, as the store keeps it.
func TestListContainersOldestFirst(t *testing.T) {
	s, _ := fakeServer(t)
	base := time.Now()
	for i, id := range []string{"c-late", "c-early", "c-mid"} {
		c := addContainer(t, s, id, "pod", container.StateCreated)
		// A creation time is fixed before the container is stored.
		s.containers.Delete(id)
		c.CreatedAt = base.Add(time.Duration([]int{3, 1, 2}[i]) * time.Second)
		s.containers.Add(c)
	}
	resp, err := s.ListContainers(context.Background(), &runtime.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range resp.GetContainers() {
		ids = append(ids, c.GetId())
	}
	if want := []string{"c-early", "c-mid", "c-late"}; !slices.Equal(ids, want) {
		t.Errorf("order = %v, want %v", ids, want)
	}
}

func TestListPodSandboxFilters(t *testing.T) {
	s := listFixture(t)
	state := func(st runtime.PodSandboxState) *runtime.PodSandboxStateValue {
		return &runtime.PodSandboxStateValue{State: st}
	}
	for _, tc := range []struct {
		name   string
		filter *runtime.PodSandboxFilter
		want   []string
	}{
		{"no filter", nil, []string{"pod-a1", "pod-a2", "pod-b3"}},
		{"full id", &runtime.PodSandboxFilter{Id: "pod-b3"}, []string{"pod-b3"}},
		{"id prefix", &runtime.PodSandboxFilter{Id: "pod-a"}, []string{"pod-a1", "pod-a2"}},
		{"unknown id", &runtime.PodSandboxFilter{Id: "pod-z"}, nil},
		{"id longer than any", &runtime.PodSandboxFilter{Id: "pod-a1x"}, nil},
		{"ready", &runtime.PodSandboxFilter{State: state(runtime.PodSandboxState_SANDBOX_READY)}, []string{"pod-a1", "pod-b3"}},
		{"not ready", &runtime.PodSandboxFilter{State: state(runtime.PodSandboxState_SANDBOX_NOTREADY)}, []string{"pod-a2"}},
		{"label", &runtime.PodSandboxFilter{LabelSelector: map[string]string{"app": "web"}}, []string{"pod-a1", "pod-a2"}},
		{"two labels", &runtime.PodSandboxFilter{LabelSelector: map[string]string{"app": "web", "tier": "front"}}, []string{"pod-a1"}},
		{"label missing", &runtime.PodSandboxFilter{LabelSelector: map[string]string{"zone": "a"}}, nil},
		{"prefix, state and label", &runtime.PodSandboxFilter{Id: "pod-a", State: state(runtime.PodSandboxState_SANDBOX_READY),
			LabelSelector: map[string]string{"app": "web"}}, []string{"pod-a1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := s.ListPodSandbox(context.Background(), &runtime.ListPodSandboxRequest{Filter: tc.filter})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Items == nil {
				t.Error("items is nil, want an empty list")
			}
			var ids []string
			for _, p := range resp.GetItems() {
				ids = append(ids, p.GetId())
			}
			if !slices.Equal(sortedCopy(ids), tc.want) {
				t.Errorf("ids = %v, want %v", ids, tc.want)
			}
		})
	}
}

func TestListPodSandboxReportsFields(t *testing.T) {
	s := listFixture(t)
	resp, err := s.ListPodSandbox(context.Background(), &runtime.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetItems()) != 3 {
		t.Fatalf("%d pods, want 3", len(resp.GetItems()))
	}
	for _, p := range resp.GetItems() {
		sb, _ := s.sandboxes.Get(p.GetId())
		wantState := runtime.PodSandboxState_SANDBOX_READY
		if p.GetId() == "pod-a2" {
			wantState = runtime.PodSandboxState_SANDBOX_NOTREADY
		}
		if p.GetState() != wantState || p.GetCreatedAt() != sb.CreatedAt.UnixNano() || p.GetMetadata().GetName() != p.GetId() ||
			p.GetMetadata().GetUid() != p.GetId()+"-uid" || p.GetAnnotations()["of"] != p.GetId() || p.GetRuntimeHandler() != sb.RuntimeHandler {
			t.Errorf("%s: state %s, created %d, metadata %v, annotations %v, handler %q", p.GetId(), p.GetState(), p.GetCreatedAt(),
				p.GetMetadata(), p.GetAnnotations(), p.GetRuntimeHandler())
		}
	}
}

func TestMatchLabels(t *testing.T) {
	for _, tc := range []struct {
		labels, selector map[string]string
		want             bool
	}{
		{nil, nil, true},
		{map[string]string{"a": "1"}, nil, true},
		{nil, map[string]string{"a": "1"}, false},
		{map[string]string{"a": "1", "b": "2"}, map[string]string{"a": "1"}, true},
		{map[string]string{"a": "1"}, map[string]string{"a": "2"}, false},
		{map[string]string{"a": ""}, map[string]string{"a": ""}, true},
		{map[string]string{}, map[string]string{"a": ""}, false}, // an empty value still needs the key
	} {
		if got := matchLabels(tc.labels, tc.selector); got != tc.want {
			t.Errorf("matchLabels(%v, %v) = %v, want %v", tc.labels, tc.selector, got, tc.want)
		}
	}
}

// A list by id (or unique prefix) answers from the index; a prefix of
// several, or of none, answers as a scan would.
func TestListByIDUsesTheIndex(t *testing.T) {
	s, _ := fakeServer(t)
	for _, id := range []string{"abc111", "abc222", "def333"} {
		addContainer(t, s, id, "pod", container.StateCreated)
		addReadyPod(t, s, "pod-"+id, hostNetworkPod(id))
	}
	for _, tc := range []struct {
		id   string
		want []string
	}{
		{"abc111", []string{"abc111"}},
		{"def", []string{"def333"}},
		{"abc", []string{"abc111", "abc222"}},
		{"zzz", nil},
	} {
		resp, err := s.ListContainers(context.Background(), &runtime.ListContainersRequest{Filter: &runtime.ContainerFilter{Id: tc.id}})
		var ids []string
		for _, c := range resp.GetContainers() {
			ids = append(ids, c.GetId())
		}
		if err != nil || !slices.Equal(ids, tc.want) {
			t.Errorf("containers by id %q = %v, %v; want %v", tc.id, ids, err, tc.want)
		}
		pods, err := s.ListPodSandbox(context.Background(), &runtime.ListPodSandboxRequest{Filter: &runtime.PodSandboxFilter{Id: "pod-" + tc.id}})
		ids = nil
		for _, p := range pods.GetItems() {
			ids = append(ids, strings.TrimPrefix(p.GetId(), "pod-"))
		}
		if err != nil || !slices.Equal(ids, tc.want) {
			t.Errorf("pods by id %q = %v, %v; want %v", "pod-"+tc.id, ids, err, tc.want)
		}
	}
}
