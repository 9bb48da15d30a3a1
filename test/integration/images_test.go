package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A crictl session: pull through the mirror, list, inspect, measure, remove.
func TestImageLifecycleWithCrictl(t *testing.T) {
	b := startBerth(t)

	out := b.mustCrictl(t, "pull", "registry.k8s.io/pause:3.10")
	t.Logf("crictl pull registry.k8s.io/pause:3.10: %s", strings.TrimSpace(out))
	if !strings.Contains(out, "Image is up to date for") {
		t.Fatalf("crictl pull: unexpected output %q", out)
	}

	out = b.mustCrictl(t, "images")
	if !strings.Contains(out, "registry.k8s.io/pause") || !strings.Contains(out, "3.10") {
		t.Errorf("crictl images lacks registry.k8s.io/pause:3.10:\n%s", out)
	}

	out = b.mustCrictl(t, "inspecti", "registry.k8s.io/pause:3.10")
	// The default pause image is pinned, so the kubelet never collects it.
	for _, want := range []string{`"registry.k8s.io/pause:3.10"`, `"registry.k8s.io/pause@sha256:`, `"pinned": true`, `"imageSpec"`} {
		if !strings.Contains(out, want) {
			t.Errorf("crictl inspecti: want %s in:\n%s", want, out)
		}
	}

	out = b.mustCrictl(t, "imagefsinfo")
	if !strings.Contains(out, `"usedBytes"`) || !strings.Contains(out, `"inodesUsed"`) || !strings.Contains(out, `"containerFilesystems"`) {
		t.Errorf("crictl imagefsinfo:\n%s", out)
	}

	b.mustCrictl(t, "rmi", "registry.k8s.io/pause:3.10")
	if out = b.mustCrictl(t, "images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("images after rmi: %q, want none", out)
	}
	// Removing what is gone succeeds, as api.proto demands.
	if _, err := b.images.RemoveImage(ctxT(t), &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: "registry.k8s.io/pause:3.10"}}); err != nil {
		t.Errorf("RemoveImage of an absent image: %v, want success", err)
	}
}

func pull(t *testing.T, b *berth, ref string) string {
	t.Helper()
	resp, err := b.images.PullImage(ctxT(t), &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}})
	if err != nil {
		t.Fatalf("PullImage %s: %v", ref, err)
	}
	return resp.GetImageRef()
}

func imageStatus(t *testing.T, b *berth, ref string) *runtime.Image {
	t.Helper()
	resp, err := b.images.ImageStatus(ctxT(t), &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: ref}, Verbose: true})
	if err != nil {
		t.Fatalf("ImageStatus %s: %v", ref, err)
	}
	return resp.GetImage()
}

func TestImageStatusAndLookup(t *testing.T) {
	b := startBerth(t, "--pause-image", "registry.k8s.io/pause:3.9")

	// A short name resolves through registries.conf's search list.
	ref := pull(t, b, "busybox")
	img := imageStatus(t, b, "docker.io/library/busybox:latest")
	if img == nil {
		t.Fatalf("busybox pulled as %s is not found by its full name", ref)
	}
	for _, name := range []string{"busybox", "busybox:latest", img.GetId(), img.GetId()[:12], img.GetRepoDigests()[0]} {
		if got := imageStatus(t, b, name); got.GetId() != img.GetId() {
			t.Errorf("ImageStatus(%q) = %v, want %s", name, got, img.GetId())
		}
	}
	if img.GetSize() == 0 || len(img.GetRepoTags()) == 0 || len(img.GetRepoDigests()) == 0 {
		t.Errorf("busybox status incomplete: %v", img)
	}

	nonroot := pull(t, b, "docker.io/berthtest/nonroot:latest")
	if got := imageStatus(t, b, nonroot); got.GetUid().GetValue() != 1000 {
		t.Errorf("nonroot image uid = %v, want 1000", got.GetUid())
	}

	pull(t, b, "registry.k8s.io/pause:3.9")
	if got := imageStatus(t, b, "registry.k8s.io/pause:3.9"); !got.GetPinned() {
		t.Errorf("the configured pause image is not pinned: %v", got)
	}

	// An absent image is an empty answer, not an error.
	resp, err := b.images.ImageStatus(ctxT(t), &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: "docker.io/library/absent:1"}})
	if err != nil || resp.GetImage() != nil {
		t.Errorf("ImageStatus of an absent image = %v, %v; want empty, nil", resp, err)
	}

	list, err := b.images.ListImages(ctxT(t), &runtime.ListImagesRequest{Filter: &runtime.ImageFilter{Image: &runtime.ImageSpec{Image: "busybox"}}})
	if err != nil || len(list.GetImages()) != 1 || list.GetImages()[0].GetId() != img.GetId() {
		t.Errorf("ListImages(filter busybox) = %v, %v; want only busybox", list, err)
	}
	all, err := b.images.ListImages(ctxT(t), &runtime.ListImagesRequest{})
	if err != nil || len(all.GetImages()) != 3 {
		t.Errorf("ListImages = %d images, %v; want 3", len(all.GetImages()), err)
	}
}

func TestRemoveImageByTagOnlyUntags(t *testing.T) {
	b := startBerth(t)
	// Both registries serve one pause 3.9 image, as upstream: one image, two names.
	first := pull(t, b, "registry.k8s.io/pause:3.9")
	second := pull(t, b, "k8s.gcr.io/pause:3.9")
	img := imageStatus(t, b, first)
	if img.GetId() != imageStatus(t, b, second).GetId() || len(img.GetRepoTags()) != 2 {
		t.Fatalf("pause:3.9 from both registries should be one image with two tags: %v", img)
	}
	b.mustCrictl(t, "rmi", "k8s.gcr.io/pause:3.9")
	img = imageStatus(t, b, "registry.k8s.io/pause:3.9")
	if img == nil {
		t.Fatal("removing one tag removed the image")
	}
	if tags := img.GetRepoTags(); len(tags) != 1 || tags[0] != "registry.k8s.io/pause:3.9" {
		t.Errorf("tags after removing k8s.gcr.io/pause:3.9: %v", tags)
	}
	// By id the image goes with all its names.
	b.mustCrictl(t, "rmi", img.GetId())
	if imageStatus(t, b, img.GetId()) != nil {
		t.Error("image still present after rmi by id")
	}
}

func TestPullErrorsHaveClearCodes(t *testing.T) {
	b := startBerth(t)
	for _, tc := range []struct {
		name, ref string
		code      codes.Code
		mention   string
	}{
		{"malformed reference", "bad ref!!", codes.InvalidArgument, "bad ref!!"},
		{"empty reference", "", codes.InvalidArgument, "image"},
		{"missing tag via mirror", "registry.k8s.io/pause:0.0-missing", codes.NotFound, "pause:0.0-missing"},
		{"missing tag direct", env.registry.Addr + "/docker.io/library/busybox:nope", codes.NotFound, "busybox:nope"},
		{"missing repository", env.registry.Addr + "/no/such/repo:1", codes.NotFound, "no/such/repo"},
		{"unreachable registry", "127.0.0.1:1/foo/bar:1", codes.Unavailable, "127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.images.PullImage(ctxT(t), &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: tc.ref}})
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("PullImage(%q) = %v; want %v naming %q", tc.ref, err, tc.code, tc.mention)
			}
		})
	}
	// crictl shows the same codes to a person.
	if _, err := b.crictl(t, "pull", "bad ref!!"); err == nil || !strings.Contains(err.Error(), "InvalidArgument") {
		t.Errorf("crictl pull 'bad ref!!': %v, want InvalidArgument", err)
	}
	if _, err := b.crictl(t, "pull", "registry.k8s.io/pause:0.0-missing"); err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Errorf("crictl pull of a missing tag: %v, want NotFound", err)
	}
	// Nothing partial is left by the failed pulls.
	if out := b.mustCrictl(t, "images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("images after failed pulls: %q", out)
	}
	if layers := storageLayers(t, b); len(layers) != 0 {
		t.Errorf("layers left in storage after failed pulls: %v", layers)
	}
}

func TestConcurrentPullsDownloadOnce(t *testing.T) {
	b := startBerth(t)
	const ref = "docker.io/berthtest/multilayer:latest"
	before, err := env.registry.BlobGets()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = b.crictl(t, "pull", ref)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("pull %d: %v", i, err)
		}
	}
	after, err := env.registry.BlobGets()
	if err != nil {
		t.Fatal(err)
	}
	fetched := 0
	for digest, n := range after {
		if d := n - before[digest]; d > 0 {
			fetched++
			if d != 1 {
				t.Errorf("blob %s fetched %d times by 10 concurrent pulls, want once", digest, d)
			}
		}
	}
	if fetched < 4 {
		t.Errorf("only %d blobs fetched; the multilayer image has at least 4 layers", fetched)
	}
	t.Logf("10 concurrent pulls of %s fetched %d blobs, each once", ref, fetched)
}

func TestCancelledPullLeavesNothing(t *testing.T) {
	b := startBerth(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := b.images.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: "docker.io/berthtest/multilayer:latest"}})
	if status.Code(err) != codes.DeadlineExceeded && status.Code(err) != codes.Canceled {
		t.Fatalf("pull cancelled after 50ms: %v, want DeadlineExceeded or Canceled", err)
	}
	// The daemon notices the cancel asynchronously.
	var out string
	if !waitFor(func() bool {
		out = b.mustCrictl(t, "images", "-q")
		return strings.TrimSpace(out) == ""
	}) {
		t.Fatalf("images after a cancelled pull: %q", out)
	}
	t.Logf("imagefsinfo after cancel: %s", b.mustCrictl(t, "imagefsinfo"))
	if layers := storageLayers(t, b); len(layers) != 0 {
		t.Errorf("layers left in storage after a cancelled pull: %v", layers)
	}
	// A new pull after the cancel works.
	pull(t, b, "docker.io/berthtest/multilayer:latest")
}

// storageLayers reads the layer ids recorded in the daemon's store.
func storageLayers(t *testing.T, b *berth) []string {
	t.Helper()
	var ids []string
	for _, f := range []string{"overlay-layers/layers.json", "vfs-layers/layers.json"} {
		data, err := os.ReadFile(filepath.Join(b.Root, "storage", f))
		if err != nil {
			continue
		}
		var layers []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(data, &layers); err != nil {
			t.Fatalf("parse %s: %v", f, err)
		}
		for _, l := range layers {
			ids = append(ids, l.ID)
		}
	}
	return ids
}
