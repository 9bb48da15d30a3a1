package storage

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/storage/storagetest"
)

// stalledRig is a registry behind a stalling proxy, with an image of two
// layers pushed as library/two:1, and a service that pulls through the proxy.
type stalledRig struct {
	*rig
	reg   *storagetest.Registry
	proxy *storagetest.StallProxy
	built storagetest.Built
	ref   string
	key   string
}

func newStalledRig(t *testing.T, timeout time.Duration) *stalledRig {
	t.Helper()
	reg := storagetest.StartRegistry(t)
	built := storagetest.WriteOCI(t, t.TempDir(), "two", storagetest.Spec{Layers: []storagetest.Layer{
		{"etc/first": "first layer of " + t.Name()},
		{"etc/second": strings.Repeat("second layer of "+t.Name(), 4096)},
	}})
	reg.Push(t, built, "library/two:1")
	proxy := storagetest.NewStallProxy(t, reg.Addr)
	r := newRig(t, func(o *Options) {
		o.RegistriesConf = registriesConf(t, t.TempDir(), "", proxy.Addr)
		o.PullProgressTimeout = timeout
	})
	ref := proxy.Addr + "/library/two:1"
	cands, err := pullCandidates(r.svc.systemContext(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return &stalledRig{rig: r, reg: reg, proxy: proxy, built: built, ref: ref, key: pullKey(cands, Credentials{})}
}

func TestConcurrentPullsShareOneDownload(t *testing.T) {
	r := newStalledRig(t, 0)
	release := r.proxy.Stall(r.built.Layers[1])

	const callers = 10
	results := make([]PullResult, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			// Half the callers spell the reference with the transport.
			ref := r.ref
			if i%2 == 1 {
				ref = "docker://" + ref
			}
			results[i], errs[i] = r.svc.PullImage(testCtx(t), ref, Credentials{})
		})
	}
	waitFor(t, "all callers to join the pull", func() bool { return r.svc.pulls.waiting(r.key) == callers })
	release()
	wg.Wait()

	for i := range callers {
		if errs[i] != nil || results[i].ImageID != r.built.ID() {
			t.Fatalf("caller %d: %+v, %v", i, results[i], errs[i])
		}
	}
	for _, layer := range r.built.Layers {
		if n := r.reg.BlobGets(layer); n != 1 {
			t.Errorf("layer %s fetched %d times from the registry, want 1", layer, n)
		}
		if n := r.logs.Count("pulling layer", "digest="+layer.String()); n != 1 {
			t.Errorf("%d 'pulling layer' lines for %s, want 1", n, layer)
		}
	}
	if n := r.logs.Count("pull started"); n != 1 {
		t.Errorf("%d pulls started, want 1", n)
	}
}

func TestCancelOfOneCallerKeepsSharedPull(t *testing.T) {
	r := newStalledRig(t, 0)
	release := r.proxy.Stall(r.built.Layers[1])

	ctxA, cancelA := context.WithCancel(testCtx(t))
	errA := make(chan error, 1)
	go func() {
		_, err := r.svc.PullImage(ctxA, r.ref, Credentials{})
		errA <- err
	}()
	var resB PullResult
	errB := make(chan error, 1)
	go func() {
		var err error
		resB, err = r.svc.PullImage(testCtx(t), r.ref, Credentials{})
		errB <- err
	}()
	waitFor(t, "both callers to join", func() bool { return r.svc.pulls.waiting(r.key) == 2 })
	waitFor(t, "the stalled download", func() bool { return r.proxy.Started(r.built.Layers[1]) == 1 })

	cancelA()
	if err := <-errA; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v, want context.Canceled", err)
	}
	if n := r.svc.pulls.waiting(r.key); n != 1 {
		t.Fatalf("%d callers wait after one left, want 1", n)
	}
	release()
	if err := <-errB; err != nil || resB.ImageID != r.built.ID() {
		t.Fatalf("remaining caller: %+v, %v", resB, err)
	}
}

func TestCancelOfLonePullLeavesNothing(t *testing.T) {
	r := newStalledRig(t, 0)
	r.proxy.Stall(r.built.Layers[1])

	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() {
		_, err := r.svc.PullImage(ctx, r.ref, Credentials{})
		done <- err
	}()
	// The first layer is committed to storage while the second hangs.
	waitFor(t, "the first layer in storage", func() bool { layers, _ := r.counts(t); return layers == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pull returned %v, want context.Canceled", err)
	}
	if layers, images := r.counts(t); layers != 0 || images != 0 {
		t.Fatalf("%d layers and %d images left after cancelled pull", layers, images)
	}
	if n := r.logs.Count("removed layers left by failed pull", "layers=1"); n != 1 {
		t.Errorf("%d cleanup lines, want 1", n)
	}
}

func TestPullWithoutProgressTimesOut(t *testing.T) {
	const timeout = 1500 * time.Millisecond
	r := newStalledRig(t, timeout)
	r.proxy.Stall(r.built.Layers[1])

	start := time.Now()
	_, err := r.svc.PullImage(testCtx(t), r.ref, Credentials{})
	if !errors.Is(err, errdefs.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "no progress for 1.5s") {
		t.Fatalf("stalled pull returned %v, want deadline exceeded after no progress for 1.5s", err)
	}
	if took := time.Since(start); took < timeout || took > 10*timeout {
		t.Errorf("stalled pull failed after %s, want about %s", took, timeout)
	}
	if layers, images := r.counts(t); layers != 0 || images != 0 {
		t.Fatalf("%d layers and %d images left after stalled pull", layers, images)
	}
}

func TestPullProgressIsLogged(t *testing.T) {
	const timeout = time.Minute
	r := newStalledRig(t, timeout)
	release := r.proxy.Stall(r.built.Layers[1])
	defer release()
	ctx := testCtx(t)
	pulled := make(chan error, 1)
	go func() {
		_, err := r.svc.PullImage(ctx, r.ref, Credentials{})
		pulled <- err
	}()
	// Hold the second layer half-sent for longer than the progress interval,
	// counted from the start of its download, so that its next read after
	// the release is reported.
	waitFor(t, "the slow layer's download to start", func() bool {
		return r.proxy.Started(r.built.Layers[1]) > 0 && r.logs.Count("pulling layer", "digest="+r.built.Layers[1].String()) > 0
	})
	time.Sleep(reportInterval(timeout) * 3 / 2)
	release()
	if err := <-pulled; err != nil {
		t.Fatalf("pull: %v", err)
	}
	if n := r.logs.Count("pull progress", "layer="+r.built.Layers[1].String(), "total="); n == 0 {
		t.Errorf("no progress logged for the slow layer:\n%s", r.logs.String())
	}
}
