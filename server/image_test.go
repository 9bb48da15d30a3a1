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

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
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
	st, err := storage.Open(storage.Options{
		Root:            filepath.Join(dir, "root"),
		RunRoot:         filepath.Join(dir, "run"),
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
	return &imageRig{Server: &Server{images: st.Images, rootfs: st.Rootfs, log: log}}
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

// ImageStatus, ListImages and RemoveImage describe what the image store
// holds the way the CRI does; the store's lookups and removals are its own
// tests' (storage/images_test.go).
func TestImageStatusListRemove(t *testing.T) {
	s, f := fakeServer(t)
	ctx := context.Background()
	uid := int64(1234)
	img := &storage.Image{
		ID: "sha256:0123456789abcdef", RepoTags: []string{"example.test/pinned/app:1", "example.test/pinned/app:2"},
		RepoDigests: []string{"example.test/pinned/app@sha256:feed"}, Size: 4096, UID: &uid, Pinned: true,
		Config: &imgspecv1.Image{Config: imgspecv1.ImageConfig{User: "1234", Labels: map[string]string{"purpose": "test"}}},
	}
	named := &storage.Image{ID: "sha256:fedcba", Username: "nobody"} // no tags, no digests: a pull by digest
	f.images.images = map[string]*storage.Image{
		img.RepoTags[0]: img, img.RepoTags[1]: img, img.ID: img, named.ID: named,
	}

	st, err := s.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: img.ID}, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	got := st.GetImage()
	if got.GetId() != img.ID || len(got.GetRepoTags()) != 2 || len(got.GetRepoDigests()) != 1 ||
		got.GetUid().GetValue() != 1234 || got.GetUsername() != "" || !got.GetPinned() || got.GetSize() != 4096 {
		t.Fatalf("status = %v", got)
	}
	var info struct {
		Labels    map[string]string `json:"labels"`
		Pinned    bool              `json:"pinned"`
		ImageSpec struct {
			Config struct{ User string } `json:"config"`
		} `json:"imageSpec"`
	}
	if err := json.Unmarshal([]byte(st.GetInfo()["info"]), &info); err != nil || info.ImageSpec.Config.User != "1234" || info.Labels["purpose"] != "test" || !info.Pinned {
		t.Fatalf("verbose info %q: %v", st.GetInfo()["info"], err)
	}
	st, err = s.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: named.ID}})
	if n := st.GetImage(); err != nil || n.GetUsername() != "nobody" || n.GetUid() != nil || n.GetRepoTags() == nil || n.GetRepoDigests() == nil || st.GetInfo() != nil {
		t.Fatalf("status of an untagged image with a named user = %v, %v; want empty (not nil) tags and digests, the user's name, no info", st, err)
	}

	absent, err := s.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: "example.test/absent:1"}})
	if err != nil || absent.GetImage() != nil {
		t.Fatalf("status of an absent image = %v, %v; want empty", absent, err)
	}

	list, err := s.ListImages(ctx, &runtime.ListImagesRequest{})
	if err != nil || len(list.GetImages()) != 2 {
		t.Fatalf("list = %v, %v; want the two images", list, err)
	}
	list, err = s.ListImages(ctx, &runtime.ListImagesRequest{Filter: &runtime.ImageFilter{Image: &runtime.ImageSpec{Image: "example.test/absent:1"}}})
	if err != nil || len(list.GetImages()) != 0 {
		t.Fatalf("filtered list = %v, %v; want none", list, err)
	}
	list, err = s.ListImages(ctx, &runtime.ListImagesRequest{Filter: &runtime.ImageFilter{Image: &runtime.ImageSpec{Image: img.RepoTags[1]}}})
	if err != nil || len(list.GetImages()) != 1 || list.GetImages()[0].GetId() != img.ID {
		t.Fatalf("list filtered by a tag = %v, %v; want its image", list, err)
	}

	for _, ref := range []string{img.RepoTags[0], img.ID, img.ID, named.ID} {
		if _, err := s.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: ref}}); err != nil {
			t.Fatalf("remove %s: %v", ref, err)
		}
	}
	if list, _ := s.ListImages(ctx, &runtime.ListImagesRequest{}); len(list.GetImages()) != 0 {
		t.Fatalf("images left after removal: %v", list)
	}
}

// ImageFsInfo reports the store's two filesystems as the CRI does.
func TestImageFsInfoHandler(t *testing.T) {
	s, f := fakeServer(t)
	at := time.Unix(1700000000, 5)
	f.images.fs = storage.FsInfo{
		Images:     storage.FsUsage{Timestamp: at, Mountpoint: "/var/lib/berth/storage/overlay-images", UsedBytes: 1 << 20, InodesUsed: 30},
		Containers: storage.FsUsage{Timestamp: at, Mountpoint: "/var/lib/berth/storage/overlay-containers", UsedBytes: 4096, InodesUsed: 2},
	}
	resp, err := s.ImageFsInfo(context.Background(), &runtime.ImageFsInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		got  []*runtime.FilesystemUsage
		want storage.FsUsage
	}{
		"image":     {resp.GetImageFilesystems(), f.images.fs.Images},
		"container": {resp.GetContainerFilesystems(), f.images.fs.Containers},
	} {
		if len(tc.got) != 1 {
			t.Fatalf("%d %s filesystems, want 1", len(tc.got), name)
		}
		fs := tc.got[0]
		if fs.GetTimestamp() != at.UnixNano() || fs.GetFsId().GetMountpoint() != tc.want.Mountpoint ||
			fs.GetUsedBytes().GetValue() != tc.want.UsedBytes || fs.GetInodesUsed().GetValue() != tc.want.InodesUsed {
			t.Errorf("%s filesystem = %v, want %+v", name, fs, tc.want)
		}
	}
}
