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

// TestRootfsLifecycle creates, mounts, measures, lists and removes a root
// filesystem on an image the image service stored.
func TestRootfsLifecycle(t *testing.T) {
	r := newRig(t, nil)
	img := tinyImage(t, "a", "")
	storagetest.Import(t, r.svc.store, img, "example.test/app:1")
	const id, name = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "k8s_app_pod"

	owner := Owner{Pod: "pod-1", Kind: KindContainer}
	if err := r.rootfs.CreateRootfs(testCtx(t), id, name, img.ID(), owner); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := r.rootfs.CreateRootfs(testCtx(t), id, name, img.ID(), owner); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("create again: %v, want already exists", err)
	}
	if err := r.rootfs.CreateRootfs(testCtx(t), "", "other", hex64('e'), owner); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("create on an absent image: %v, want not found", err)
	}

	mp, err := r.rootfs.MountRootfs(id)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	if _, err := os.Stat(filepath.Join(mp, "etc/hello")); err != nil {
		t.Errorf("image file not in the mounted rootfs: %v", err)
	}
	if err := os.WriteFile(filepath.Join(mp, "written"), make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	bytes, inodes, err := r.rootfs.WritableLayerUsage(id)
	if err != nil || bytes < 64<<10 || inodes == 0 {
		t.Errorf("writable layer usage = %d bytes, %d inodes, %v; want the written file counted", bytes, inodes, err)
	}
	if dir, want := r.rootfs.LayersDir(), filepath.Join(r.dir, "root", r.st.Driver()+"-containers"); dir != want {
		t.Errorf("layers dir = %s, want %s", dir, want)
	}

	run, err := r.rootfs.RootfsRunDir(id)
	if fi, statErr := os.Stat(run); err != nil || statErr != nil || !fi.IsDir() || !strings.HasPrefix(run, filepath.Join(r.dir, "run")) {
		t.Errorf("run dir = %q, %v; want a directory on the runroot", run, err)
	}
	list, err := r.rootfs.ListRootfs()
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].ImageID != img.ID() || list[0].Owner == nil || *list[0].Owner != owner || list[0].Names[0] != name {
		t.Errorf("list = %+v, %v; want the one rootfs", list, err)
	}

	for range 2 { // removing what is gone succeeds
		if err := r.rootfs.RemoveRootfs(id); err != nil {
			t.Fatalf("remove: %v", err)
		}
	}
	if _, _, err := r.rootfs.WritableLayerUsage(id); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("usage of a removed rootfs: %v, want not found", err)
	}
	if list, err := r.rootfs.ListRootfs(); err != nil || len(list) != 0 {
		t.Errorf("list after remove = %+v, %v; want none", list, err)
	}
}

// Only what Berth marked as its own is read back as Berth's.
func TestOwnerMetadata(t *testing.T) {
	for _, tc := range []struct {
		name, metadata string
		want           *Owner
	}{
		{"berth's", encodeOwner(Owner{Pod: "p", Kind: KindInfra}), &Owner{Pod: "p", Kind: KindInfra}},
		{"podman's", `{"image-name":"busybox","name":"x"}`, nil},
		{"not json", "meta", nil},
		{"empty", "", nil},
		{"another owner", `{"owner":"crio","pod":"p","kind":"infra"}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := decodeOwner(tc.metadata)
			if ok != (tc.want != nil) || (ok && got != *tc.want) {
				t.Errorf("decodeOwner(%q) = %+v, %v; want %+v", tc.metadata, got, ok, tc.want)
			}
		})
	}
}
