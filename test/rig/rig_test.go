package rig

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a fake berth daemon for the StartBerth tests:
// with BERTH_RIG_FAKE_DAEMON set it runs no tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("BERTH_RIG_FAKE_DAEMON"); mode != "" {
		os.Exit(fakeDaemon(mode, os.Args[1:]))
	}
	code := m.Run()
	cleanupShared()
	os.Exit(code)
}

// fakeDaemon behaves like berth as far as StartBerth can tell: it logs its
// arguments, then listens on --listen until SIGTERM ("listen"), or fails at
// start-up ("crash").
func fakeDaemon(mode string, args []string) int {
	fmt.Printf("fake berth args: %s\n", strings.Join(args, " "))
	if mode == "crash" {
		fmt.Fprintln(os.Stderr, "fake berth: storage is on fire")
		return 3
	}
	var sock string
	for i, a := range args {
		if a == "--listen" && i+1 < len(args) {
			sock = args[i+1]
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	time.Sleep(200 * time.Millisecond) // a real daemon takes a moment too
	l, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte{0}) // a gRPC server sends its settings frame unasked
			c.Close()
		}
	}()
	<-sigs
	l.Close()
	fmt.Println("fake berth: shutting down")
	return 0
}

// One build and one registry with everything pushed, shared by the tests
// that only read them and made on first use.
var (
	sharedDir      string
	sharedImages   []Image
	sharedBuildDur time.Duration
	sharedBuildErr error
	sharedOnce     sync.Once

	sharedEnv     *Env
	sharedRegErr  error
	sharedRegOnce sync.Once
)

func cleanupShared() {
	if sharedEnv != nil {
		_ = sharedEnv.Stop()
	}
	if sharedDir != "" {
		_ = os.RemoveAll(sharedDir)
	}
}

func testImages(t *testing.T) []Image {
	t.Helper()
	sharedOnce.Do(func() {
		if sharedDir, sharedBuildErr = os.MkdirTemp("", "berth-rig-test-"); sharedBuildErr != nil {
			return
		}
		start := time.Now()
		sharedImages, sharedBuildErr = BuildImages(context.Background(), filepath.Join(sharedDir, "images"))
		sharedBuildDur = time.Since(start)
	})
	if sharedBuildErr != nil {
		t.Fatalf("BuildImages: %v", sharedBuildErr)
	}
	return sharedImages
}

// testEnv is Setup on the shared build (a cache hit by then): a registry
// with every image pushed, and config files pointing at it.
func testEnv(t *testing.T) *Env {
	t.Helper()
	testImages(t)
	sharedRegOnce.Do(func() {
		sharedEnv, sharedRegErr = Setup(context.Background(), filepath.Join(sharedDir, "images"),
			filepath.Join(sharedDir, "env"), RegistryOptions{})
	})
	if sharedRegErr != nil {
		t.Fatalf("Setup: %v", sharedRegErr)
	}
	return sharedEnv
}

func mustImage(t *testing.T, images []Image, ref string) Image {
	t.Helper()
	img, ok := FindImage(images, ref)
	if !ok {
		t.Fatalf("no image %s among %d built", ref, len(images))
	}
	return img
}
