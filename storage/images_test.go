package storage

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/storage/storagetest"
)

func TestImageStatusAndList(t *testing.T) {
	r := newRig(t, func(o *Options) {
		o.PinnedImages = []string{"example.test/pinned/*"}
		o.PauseImage = "example.test/pause:3.10"
	})
	a := tinyImage(t, "a", "")
	b := tinyImage(t, "b", "daemon:daemon")
	c := tinyImage(t, "c", "0")
	storagetest.Import(t, r.svc.store, a, "busybox")
	storagetest.Import(t, r.svc.store, b, "example.test/pinned/b:1")
	storagetest.Import(t, r.svc.store, c, "example.test/pause:3.10")

	images, err := r.svc.ListImages(testCtx(t), "")
	if err != nil || len(images) != 3 {
		t.Fatalf("list = %d images, %v; want 3", len(images), err)
	}
	byID := map[string]*Image{}
	for _, img := range images {
		byID[img.ID] = img
	}
	if img := byID[a.ID()]; img == nil || img.Pinned || img.UID != nil || img.Username != "" ||
		len(img.RepoTags) != 1 || img.RepoTags[0] != "docker.io/library/busybox:latest" {
		t.Errorf("busybox = %+v", img)
	}
	if img := byID[b.ID()]; img == nil || !img.Pinned || img.Username != "daemon" {
		t.Errorf("pinned image = %+v, want pinned with user daemon", img)
	}
	if img := byID[c.ID()]; img == nil || !img.Pinned || img.UID == nil || *img.UID != 0 {
		t.Errorf("pause image = %+v, want pinned with uid 0", img)
	}

	for _, tc := range []struct {
		filter string
		want   string
	}{
		{"busybox", a.ID()},
		{"docker.io/library/busybox:latest", a.ID()},
		{"busybox:latest", a.ID()},
		{"docker://busybox", a.ID()},
		{b.ID()[:5], b.ID()},
		{"example.test/pinned/b:1", b.ID()},
		{"docker.io/library/busybox@" + a.Manifest.String(), a.ID()},
		{"busybox:other", ""},
		{"0123456789abcdef", ""},
	} {
		got, err := r.svc.ListImages(testCtx(t), tc.filter)
		if err != nil {
			t.Fatalf("list %q: %v", tc.filter, err)
		}
		switch {
		case tc.want == "" && len(got) != 0:
			t.Errorf("list %q = %d images, want none", tc.filter, len(got))
		case tc.want != "" && (len(got) != 1 || got[0].ID != tc.want):
			t.Errorf("list %q = %v, want %s", tc.filter, got, tc.want)
		}
	}

	if _, err := r.svc.Image(testCtx(t), "example.test/absent:1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("absent image: %v, want not found", err)
	}
	if _, err := r.svc.Image(testCtx(t), "bad ref!!"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("malformed reference: %v, want invalid argument", err)
	}
}

func TestRemoveImage(t *testing.T) {
	r := newRig(t, nil)
	a := tinyImage(t, "a", "")
	storagetest.Import(t, r.svc.store, a, "example.test/app:1")
	storagetest.Import(t, r.svc.store, a, "example.test/app:2")

	// By one of two tags: only that tag goes.
	if err := r.svc.RemoveImage(testCtx(t), "example.test/app:1"); err != nil {
		t.Fatalf("remove tag: %v", err)
	}
	img, err := r.svc.Image(testCtx(t), a.ID())
	if err != nil || len(img.RepoTags) != 1 || img.RepoTags[0] != "example.test/app:2" {
		t.Fatalf("after untag: %+v, %v; want tag example.test/app:2 left", img, err)
	}
	// Absent: success.
	for _, ref := range []string{"example.test/app:1", "example.test/never:1", "abcdef0123", hex64('e'), "sha256:" + hex64('e')} {
		if err := r.svc.RemoveImage(testCtx(t), ref); err != nil {
			t.Errorf("remove absent %q: %v", ref, err)
		}
	}
	// Used by a container: refused, naming the image.
	if _, err := r.svc.store.CreateContainer("", nil, a.ID(), "", "", nil); err != nil {
		t.Fatalf("create container: %v", err)
	}
	err = r.svc.RemoveImage(testCtx(t), a.ID())
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), a.ID()) {
		t.Fatalf("remove image in use: %v, want failed precondition naming %s", err, a.ID())
	}
	containers, _ := r.svc.store.Containers()
	for _, c := range containers {
		if err := r.svc.store.DeleteContainer(c.ID); err != nil {
			t.Fatal(err)
		}
	}
	// By id: the image and its layers go.
	if err := r.svc.RemoveImage(testCtx(t), a.ID()); err != nil {
		t.Fatalf("remove by id: %v", err)
	}
	if layers, images := r.counts(t); layers != 0 || images != 0 {
		t.Fatalf("%d layers and %d images left", layers, images)
	}

	// By digest, and by the last tag: the image goes.
	for _, ref := range []string{"example.test/app@" + a.Manifest.String(), "example.test/app:3"} {
		storagetest.Import(t, r.svc.store, a, "example.test/app:3")
		if err := r.svc.RemoveImage(testCtx(t), ref); err != nil {
			t.Fatalf("remove %q: %v", ref, err)
		}
		if _, images := r.counts(t); images != 0 {
			t.Fatalf("remove %q left the image", ref)
		}
	}
}

func TestFsInfo(t *testing.T) {
	r := newRig(t, nil)
	storagetest.Import(t, r.svc.store, tinyImage(t, "a", ""), "example.test/app:1")
	info, err := r.svc.FsInfo(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	root := r.svc.store.GraphRoot()
	if info.Images.Mountpoint != filepath.Join(root, "overlay-images") || info.Containers.Mountpoint != filepath.Join(root, "overlay-containers") {
		t.Errorf("mountpoints %s and %s", info.Images.Mountpoint, info.Containers.Mountpoint)
	}
	if info.Images.UsedBytes == 0 || info.Images.InodesUsed == 0 || info.Images.Timestamp.IsZero() {
		t.Errorf("image fs usage = %+v, want some", info.Images)
	}
	// A second call within the cache period measures nothing again.
	if err := os.WriteFile(filepath.Join(info.Images.Mountpoint, "extra"), make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := r.svc.FsInfo(testCtx(t))
	if err != nil || again != info {
		t.Errorf("cached fs info = %+v, %v; want %+v", again, err, info)
	}
}

func TestOpenStoreKeepsPriorVFS(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "root", "vfs"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, func(o *Options) { o.Root = filepath.Join(dir, "root"); o.RunRoot = filepath.Join(dir, "run") })
	if got := r.st.Driver(); got != "vfs" {
		t.Fatalf("driver = %s, want vfs (the root's prior driver)", got)
	}
}

// What an image's names make of it is remembered, but a tag added or
// removed behind Berth's back (podman on a shared store) and a reload of
// the pinned patterns show on the next call.
func TestImageNamesFollowTheStore(t *testing.T) {
	r := newRig(t, nil)
	a := tinyImage(t, "a", "")
	storagetest.Import(t, r.svc.store, a, "example.test/app:1")
	img, err := r.svc.Image(testCtx(t), a.ID())
	if err != nil || len(img.RepoTags) != 1 || img.Pinned {
		t.Fatalf("image = %+v, %v; want one tag, not pinned", img, err)
	}

	if err := r.svc.store.AddNames(a.ID(), []string{"example.test/app:2"}); err != nil {
		t.Fatal(err)
	}
	img, err = r.svc.Image(testCtx(t), "example.test/app:2")
	if err != nil || len(img.RepoTags) != 2 || len(img.RepoDigests) != 1 {
		t.Fatalf("after a tag was added: %+v, %v; want two tags and one repo digest", img, err)
	}

	r.svc.Reload(Reloadable{PinnedImages: []string{"example.test/app:2"}})
	if img, err = r.svc.Image(testCtx(t), a.ID()); err != nil || !img.Pinned {
		t.Fatalf("after reload pinning app:2: %+v, %v; want pinned", img, err)
	}

	if err := r.svc.store.RemoveNames(a.ID(), []string{"example.test/app:2"}); err != nil {
		t.Fatal(err)
	}
	images, err := r.svc.ListImages(testCtx(t), "")
	if err != nil || len(images) != 1 || len(images[0].RepoTags) != 1 || images[0].RepoTags[0] != "example.test/app:1" || images[0].Pinned {
		t.Fatalf("after the tag was removed: %+v, %v; want only app:1, not pinned", images, err)
	}
}
