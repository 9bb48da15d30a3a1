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

	if err := r.rootfs.CreateRootfs(testCtx(t), id, name, img.ID(), "meta"); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := r.rootfs.CreateRootfs(testCtx(t), id, name, img.ID(), "meta"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("create again: %v, want already exists", err)
	}
	if err := r.rootfs.CreateRootfs(testCtx(t), "", "other", hex64('e'), ""); !errors.Is(err, errdefs.ErrNotFound) {
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
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].ImageID != img.ID() || list[0].Metadata != "meta" || list[0].Names[0] != name {
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
