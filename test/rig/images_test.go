package rig

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestBuildImagesMakesEveryImage(t *testing.T) {
	images := testImages(t)
	t.Logf("BuildImages (cold) took %v", sharedBuildDur)

	var refs []string
	for _, img := range images {
		refs = append(refs, img.Ref)
		if _, err := os.Stat(filepath.Join(img.Layout, "index.json")); err != nil {
			t.Errorf("%s: layout %s: %v", img.Ref, img.Layout, err)
		}
	}
	want := append([]string{RefBusybox, RefBusybox136, RefPause, RefPause39, RefPause39GCR, RefNonroot, RefMultilayer, RefSymlinks}, CritestRefs()...)
	if !slices.Equal(refs, want) {
		t.Fatalf("refs = %v, want %v", refs, want)
	}

	for _, tc := range []struct {
		name   string
		a, b   string
		sameID bool
	}{
		{"one pause 3.9 under two registries", RefPause39, RefPause39GCR, true},
		{"pause 3.10 and 3.9 differ", RefPause, RefPause39, false},
		{"busybox latest and 1.36 differ", RefBusybox, RefBusybox136, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := mustImage(t, images, tc.a), mustImage(t, images, tc.b)
			if (a.Digest == b.Digest) != tc.sameID || (a.ConfigDigest == b.ConfigDigest) != tc.sameID {
				t.Errorf("%s %s/%s vs %s %s/%s: want same=%v", a.Ref, a.Digest, a.ConfigDigest, b.Ref, b.Digest, b.ConfigDigest, tc.sameID)
			}
			if !slices.Equal(a.Layers, b.Layers) {
				t.Errorf("%s and %s should share their layers: %v vs %v", a.Ref, b.Ref, a.Layers, b.Layers)
			}
		})
	}

	multi := mustImage(t, images, RefMultilayer)
	if len(multi.Layers) != 4 {
		t.Fatalf("multilayer has %d layers, want 4", len(multi.Layers))
	}
	m, err := multi.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers[1:] {
		// Random data does not compress: each layer stays about 10 MiB.
		if l.Size < multilayerSize {
			t.Errorf("multilayer layer %s is %d bytes, want at least %d", l.Digest, l.Size, multilayerSize)
		}
	}
}

func TestBuildImagesIsDeterministicAndCached(t *testing.T) {
	first := testImages(t)
	ctx := context.Background()

	// A build elsewhere, from scratch, must give byte-identical images.
	start := time.Now()
	second, err := BuildImages(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second cold build took %v", time.Since(start))
	if len(first) != len(second) {
		t.Fatalf("%d images, then %d", len(first), len(second))
	}
	for i := range first {
		a, b := first[i], second[i]
		if a.Ref != b.Ref || a.Digest != b.Digest || a.ConfigDigest != b.ConfigDigest || !slices.Equal(a.Layers, b.Layers) {
			t.Errorf("build differs:\n  %+v\n  %+v", a, b)
		}
	}

	// Rebuilding into the same dir reuses the build: same layouts, untouched.
	dir := filepath.Join(sharedDir, "images")
	index := filepath.Join(first[0].Layout, "index.json")
	before, err := os.Stat(index)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	again, err := BuildImages(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cached build took %v", time.Since(start))
	if !slices.EqualFunc(first, again, func(a, b Image) bool { return a.Digest == b.Digest && a.Layout == b.Layout }) {
		t.Errorf("cached build returned different images:\n%+v\n%+v", first, again)
	}
	after, err := os.Stat(index)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("cached build rewrote %s", index)
	}
}

func TestNonrootImageRunsAsUser1000(t *testing.T) {
	img := mustImage(t, testImages(t), RefNonroot)
	cfg, err := img.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "1000:1000" {
		t.Errorf("nonroot User = %q, want 1000:1000", cfg.Config.User)
	}
	requireRoot(t)
	root := unpack(t, img)
	out := run(t, "chroot", "--userspec=1000:1000", root, "/bin/id")
	if !strings.Contains(out, "uid=1000(app) gid=1000(app)") {
		t.Errorf("id in nonroot image = %q, want uid=1000(app) gid=1000(app)", out)
	}
}

func TestPauseImage(t *testing.T) {
	img := mustImage(t, testImages(t), RefPause)
	cfg, err := img.Config()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/pause"}) {
		t.Errorf("pause Entrypoint = %q, want [/pause]", cfg.Config.Entrypoint)
	}
	root := unpack(t, img)
	if dyn, err := isDynamic(filepath.Join(root, "pause")); err != nil || dyn {
		t.Fatalf("pause must be static: dynamic=%v err=%v", dyn, err)
	}

	// It stays up until told to stop, then exits 0. A SIGTERM that comes
	// before its signal.Notify kills it as it would any Go program, so wait
	// for that call first: started with SIGINT ignored (exec keeps ignored
	// signals), it catches SIGINT only from that call on, which registers
	// SIGTERM before it.
	pause := filepath.Join(root, "pause")
	cmd := exec.Command("/bin/sh", "-c", `trap "" INT; exec "$0"`, pause)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	notified := func() bool { // the shell before the exec may catch SIGINT too
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid))
		return exe == pause && catches(cmd.Process.Pid, syscall.SIGINT)
	}
	for deadline := time.Now().Add(time.Minute); !notified(); {
		select {
		case err := <-done:
			t.Fatalf("pause exited before handling signals: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("pause never called signal.Notify")
		}
	}
	select {
	case err := <-done:
		t.Fatalf("pause exited on its own: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("pause after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("pause ignored SIGTERM")
	}
}

// catches reports whether process pid has a handler for sig (its SigCgt).
func catches(pid int, sig syscall.Signal) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if mask, ok := strings.CutPrefix(line, "SigCgt:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(mask), 16, 64)
			return err == nil && m&(1<<(uint(sig)-1)) != 0
		}
	}
	return false
}

// TestBusyboxImageRuns proves the image's busybox works on its own: the
// shared libraries it needs are in the image, applets are hard links, and
// the pgrep and ipcs stand-ins work where critest uses them.
func TestBusyboxImageRuns(t *testing.T) {
	img := mustImage(t, testImages(t), RefBusybox)
	requireRoot(t)
	root := unpack(t, img)

	out := run(t, "chroot", root, "/bin/sh", "-c", "echo ok; ls /")
	if !strings.HasPrefix(out, "ok\n") || !strings.Contains(out, "bin") || !strings.Contains(out, "etc") {
		t.Errorf("sh in image printed %q", out)
	}

	bb, err := os.Stat(filepath.Join(root, "bin", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"ls", "sh", "sleep", "cat"} {
		st, err := os.Lstat(filepath.Join(root, "bin", applet))
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(bb, st) {
			t.Errorf("/bin/%s is not a hard link to /bin/busybox (mode %v)", applet, st.Mode())
		}
	}

	src, err := findBusybox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("images built from %s (dynamic=%v, libs %v)", src.path, src.dynamic, src.libs)
	if dyn, err := isDynamic(filepath.Join(root, "bin", "busybox")); err != nil || dyn != src.dynamic {
		t.Errorf("image busybox dynamic=%v err=%v, want dynamic=%v", dyn, err, src.dynamic)
	}
	if !src.dynamic {
		t.Logf("warning: static busybox; run contrib/install-deps.sh for the dynamic one critest needs")
	}

	out = inNamespaces(t, root, `chroot "$R" /bin/sh -c 'sleep 5 & sleep 0.2; pgrep sleep'`)
	t.Logf("pgrep sleep: %q", out)
	if strings.TrimSpace(out) == "" {
		t.Errorf("pgrep sleep found nothing")
	}
	out = inNamespaces(t, root, `id=$(ipcmk -M 4096 | grep -o '[0-9]*$') && echo "id=$id" && chroot "$R" /bin/ipcs -m`)
	t.Logf("ipcs -m:\n%s", out)
	id, rest, _ := strings.Cut(strings.TrimPrefix(out, "id="), "\n")
	listed := false
	for _, line := range strings.Split(rest, "\n") {
		f := strings.Fields(line)
		listed = listed || len(f) == 6 && f[1] == id && f[3] == "644" && f[4] == "4096"
	}
	if id == "" || !listed {
		t.Errorf("ipcs -m does not list segment %q:\n%s", id, out)
	}
}

// inNamespaces runs a host shell script in fresh PID, mount and IPC
// namespaces, with the unpacked image at $R given the /proc and /dev a
// container would have, so that what the image's tools see is only what the
// script made.
func inNamespaces(t *testing.T, root, script string) string {
	t.Helper()
	return run(t, "unshare", "--fork", "--pid", "--mount", "--ipc", "--mount-proc="+filepath.Join(root, "proc"),
		"sh", "-c", `R=$1; mount --rbind /dev "$R/dev" && `+script, "sh", root)
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for chroot and namespaces")
	}
}

func unpack(t *testing.T, img Image) string {
	t.Helper()
	root := t.TempDir()
	if err := img.Unpack(root); err != nil {
		t.Fatal(err)
	}
	return root
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
