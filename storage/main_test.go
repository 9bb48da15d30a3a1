package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.podman.io/storage/pkg/reexec"

	"github.com/berth-dev/berth/storage/storagetest"
)

func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	os.Exit(m.Run())
}

// rig is the storage services on a temporary store, with their log
// captured.
type rig struct {
	st     *Storage
	svc    *ImageService
	rootfs *RootfsService
	logs   *storagetest.Logs
	dir    string
}

// newRig opens the store in a temp dir; edit adjusts its options. The
// policy accepts anything and registries.conf is empty unless edit says
// otherwise.
func newRig(t testing.TB, edit func(*Options)) *rig {
	t.Helper()
	dir := t.TempDir()
	log, logs := storagetest.NewLogger(t)
	opts := Options{
		Root:            filepath.Join(dir, "root"),
		RunRoot:         filepath.Join(dir, "run"),
		RegistriesConf:  storagetest.WriteFile(t, filepath.Join(dir, "registries.conf"), ""),
		SignaturePolicy: storagetest.WriteFile(t, filepath.Join(dir, "policy.json"), `{"default":[{"type":"insecureAcceptAnything"}]}`),
		Logger:          log,
	}
	if edit != nil {
		edit(&opts)
	}
	st, err := Open(opts)
	if err != nil {
		t.Fatalf("open storage: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("service log:\n%s", logs.String())
		}
	})
	return &rig{st: st, svc: st.Images, rootfs: st.Rootfs, logs: logs, dir: dir}
}

// registriesConf writes a registries.conf marking each registry insecure
// (plain HTTP) and returns its path.
func registriesConf(t testing.TB, dir, extra string, insecure ...string) string {
	t.Helper()
	conf := extra + "\n"
	for _, r := range insecure {
		conf += fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n\n", r)
	}
	return storagetest.WriteFile(t, filepath.Join(dir, "registries.conf"), conf)
}

// tinyImage builds a one-layer image with a unique file.
func tinyImage(t testing.TB, tag, user string) storagetest.Built {
	t.Helper()
	return storagetest.WriteOCI(t, t.TempDir(), tag, storagetest.Spec{
		Layers: []storagetest.Layer{{"etc/hello": tag + " " + t.Name() + " " + time.Now().String()}},
		User:   user,
		Cmd:    []string{"/bin/sh"},
	})
}

// testCtx is a context bounded by a minute, so a hung pull fails the test.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// counts returns the number of layers and images in the store.
func (r *rig) counts(t *testing.T) (layers, images int) {
	t.Helper()
	ls, err := r.svc.store.Layers()
	if err != nil {
		t.Fatal(err)
	}
	is, err := r.svc.store.Images()
	if err != nil {
		t.Fatal(err)
	}
	return len(ls), len(is)
}

// waitFor polls cond for up to a minute: generous, so that a busy machine
// makes a test slow rather than failing it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
