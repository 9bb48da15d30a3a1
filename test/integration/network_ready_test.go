package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func networkCondition(t *testing.T, b *berth) *runtime.RuntimeCondition {
	t.Helper()
	st, err := b.runtime.Status(ctxT(t), &runtime.StatusRequest{})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	for _, c := range st.GetStatus().GetConditions() {
		if c.GetType() == runtime.NetworkReady {
			return c
		}
	}
	t.Fatal("Status has no NetworkReady condition")
	return nil
}

// waitNetwork polls NetworkReady until done says the condition is what the
// test waits for, and returns the last one either way.
func waitNetwork(t *testing.T, b *berth, done func(*runtime.RuntimeCondition) bool) *runtime.RuntimeCondition {
	t.Helper()
	var c *runtime.RuntimeCondition
	waitFor(func() bool {
		c = networkCondition(t, b)
		return done(c)
	})
	return c
}

// The CNI conf dir is watched: a network config dropped in later makes the
// node's network ready without a restart, and a broken one is named.
func TestNetworkReadyFollowsConfDir(t *testing.T) {
	tn := newTestNetwork(t)
	conflist, err := os.ReadFile(filepath.Join(tn.confDir, "10-berth-test.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	b := startBerth(t, "--cni-config-dir", empty)

	if c := networkCondition(t, b); c.GetStatus() || !strings.Contains(c.GetMessage(), empty) {
		t.Fatalf("NetworkReady with an empty conf dir = %v, want false naming %s", c, empty)
	}
	if _, err := b.crictl(t, "runp", podJSON(t, "early", nil)); err == nil || !strings.Contains(err.Error(), "network") {
		t.Errorf("runp before the network is ready: %v, want a network error", err)
	}

	writeFile(t, filepath.Join(empty, "05-broken.conflist"), "{ not json")
	names := func(c *runtime.RuntimeCondition) bool { return strings.Contains(c.GetMessage(), "05-broken.conflist") }
	if c := waitNetwork(t, b, names); c.GetStatus() || !names(c) {
		t.Errorf("NetworkReady with only a broken conflist = %v, want false naming the file", c)
	}

	writeFile(t, filepath.Join(empty, "10-berth-test.conflist"), string(conflist))
	if c := waitNetwork(t, b, (*runtime.RuntimeCondition).GetStatus); !c.GetStatus() {
		t.Fatalf("NetworkReady after adding a conflist = %v, want true", c)
	}
	id := strings.TrimSpace(b.mustCrictl(t, "runp", podJSON(t, "late", nil)))
	b.mustCrictl(t, "rmp", "-f", id)
	b.assertNoPodLeftovers(t, tn)
}

// Many pods through their whole life, some in parallel: nothing may be left.
func TestPodCyclesLeakNothing(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, append(tn.args(), "--log-level", "info")...)
	ctx := ctxT(t)
	inParallel(t, 200, 4, func(i int) error {
		cfg := sandboxConfig("cycle-" + strconv.Itoa(i))
		// Alternate pods with and without an infra process.
		if i%2 == 1 {
			cfg.Linux.SecurityContext = &runtime.LinuxSandboxSecurityContext{NamespaceOptions: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_CONTAINER}}
		}
		resp, err := b.runtime.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: cfg})
		if err != nil {
			return err
		}
		if _, err := b.runtime.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: resp.GetPodSandboxId()}); err != nil {
			return err
		}
		_, err = b.runtime.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: resp.GetPodSandboxId()})
		return err
	})
	b.assertNoPodLeftovers(t, tn)
	// The CNI result cache is emptied too: nothing for GC to find later.
	if ents, _ := os.ReadDir(filepath.Join(b.Root, "state", "cni", "results")); len(ents) != 0 {
		t.Errorf("CNI cache entries left: %d", len(ents))
	}
}

// inParallel runs cycle(0..n-1) on workers goroutines, each worker taking
// every workers-th index and stopping at its first error; every error fails
// the test.
func inParallel(t *testing.T, n, workers int, cycle func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if err := cycle(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("cycle: %v", err)
	}
}
