package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.podman.io/storage/pkg/reexec"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/storagetest"
)

// containers/storage re-executes the binary to extract layers; in a test
// binary that must be handled before any test runs. (An init function, not
// TestMain, so that the package keeps room for one.)
func init() {
	if reexec.Init() {
		os.Exit(0)
	}
}

// imageRig is a Server with an image service on a temporary store.
type imageRig struct {
	*Server
	root, runRoot string
}

// importImage stores built under name, as a pull would.
func (r *imageRig) importImage(t *testing.T, built storagetest.Built, name string) {
	t.Helper()
	storagetest.ImportAt(t, r.root, r.runRoot, built, name)
}

// imageServer is an imageRig that pulls from reg (plain HTTP) when reg is
// not nil.
func imageServer(t *testing.T, reg *storagetest.Registry) *imageRig {
	t.Helper()
	dir := t.TempDir()
	log, logs := storagetest.NewLogger(t)
	conf := ""
	if reg != nil {
		conf = fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", reg.Addr)
	}
	root, runRoot := filepath.Join(dir, "root"), filepath.Join(dir, "run")
	st, err := storage.Open(storage.Options{
		Root:            root,
		RunRoot:         runRoot,
		RegistriesConf:  storagetest.WriteFile(t, filepath.Join(dir, "registries.conf"), conf),
		SignaturePolicy: storagetest.WriteFile(t, filepath.Join(dir, "policy.json"), `{"default":[{"type":"insecureAcceptAnything"}]}`),
		PinnedImages:    []string{"example.test/pinned*"},
		Logger:          log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Shutdown(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("log:\n%s", logs)
		}
	})
	return &imageRig{Server: &Server{images: st.Images, rootfs: st.Rootfs, log: log}, root: root, runRoot: runRoot}
}

func tinyBuilt(t *testing.T, user string) storagetest.Built {
	return storagetest.WriteOCI(t, t.TempDir(), "t", storagetest.Spec{
		Layers: []storagetest.Layer{{"etc/hello": t.Name() + time.Now().String()}},
		User:   user,
		Labels: map[string]string{"purpose": "test"},
	})
}

func grpcCode(err error) codes.Code { return status.Code(ToStatus(err)) }

func TestImageRequestsNeedAnImage(t *testing.T) {
	s := imageServer(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"pull without image", func() error { _, err := s.PullImage(ctx, &runtime.PullImageRequest{}); return err }},
		{"pull with empty image", func() error {
			_, err := s.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{}})
			return err
		}},
		{"status without image", func() error { _, err := s.ImageStatus(ctx, &runtime.ImageStatusRequest{}); return err }},
		{"remove without image", func() error { _, err := s.RemoveImage(ctx, &runtime.RemoveImageRequest{}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if grpcCode(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "image.image") {
				t.Fatalf("error %v, want InvalidArgument naming image.image", err)
			}
		})
	}
}

func TestPullImageHandler(t *testing.T) {
	reg := storagetest.StartRegistry(t)
	built := tinyBuilt(t, "")
	reg.Push(t, built, "app/web:1")
	s := imageServer(t, reg)
	ctx := context.Background()

	resp, err := s.PullImage(ctx, &runtime.PullImageRequest{
		Image: &runtime.ImageSpec{Image: reg.Addr + "/app/web:1"},
		Auth:  &runtime.AuthConfig{Username: "ignored", Password: "by-an-open-registry"},
	})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if want := built.ID(); resp.GetImageRef() != want {
		t.Fatalf("image ref = %s, want the image id %s", resp.GetImageRef(), want)
	}
	// kubelet hands the ref back to ImageStatus.
	st, err := s.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: resp.GetImageRef()}})
	if err != nil || st.GetImage().GetId() != built.ID() {
		t.Fatalf("status of the pulled ref = %v, %v", st, err)
	}

	for _, tc := range []struct {
		ref  string
		want codes.Code
	}{
		{"bad ref!!", codes.InvalidArgument},
		{reg.Addr + "/app/web:missing", codes.NotFound},
		{storagetest.FreeAddr(t) + "/app/web:1", codes.Unavailable},
	} {
		_, err := s.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: tc.ref}})
		if grpcCode(err) != tc.want || !strings.Contains(err.Error(), tc.ref) {
			t.Errorf("pull %q: %v, want %s naming the reference", tc.ref, err, tc.want)
		}
	}
}

func TestImageStatusListRemove(t *testing.T) {
	s := imageServer(t, nil)
	ctx := context.Background()
	built := tinyBuilt(t, "1234")
	s.importImage(t, built, "example.test/pinned/app:1")
	s.importImage(t, built, "example.test/pinned/app:2")

	st, err := s.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: built.ID()[:8]}, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	img := st.GetImage()
	if img.GetId() != built.ID() || len(img.GetRepoTags()) != 2 || len(img.GetRepoDigests()) != 1 ||
		img.GetUid().GetValue() != 1234 || !img.GetPinned() || img.GetSize() == 0 {
		t.Fatalf("status = %v", img)
	}
	var info struct {
		Labels    map[string]string `json:"labels"`
		ImageSpec struct {
			Config struct{ User string } `json:"config"`
		} `json:"imageSpec"`
	}
	if err := json.Unmarshal([]byte(st.GetInfo()["info"]), &info); err != nil || info.ImageSpec.Config.User != "1234" || info.Labels["purpose"] != "test" {
		t.Fatalf("verbose info %q: %v", st.GetInfo()["info"], err)
	}

	absent, err := s.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: "example.test/absent:1"}})
	if err != nil || absent.GetImage() != nil {
		t.Fatalf("status of an absent image = %v, %v; want empty", absent, err)
	}

	list, err := s.ListImages(ctx, &runtime.ListImagesRequest{})
	if err != nil || len(list.GetImages()) != 1 {
		t.Fatalf("list = %v, %v", list, err)
	}
	list, err = s.ListImages(ctx, &runtime.ListImagesRequest{Filter: &runtime.ImageFilter{Image: &runtime.ImageSpec{Image: "example.test/absent:1"}}})
	if err != nil || len(list.GetImages()) != 0 {
		t.Fatalf("filtered list = %v, %v; want none", list, err)
	}

	for _, ref := range []string{"example.test/pinned/app:1", built.ID(), built.ID()} {
		if _, err := s.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: ref}}); err != nil {
			t.Fatalf("remove %s: %v", ref, err)
		}
	}
	if list, _ := s.ListImages(ctx, &runtime.ListImagesRequest{}); len(list.GetImages()) != 0 {
		t.Fatalf("images left after removal: %v", list)
	}
}

func TestImageFsInfoHandler(t *testing.T) {
	s := imageServer(t, nil)
	s.importImage(t, tinyBuilt(t, ""), "example.test/app:1")
	resp, err := s.ImageFsInfo(context.Background(), &runtime.ImageFsInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for name, fss := range map[string][]*runtime.FilesystemUsage{"image": resp.GetImageFilesystems(), "container": resp.GetContainerFilesystems()} {
		if len(fss) != 1 {
			t.Fatalf("%d %s filesystems, want 1", len(fss), name)
		}
		fs := fss[0]
		if fs.GetTimestamp() == 0 || fs.GetFsId().GetMountpoint() == "" || fs.GetUsedBytes() == nil || fs.GetInodesUsed() == nil {
			t.Errorf("%s filesystem = %v", name, fs)
		}
	}
	if resp.GetImageFilesystems()[0].GetUsedBytes().GetValue() == 0 {
		t.Error("image filesystem uses no bytes after an import")
	}
}
