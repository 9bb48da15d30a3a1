package specgen

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
)

func TestProcessArgs(t *testing.T) {
	ep, cmd := []string{"/entry"}, []string{"--default"}
	for _, tc := range []struct {
		name              string
		ep, cmd, cmd2, ar []string
		want              []string
	}{
		{"image only", ep, cmd, nil, nil, []string{"/entry", "--default"}},
		{"args replace cmd", ep, cmd, nil, []string{"-x"}, []string{"/entry", "-x"}},
		{"command drops cmd", ep, cmd, []string{"/bin/sh"}, nil, []string{"/bin/sh"}},
		{"command and args", ep, cmd, []string{"/bin/sh"}, []string{"-c", "id"}, []string{"/bin/sh", "-c", "id"}},
		{"cmd only image", nil, []string{"sh"}, nil, nil, []string{"sh"}},
		{"args without entrypoint", nil, cmd, nil, []string{"ls"}, []string{"ls"}},
		{"nothing", nil, nil, nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Image = &imagespec.ImageConfig{Entrypoint: tc.ep, Cmd: tc.cmd}
			in.Config.Command, in.Config.Args = tc.cmd2, tc.ar
			res, err := Generate(in)
			if tc.want == nil {
				wantErr(t, err, errdefs.ErrInvalidArgument, "config.command")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Spec.Process.Args, tc.want) {
				t.Fatalf("args %q, want %q", res.Spec.Process.Args, tc.want)
			}
		})
	}
}

func TestEnv(t *testing.T) {
	in := baseInput(t)
	in.Image = &imagespec.ImageConfig{Env: []string{"PATH=/image/bin", "A=image", "B=image"}}
	in.Config.Envs = []*runtime.KeyValue{{Key: "B", Value: []byte("cri")}, {Key: "C", Value: []byte("x=y")}}
	in.Config.Tty = true
	res := mustGenerate(t, in)
	want := []string{"PATH=/image/bin", "HOSTNAME=pod1-host", "TERM=xterm", "A=image", "B=cri", "C=x=y", "HOME=/root"}
	if !reflect.DeepEqual(res.Spec.Process.Env, want) {
		t.Fatalf("env %q, want %q", res.Spec.Process.Env, want)
	}
	if !res.Spec.Process.Terminal {
		t.Fatal("tty not set")
	}
	in.Config.Envs = []*runtime.KeyValue{{Key: "A=B"}}
	_, err := Generate(in)
	wantErr(t, err, errdefs.ErrInvalidArgument, "config.envs[0].key")
}

func TestWorkingDir(t *testing.T) {
	for _, tc := range []struct{ name, cri, image, want string }{
		{"default", "", "", "/"},
		{"image", "", "/srv/app", "/srv/app"},
		{"cri wins", "/work", "/srv/app", "/work"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Image = &imagespec.ImageConfig{WorkingDir: tc.image}
			in.Config.WorkingDir = tc.cri
			sc(&in).RunAsUser = &runtime.Int64Value{Value: 1000}
			res := mustGenerate(t, in)
			if res.Spec.Process.Cwd != tc.want {
				t.Fatalf("cwd %q, want %q", res.Spec.Process.Cwd, tc.want)
			}
			fi, err := os.Stat(filepath.Join(in.Rootfs, tc.want))
			if err != nil || !fi.IsDir() {
				t.Fatalf("working dir not created: %v", err)
			}
		})
	}
}

func TestStopSignal(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cri   runtime.Signal
		image string
		want  string
	}{
		{"default", 0, "", "SIGTERM"},
		{"image name", 0, "SIGQUIT", "SIGQUIT"},
		{"image short", 0, "int", "SIGINT"},
		{"image number", 0, "9", "SIGKILL"},
		{"cri wins", runtime.Signal_SIGNAL_SIGUSR1, "SIGQUIT", "SIGUSR1"},
		{"cri realtime", runtime.Signal_SIGNAL_SIGRTMINPLUS3, "", "SIGRTMIN+3"},
		{"bad", 0, "SIGNOPE", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := stopSignal(tc.cri, tc.image)
			if tc.want == "" {
				wantErr(t, err, errdefs.ErrInvalidArgument, "StopSignal")
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// Every stop signal the CRI names comes back as the same CRI signal in
// ContainerStatus, and so does one an image names.
func TestCRISignalRoundTrip(t *testing.T) {
	for v, name := range runtime.Signal_name {
		sig := runtime.Signal(v)
		if sig == runtime.Signal_SIGNAL_RUNTIME_DEFAULT {
			continue
		}
		got, err := stopSignal(sig, "")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if back := CRISignal(got); back != sig {
			t.Errorf("%s → %q → %s", name, got, back)
		}
	}
	for image, want := range map[string]runtime.Signal{
		"SIGINT": runtime.Signal_SIGNAL_SIGINT, "quit": runtime.Signal_SIGNAL_SIGQUIT, "37": runtime.Signal_SIGNAL_SIGRTMINPLUS3,
		"": runtime.Signal_SIGNAL_SIGTERM,
	} {
		got, err := stopSignal(0, image)
		if back := CRISignal(got); err != nil || back != want {
			t.Errorf("image stop signal %q → %q, %v → %s; want %s", image, got, err, back, want)
		}
	}
	if got := CRISignal("SIGNOPE"); got != runtime.Signal_SIGNAL_RUNTIME_DEFAULT {
		t.Errorf("an unnamed signal is %s, want the runtime default", got)
	}
}

func TestAnnotationsAndCgroupsPath(t *testing.T) {
	in := baseInput(t)
	in.Config.Annotations = map[string]string{"team": "a", "run.oci.keep_original_groups": "1", "io.kubernetes.cri.sandbox-id": "spoof"}
	res := mustGenerate(t, in)
	ann := res.Spec.Annotations
	for k, v := range map[string]string{
		"team": "a", "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "pod1",
		"io.kubernetes.cri-o.ContainerType": "container", "io.kubernetes.cri.container-name": "ctr",
	} {
		if ann[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, ann[k], v)
		}
	}
	if _, ok := ann["run.oci.keep_original_groups"]; ok {
		t.Error("a pod annotation reached the runtime's run.oci namespace")
	}
	if res.Spec.Linux.CgroupsPath != "/kubepods/pod1/berth-c1" || res.Spec.Version != "1.1.0" {
		t.Fatalf("cgroupsPath %q version %q", res.Spec.Linux.CgroupsPath, res.Spec.Version)
	}
	for _, tc := range []struct{ mgr, parent, want string }{
		{"systemd", "kubepods-pod1.slice", "kubepods-pod1.slice:berth:c1"},
		{"systemd", "", "system.slice:berth:c1"},
		{"cgroupfs", "", "/berth/berth-c1"},
		{"systemd", "/kubepods", ""},
		{"cgroupfs", "/a/../..", ""},
	} {
		got, err := cgroupsPath(tc.mgr, tc.parent, "c1")
		if tc.want == "" {
			wantErr(t, err, errdefs.ErrInvalidArgument, "cgroup_parent")
		} else if got != tc.want {
			t.Errorf("cgroupsPath(%s, %q) = %q, %v; want %q", tc.mgr, tc.parent, got, err, tc.want)
		}
	}
}

// The default cgroup parent is decided in one place, for the pod's record
// (the server) and for every cgroups path built from it.
func TestCgroupParent(t *testing.T) {
	for _, tc := range []struct{ mgr, parent, want string }{
		{"cgroupfs", "", "/berth"},
		{"", "", "/berth"},
		{"systemd", "", "system.slice"},
		{"cgroupfs", "/kubepods/pod1", "/kubepods/pod1"},
		{"systemd", "kubepods-pod1.slice", "kubepods-pod1.slice"},
	} {
		t.Run(tc.mgr+" "+tc.parent, func(t *testing.T) {
			if got := CgroupParent(tc.mgr, tc.parent); got != tc.want {
				t.Fatalf("CgroupParent(%q, %q) = %q, want %q", tc.mgr, tc.parent, got, tc.want)
			}
			path, err := cgroupsPath(tc.mgr, tc.parent, "c1")
			if err != nil {
				t.Fatal(err)
			}
			if wantPath, _ := cgroupsPath(tc.mgr, tc.want, "c1"); path != wantPath {
				t.Fatalf("cgroupsPath with parent %q = %q, with its default %q = %q", tc.parent, path, tc.want, wantPath)
			}
		})
	}
}
