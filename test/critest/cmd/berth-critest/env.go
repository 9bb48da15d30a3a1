package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/test/critest"
	"github.com/berth-dev/berth/test/rig"
)

// env is what every run sets up around the runtime under test: a temp dir,
// the rig's registry with every image critest pulls, and a CNI network of
// the run's own. Each acquisition registers its undo; close runs them in
// reverse order.
type env struct {
	work    string // temp dir holding everything below
	out     string // results directory, kept
	rig     *rig.Env
	network *critest.Network
	undo    []undo
}

type undo struct {
	what string
	fn   func() error
}

func (e *env) onClose(what string, fn func() error) { e.undo = append(e.undo, undo{what, fn}) }

// close undoes the set-up in reverse and reports each failure.
func (e *env) close() error {
	var errs []error
	for i := len(e.undo) - 1; i >= 0; i-- {
		if err := e.undo[i].fn(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.undo[i].what, err))
		}
	}
	e.undo = nil
	return errors.Join(errs...)
}

// setupEnv builds (or reuses) the rig's images, serves them from a registry
// on a free loopback port and writes the CNI network. On failure whatever
// was made is undone.
func setupEnv(ctx context.Context, o *options) (e *env, err error) {
	e = &env{out: o.out}
	defer func() {
		if err != nil {
			if cerr := e.close(); cerr != nil {
				logf("clean-up after failed set-up: %v", cerr)
			}
		}
	}()
	if err := os.MkdirAll(e.out, 0o755); err != nil {
		return nil, fmt.Errorf("create output dir: %w", err)
	}
	// Short, so that sockets under it stay within 107 bytes.
	if e.work, err = os.MkdirTemp("", "berth-critest-"); err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}
	e.onClose("remove work dir "+e.work, func() error {
		if o.keep {
			logf("kept %s", e.work)
			return nil
		}
		return removeTree(e.work)
	})

	start := time.Now()
	if e.rig, err = rig.Setup(ctx, o.imageDir, filepath.Join(e.work, "rig"), rig.RegistryOptions{}); err != nil {
		return nil, fmt.Errorf("set up the rig: %w", err)
	}
	e.onClose("stop registry", e.rig.Stop)
	logf("rig: %d images (built or reused in %s) served on %s, pushed in %.1fs",
		len(e.rig.Images), o.imageDir, e.rig.Registry.Addr, time.Since(start).Seconds()-e.rig.BuildTime.Seconds())

	bridge := fmt.Sprintf("critest%d", os.Getpid()%100000)
	if e.network, err = critest.NewNetwork(filepath.Join(e.work, "cni"), bridge); err != nil {
		return nil, fmt.Errorf("write CNI network: %w", err)
	}
	e.onClose("delete bridge "+bridge, e.network.Remove)
	logf("network: bridge %s, subnet %s, conflist in %s", bridge, e.network.Subnet, e.network.ConfDir)
	return e, nil
}

// runtime is a CRI runtime of the run: Berth or containerd.
type runtime struct {
	name      string
	pid       int
	socket    string
	nriSocket string // "" when the runtime serves no NRI plugins
	logPath   string
	stop      func() error
}

// writeNRIConfig turns NRI on for the berth under root, on a socket of its
// own (the node's default one may be another runtime's) and with no
// pre-installed plugins, and returns the socket. critest's plugins hold
// their sync open for 2s, longer than NRI's default request timeout.
func writeNRIConfig(root string) (string, error) {
	dir := filepath.Join(root, "berth.toml.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create berth config dir: %w", err)
	}
	socket := filepath.Join(root, "nri.sock")
	conf := fmt.Sprintf("[nri]\nenable = true\nsocket_path = %q\nplugin_path = %q\nplugin_config_path = %q\nplugin_request_timeout = \"10s\"\n",
		socket, filepath.Join(root, "nri-plugins"), filepath.Join(root, "nri-conf.d"))
	if err := os.WriteFile(filepath.Join(dir, "50-nri.toml"), []byte(conf), 0o644); err != nil {
		return "", fmt.Errorf("write NRI config: %w", err)
	}
	return socket, nil
}

// startBerth starts the berth binary with every path under the work dir,
// the rig's registries.conf and policy, and the run's network.
func (e *env) startBerth(ctx context.Context, binary string) (*runtime, error) {
	root := filepath.Join(e.work, "berth")
	args := append(e.rig.BerthArgs(),
		"--cni-config-dir", e.network.ConfDir,
		"--log-level", "debug",
	)
	nriSocket, err := writeNRIConfig(root)
	if err != nil {
		return nil, err
	}
	d, err := rig.StartBerth(ctx, binary, root, args...)
	if err != nil {
		return nil, err
	}
	rt := &runtime{name: "berth", pid: d.Cmd.Process.Pid, socket: d.Socket, nriSocket: nriSocket, logPath: d.LogPath, stop: d.Stop}
	logf("berth: pid %d, socket %s, log %s", d.Cmd.Process.Pid, d.Socket, d.LogPath)
	return rt, nil
}

// startContainerd starts containerd with the same registry (as mirrors) and
// network.
func (e *env) startContainerd(ctx context.Context) (*runtime, error) {
	if err := e.network.Reset(); err != nil {
		return nil, err
	}
	c, err := critest.StartContainerd(ctx, critest.ContainerdOptions{
		Root:         filepath.Join(e.work, "containerd"),
		RegistryAddr: e.rig.Registry.Addr,
		Mirrored:     rig.MirroredRegistries,
		CNIConfDir:   e.network.ConfDir,
		CNIBinDir:    "/usr/lib/cni",
		PauseImage:   rig.RefPause,
	})
	if err != nil {
		return nil, err
	}
	logf("containerd: pid %d, socket %s, log %s", c.Pid(), c.Socket, c.LogPath)
	return &runtime{name: "containerd", pid: c.Pid(), socket: c.Socket, logPath: c.LogPath, stop: c.Stop}, nil
}

// shutdown removes every pod the runtime still has (critest removes its
// own; leftovers mean a spec failed half-way or the runtime leaks), stops
// the runtime and keeps its log in the output dir. It returns how many pods
// were left.
func (e *env) shutdown(rt *runtime) (leftover int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, lerr := rig.Crictl(ctx, rt.socket, "pods", "-q")
	if lerr == nil {
		leftover = len(strings.Fields(out))
	}
	if leftover > 0 {
		if _, err := rig.Crictl(ctx, rt.socket, "rmp", "-fa"); err != nil {
			logf("%s: remove %d leftover pods: %v", rt.name, leftover, err)
		}
		if out, err := rig.Crictl(ctx, rt.socket, "pods", "-q"); err == nil && strings.TrimSpace(out) != "" {
			logf("%s: pods still present after crictl rmp -fa:\n%s", rt.name, out)
		}
	}
	err = rt.stop()
	if cerr := copyFile(rt.logPath, filepath.Join(e.out, rt.name+".log")); cerr != nil {
		logf("keep %s log: %v", rt.name, cerr)
	}
	return leftover, err
}
