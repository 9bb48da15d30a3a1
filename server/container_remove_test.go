package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/checkpoint"
	"github.com/berth-dev/berth/internal/lifecycle"
)

// holdFinishers keeps s's background removals from beginning until the
// returned release is called, by taking every finisher's slot.
func holdFinishers(s *Server) (release func()) {
	s.removals.init()
	for range maxFinishers {
		s.removals.slots <- struct{}{}
	}
	return func() {
		for range maxFinishers {
			<-s.removals.slots
		}
	}
}

func removeWithFakes(t *testing.T, s *Server, id string) {
	t.Helper()
	if _, err := s.RemoveContainer(context.Background(), &runtime.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
}

// recordPhaseOf reads container id's record from disk ("" when none).
func recordPhaseOf(t *testing.T, s *Server, id string) lifecycle.Phase {
	t.Helper()
	recs, _, err := checkpoint.Load[container.Record](s.containerRecords())
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := recs[id]; ok {
		return r.Phase
	}
	return ""
}

func journalHas(f *fakes, entry string) bool { return slices.Contains(f.j.snapshot(), entry) }

// RemoveContainer returns once the record marks the removal: the
// container is gone to the CRI and its name free at once, while its
// runtime container and rootfs are released afterwards, in the background.
func TestRemoveContainerReturnsBeforeTheRelease(t *testing.T) {
	s, f, sb, id := createdWithFakes(t)
	release := holdFinishers(s)
	removeWithFakes(t, s, id)

	if _, err := s.ContainerStatus(context.Background(), &runtime.ContainerStatusRequest{ContainerId: id}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("ContainerStatus of a removed container = %v, want NotFound", err)
	}
	if list, _ := s.ListContainers(context.Background(), &runtime.ListContainersRequest{}); len(list.GetContainers()) != 0 {
		t.Errorf("ListContainers after remove = %v", list.GetContainers())
	}
	if _, ok := s.ctrNames.Get(container.Name(volumeConfig("app").GetMetadata(), sb.Config.GetMetadata())); ok {
		t.Error("the name is still reserved")
	}
	for _, e := range []string{"runtime delete " + id, "rootfs remove " + id, "record delete " + id} {
		if journalHas(f, e) {
			t.Errorf("%q before the call returned", e)
		}
	}
	if p := recordPhaseOf(t, s, id); p != lifecycle.Removing {
		t.Errorf("record phase %q, want removing", p)
	}
	// Asked again while the release is pending: nothing more to do.
	removeWithFakes(t, s, id)

	release()
	waitRemovals(s)
	assertBalanced(t, f.j)
	assertNoContainerLeft(t, s, sb, "app")
}

// A step of the background release that fails is retried; once it
// succeeds everything is given back, the latest first.
func TestBackgroundRemoveRetriesAFailedStep(t *testing.T) {
	for _, tc := range []struct {
		name, step string
		nth        int
	}{
		{"runtime delete", "runtime delete", 1},
		{"image unmount", "image unmount", 1},
		// The mark, the exit the stop records, then the images' release.
		{"images released", "record save removing", 3},
		{"rootfs remove", "rootfs remove", 1},
		{"record delete", "record delete", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f, sb, id := createdWithFakes(t)
			s.removals.retryDelay = time.Millisecond
			f.j.failAt(tc.step, tc.nth)
			removeWithFakes(t, s, id)
			waitRemovals(s)
			if !f.j.hasFired(tc.step) {
				t.Fatalf("the release never reached %q", tc.step)
			}
			assertBalanced(t, f.j)
			assertNoContainerLeft(t, s, sb, "app")
		})
	}
}

// A release that keeps failing is left pending with its record marked
// removing; what finishes it is a removal of its pod, or the next
// start-up.
func TestBackgroundRemoveLeftPending(t *testing.T) {
	for _, tc := range []struct {
		name   string
		finish func(t *testing.T, s *Server, f *fakes) *Server
	}{
		{"RemovePodSandbox takes it over", func(t *testing.T, s *Server, f *fakes) *Server {
			if _, err := s.RemovePodSandbox(context.Background(), &runtime.RemovePodSandboxRequest{PodSandboxId: "pod-a"}); err != nil {
				t.Fatalf("RemovePodSandbox: %v", err)
			}
			return s
		}},
		{"recovery finishes it", func(t *testing.T, s *Server, f *fakes) *Server {
			s2 := restart(t, s, f)
			if err := s2.Recover(context.Background()); err != nil {
				t.Fatal(err)
			}
			return s2
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f, sb, id := createdWithFakes(t)
			s.removals.attempts = 1
			f.j.failAt("rootfs remove", 1)
			removeWithFakes(t, s, id)
			waitRemovals(s)
			if !s.removals.has(id) || recordPhaseOf(t, s, id) != lifecycle.Removing {
				t.Fatalf("a failed release is not pending with its record marked (record %q)", recordPhaseOf(t, s, id))
			}
			if p := f.j.unbalanced(); len(p) == 0 {
				t.Fatal("the failed release gave everything back")
			}
			s = tc.finish(t, s, f)
			assertBalanced(t, f.j)
			assertNoContainerLeft(t, s, sb, "app")
		})
	}
}

// Berth killed while a release is pending, before it began or between two
// of its steps: the next start-up finishes it from the record.
func TestBackgroundRemoveFinishedByRecovery(t *testing.T) {
	for _, tc := range []struct {
		name string
		// stall keeps the release from finishing until the "crash".
		stall func(t *testing.T, s *Server, f *fakes)
		wait  func(f *fakes) bool
	}{
		{"before it began", func(t *testing.T, s *Server, f *fakes) { holdFinishers(s) }, func(*fakes) bool { return true }},
		{"after the runtime's delete", func(t *testing.T, s *Server, f *fakes) {
			s.removals.retryDelay = time.Hour
			f.j.failAt("image unmount", 1)
		}, func(f *fakes) bool { return f.j.hasFired("image unmount") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f, sb, id := createdWithFakes(t)
			tc.stall(t, s, f)
			removeWithFakes(t, s, id)
			for !tc.wait(f) {
				time.Sleep(time.Millisecond)
			}
			// The daemon goes away: its finishers are abandoned where
			// they are.
			gone, cancel := context.WithCancel(context.Background())
			cancel()
			s.Shutdown(gone)
			if recordPhaseOf(t, s, id) != lifecycle.Removing {
				t.Fatalf("record phase %q after the crash, want removing", recordPhaseOf(t, s, id))
			}
			s2 := restart(t, s, f)
			if err := s2.Recover(context.Background()); err != nil {
				t.Fatal(err)
			}
			assertBalanced(t, f.j)
			assertNoContainerLeft(t, s2, sb, "app")
		})
	}
}

// RemovePodSandbox right after RemoveContainer of its containers does not
// wait for the background: it takes their release over, and its own
// release order holds (containers before the pod).
func TestRemovePodSandboxTakesOverBackgroundRemoves(t *testing.T) {
	s, f, sb, id := createdWithFakes(t)
	release := holdFinishers(s)
	// Without an image volume: the journal cannot tell two containers'
	// mounts of one image apart.
	resp, err := s.CreateContainer(context.Background(), &runtime.CreateContainerRequest{
		PodSandboxId: sb.ID, SandboxConfig: sb.Config,
		Config: &runtime.ContainerConfig{Metadata: &runtime.ContainerMetadata{Name: "second"}, Image: &runtime.ImageSpec{Image: "busybox"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id2 := resp.GetContainerId()
	removeWithFakes(t, s, id2)
	removeWithFakes(t, s, id)
	if _, err := s.RemovePodSandbox(context.Background(), &runtime.RemovePodSandboxRequest{PodSandboxId: sb.ID}); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}
	assertBalanced(t, f.j)
	for _, e := range []string{"rootfs remove " + id, "rootfs remove " + id2, "pod record delete " + sb.ID} {
		if !journalHas(f, e) {
			t.Errorf("journal has no %q", e)
		}
	}
	if ents, _ := os.ReadDir(string(s.containerRecords())); len(ents) > 0 {
		t.Errorf("%d container records left", len(ents))
	}
	release()
	waitRemovals(s) // the finishers find nothing to do
	assertBalanced(t, f.j)
}

// A container created with the name of one just removed gets the name at
// once; the earlier one's release (its storage container has the same
// name) is finished first.
func TestCreateTakesOverTheRemovalOfItsName(t *testing.T) {
	s, f, sb, id := createdWithFakes(t)
	release := holdFinishers(s)
	removeWithFakes(t, s, id)
	id2, err := createWithFakes(t, s, sb, "app")
	if err != nil {
		t.Fatalf("create of the name just removed: %v", err)
	}
	j := strings.Join(f.j.snapshot(), "\n")
	if removed, made := strings.Index(j, "rootfs remove "+id), strings.Index(j, "rootfs create "+id2); removed < 0 || made < removed {
		t.Errorf("the new rootfs was made before the old one was removed:\n%s", j)
	}
	release()
	waitRemovals(s)
	removeWithFakes(t, s, id2)
	waitRemovals(s)
	assertBalanced(t, f.j)
	assertNoContainerLeft(t, s, sb, "app")
}

// Shutdown waits for the background removals while its context lasts.
func TestShutdownWaitsForBackgroundRemoves(t *testing.T) {
	s, f, sb, id := createdWithFakes(t)
	release := holdFinishers(s)
	removeWithFakes(t, s, id)
	go func() { time.Sleep(10 * time.Millisecond); release() }()
	s.Shutdown(context.Background())
	assertBalanced(t, f.j)
	assertNoContainerLeft(t, s, sb, "app")
	if _, err := os.Stat(filepath.Join(string(s.containerRecords()), id+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record left after Shutdown: %v", err)
	}
}

// An image whose last container was removed a moment ago can be removed at
// once, as the kubelet's image GC does: the container's pending release is
// finished first. An image a listed container uses is still refused.
func TestRemoveImageRightAfterItsContainer(t *testing.T) {
	s, f, sb, id := createdWithFakes(t)
	ctx := context.Background()
	rmi := func() error {
		_, err := s.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: "busybox"}})
		return err
	}
	if err := rmi(); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("remove of an image a container uses = %v, want FailedPrecondition", err)
	}
	release := holdFinishers(s)
	defer release()
	removeWithFakes(t, s, id)
	if err := rmi(); err != nil {
		t.Fatalf("remove of the image right after its container: %v", err)
	}
	if _, err := f.images.Image(ctx, "busybox"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("image still there: %v", err)
	}
	assertBalanced(t, f.j)
	assertNoContainerLeft(t, s, sb, "app")
}
