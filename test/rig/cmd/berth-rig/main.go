// Command berth-rig serves the test rig's images from a local registry, for
// people and make targets that want to run berth (or crictl, critest,
// skopeo) against real image names with no network:
//
//	berth-rig serve --dir /tmp/berth-rig --port 5000 [--daemon]
//	berth-rig stop  --dir /tmp/berth-rig
//	berth-rig build --dir /tmp/berth-rig
//
// serve builds the images (reusing an earlier build in --dir), starts
// docker-registry on 127.0.0.1:PORT, pushes every image, and writes
// <dir>/registries.conf and <dir>/policy.json for berth. In the foreground it
// runs until ^C; with --daemon it leaves the registry running and records its
// pid in <dir>/registry.pid for stop.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/test/rig"
)

const usage = `usage:
  berth-rig serve [--dir DIR] [--port PORT] [--daemon]
  berth-rig stop  [--dir DIR]
  berth-rig build [--dir DIR]
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	fs := flag.NewFlagSet("berth-rig "+os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", "/tmp/berth-rig", "directory for images, registry storage and config files")
	var err error
	switch os.Args[1] {
	case "serve":
		port := fs.Int("port", 5000, "registry port on 127.0.0.1 (0 picks a free one)")
		daemon := fs.Bool("daemon", false, "leave the registry running in the background (stop with `berth-rig stop`)")
		_ = fs.Parse(os.Args[2:])
		err = serve(ctx, absDir(*dir), *port, *daemon)
	case "stop":
		_ = fs.Parse(os.Args[2:])
		err = stop(absDir(*dir))
	case "build":
		_ = fs.Parse(os.Args[2:])
		_, err = build(ctx, absDir(*dir))
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "berth-rig: unknown command %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-rig: %v\n", err)
		os.Exit(1)
	}
}

func absDir(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dir
	}
	return abs
}

func logf(format string, args ...any) {
	fmt.Printf("berth-rig: "+format+"\n", args...)
}

func pidFile(dir string) string { return filepath.Join(dir, "registry.pid") }

func build(ctx context.Context, dir string) ([]rig.Image, error) {
	start := time.Now()
	images, err := rig.BuildImages(ctx, filepath.Join(dir, "images"))
	if err != nil {
		return nil, err
	}
	logf("%d images in %s (%.1fs)", len(images), filepath.Join(dir, "images"), time.Since(start).Seconds())
	return images, nil
}

func serve(ctx context.Context, dir string, port int, daemon bool) error {
	// One registry per dir: a second serve replaces the first, so that
	// `make` can run serve again without a stop.
	if err := stop(dir); err != nil {
		return err
	}
	// Detached even in the foreground: ^C then reaches only berth-rig, which
	// stops the registry in order instead of racing it.
	opts := rig.RegistryOptions{Detach: true}
	if port != 0 {
		opts.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	}
	env, err := rig.Setup(ctx, filepath.Join(dir, "images"), dir, opts)
	if err != nil {
		return err
	}
	reg := env.Registry
	if err := os.WriteFile(pidFile(dir), []byte(strconv.Itoa(reg.Pid())+"\n"), 0o644); err != nil {
		_ = reg.Stop()
		return fmt.Errorf("write pid file: %w", err)
	}
	logf("%d images built in %s (%.1fs)", len(env.Images), filepath.Join(dir, "images"), env.BuildTime.Seconds())
	logf("registry on %s (pid %d, log %s), pushed in %.1fs:", reg.Addr, reg.Pid(), reg.LogPath, env.PushTime.Seconds())
	for _, img := range env.Images {
		fmt.Printf("  %-38s as %s/%s\n  %38s    %s\n", img.Ref, reg.Addr, img.Ref, "", img.Digest)
	}
	fmt.Printf(`
Point berth at it (pulls from %s then come from here):
  berth %s ...
Or try it with skopeo:
  skopeo --registries-conf %s inspect --no-tags docker://%s
`, strings.Join(rig.MirroredRegistries, ", "), strings.Join(env.BerthArgs(), " "), env.RegistriesConf, rig.RefPause)

	if daemon {
		fmt.Printf("Stop it with:\n  berth-rig stop --dir %s\n", dir)
		return nil
	}
	fmt.Println("Serving until ^C.")
	select {
	case <-ctx.Done():
		logf("stopping registry")
		err = reg.Stop()
	case <-reg.Exited():
		err = fmt.Errorf("registry exited; see %s", reg.LogPath)
	}
	if rerr := removePidFile(dir); err == nil {
		err = rerr
	}
	return err
}

// stop ends the registry recorded in dir's pid file, if it is still
// running: SIGTERM, then SIGKILL after 10s.
func stop(dir string) error {
	data, err := os.ReadFile(pidFile(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("parse pid file %s: %w", pidFile(dir), err)
	}
	// The pid may have been reused since; only signal a registry.
	if !isRegistry(pid) {
		logf("registry (pid %d) is not running", pid)
		return removePidFile(dir)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal registry %d: %w", pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for isRegistry(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(time.Hour) // once
		}
		time.Sleep(50 * time.Millisecond)
	}
	logf("stopped registry (pid %d)", pid)
	return removePidFile(dir)
}

// isRegistry reports whether pid is a live docker-registry process. A zombie
// has an empty command line, so it does not count.
func isRegistry(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(cmdline), "docker-registry")
}

func removePidFile(dir string) error {
	if err := os.Remove(pidFile(dir)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove pid file: %w", err)
	}
	return nil
}
