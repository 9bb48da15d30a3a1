// Package integration drives a real berth daemon through the CRI, as the
// kubelet and crictl do, against the rig's local registry and real
// containers/storage, crun and conmon.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/test/rig"
)

// env is shared by the tests of this package: one registry with the rig's
// images and the berth binary under test.
var env struct {
	binary   string
	registry *rig.Registry
	images   []rig.Image
	confDir  string // holds registries.conf and policy.json
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "integration tests need root: they run real containers")
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	work, err := os.MkdirTemp("", "berth-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(work)

	env.binary = os.Getenv("BERTH_BINARY")
	if env.binary == "" {
		env.binary = filepath.Join(work, "berth")
		build := exec.Command("go", "build", "-tags", "containers_image_openpgp exclude_graphdriver_btrfs nri_no_wasm", "-o", env.binary, "../../cmd/berth")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build berth:", err)
			return 1
		}
	}

	cacheDir := filepath.Join(os.TempDir(), "berth-rig-images")
	if env.images, err = rig.BuildImages(ctx, cacheDir); err != nil {
		fmt.Fprintln(os.Stderr, "build test images:", err)
		return 1
	}
	if env.registry, err = rig.StartRegistry(ctx, filepath.Join(work, "registry")); err != nil {
		fmt.Fprintln(os.Stderr, "start registry:", err)
		return 1
	}
	defer env.registry.Stop()
	for _, img := range env.images {
		if err := env.registry.Push(ctx, img); err != nil {
			fmt.Fprintln(os.Stderr, "push test image:", err)
			return 1
		}
	}
	fmt.Fprintf(os.Stderr, "test registry on %s serves %d images\n", env.registry.Addr, len(env.images))

	env.confDir = filepath.Join(work, "conf")
	if err := os.MkdirAll(env.confDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := rig.WriteRegistriesConf(filepath.Join(env.confDir, "registries.conf"), env.registry.Addr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := rig.WritePolicy(filepath.Join(env.confDir, "policy.json")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// berth is one daemon under test with a CRI client connected to it.
type berth struct {
	*rig.Daemon
	runtime runtime.RuntimeServiceClient
	images  runtime.ImageServiceClient
	conn    *grpc.ClientConn
}

// startBerth starts a daemon in its own temp root, wired to the rig's
// registry, and stops it when the test ends.
func startBerth(t *testing.T, args ...string) *berth {
	t.Helper()
	return startBerthIn(t, t.TempDir(), args...)
}

// startBerthIn is startBerth with the daemon's root chosen by the test; its
// socket is <root>/berth.sock.
func startBerthIn(t *testing.T, root string, args ...string) *berth {
	t.Helper()
	args = append([]string{
		"--registries-conf", filepath.Join(env.confDir, "registries.conf"),
		"--signature-policy", filepath.Join(env.confDir, "policy.json"),
		"--log-level", "debug",
		// An empty CNI dir unless the test brings a network: the node's
		// own /etc/cni/net.d must not change what a test sees.
		"--cni-config-dir", filepath.Join(root, "cni"),
	}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := rig.StartBerth(ctx, env.binary, root, args...)
	if err != nil {
		t.Fatalf("start berth: %v", err)
	}
	b := &berth{Daemon: d}
	t.Cleanup(func() {
		if t.Failed() && b.conn != nil {
			// A failed test stops half-way: remove what it left so later
			// tests and the machine start clean. Passing tests assert
			// their own clean-up, so this never hides a leak.
			b.removeAllPods()
		}
		if b.conn != nil {
			b.conn.Close()
		}
		if err := d.Stop(); err != nil {
			t.Errorf("stop berth: %v", err)
		}
		// The suite runs against a race-built berth (make integration):
		// a race the daemon reported fails the test that provoked it.
		if log, err := os.ReadFile(d.LogPath); err == nil && bytes.Contains(log, []byte("WARNING: DATA RACE")) {
			t.Errorf("berth reported a data race (see the log below)")
		}
		if t.Failed() {
			if log, err := os.ReadFile(d.LogPath); err == nil {
				t.Logf("berth log:\n%s", log)
			}
		}
		// The storage root must be unmountable and removable: a leftover
		// mount under it is a leak.
		unmountUnder(t, root)
	})
	b.conn, err = grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("connect to berth: %v", err)
	}
	b.runtime = runtime.NewRuntimeServiceClient(b.conn)
	b.images = runtime.NewImageServiceClient(b.conn)
	return b
}

// crictl runs crictl against this daemon and returns its stdout.
func (b *berth) crictl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return rig.Crictl(ctx, b.Socket, args...)
}

// mustCrictl is crictl for steps that must succeed.
func (b *berth) mustCrictl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := b.crictl(t, args...)
	if err != nil {
		t.Fatalf("crictl %v: %v", args, err)
	}
	return out
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// removeAllPods force-removes every pod (and so every container).
func (b *berth) removeAllPods() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := b.runtime.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{})
	if err != nil {
		return
	}
	for _, p := range list.GetItems() {
		b.runtime.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: p.GetId()})
	}
}
