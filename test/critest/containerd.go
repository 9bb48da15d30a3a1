package critest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ContainerdBinary is Debian's containerd 1.6, Berth's peer for benchmarks.
const ContainerdBinary = "/usr/bin/containerd"

// ContainerdOptions are what a containerd of the run needs to know.
type ContainerdOptions struct {
	Root         string   // everything of this instance lives here
	RegistryAddr string   // the rig's registry, host:port
	Mirrored     []string // registry hosts the rig mirrors at RegistryAddr/<host>
	CNIConfDir   string
	CNIBinDir    string
	PauseImage   string
}

// ContainerdConfig renders a config.toml (version 2) for a containerd whose
// state, sockets, runc root and snapshots are all under opts.Root, with the
// CRI plugin on runc and cgroupfs, the run's CNI network, and the rig's
// registry as the mirror of every registry it serves, over plain HTTP.
// The mirror endpoints carry a path ("http://addr/v2/<host>"), which
// containerd 1.6 puts before the repository name, matching where the rig
// pushes images.
func ContainerdConfig(o ContainerdOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, `version = 2
root = %q
state = %q
oom_score = 0
# Snapshotters this machine cannot or need not run.
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # No CAP_SYS_RESOURCE here: negative oom_score_adj cannot be set.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/bin/runc"
        Root = %q
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
    max_conf_num = 1
`,
		filepath.Join(o.Root, "root"), filepath.Join(o.Root, "state"),
		filepath.Join(o.Root, "containerd.sock"), filepath.Join(o.Root, "containerd.sock.ttrpc"),
		filepath.Join(o.Root, "opt"), o.PauseImage, filepath.Join(o.Root, "runc"),
		o.CNIBinDir, o.CNIConfDir)
	for _, host := range o.Mirrored {
		fmt.Fprintf(&b, `  [plugins."io.containerd.grpc.v1.cri".registry.mirrors.%q]
    endpoint = [%q]
`, host, "http://"+o.RegistryAddr+"/v2/"+host)
	}
	return b.String()
}

// Containerd is a containerd process of the run.
type Containerd struct {
	Socket  string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

// StartContainerd writes the config under opts.Root, starts containerd and
// returns once its socket answers.
func StartContainerd(ctx context.Context, o ContainerdOptions) (*Containerd, error) {
	if err := os.MkdirAll(o.Root, 0o755); err != nil {
		return nil, err
	}
	configPath := filepath.Join(o.Root, "config.toml")
	if err := os.WriteFile(configPath, []byte(ContainerdConfig(o)), 0o644); err != nil {
		return nil, err
	}
	c := &Containerd{
		Socket:  filepath.Join(o.Root, "containerd.sock"),
		LogPath: filepath.Join(o.Root, "containerd.log"),
		done:    make(chan struct{}),
	}
	logFile, err := os.Create(c.LogPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	c.cmd = exec.Command(ContainerdBinary, "--config", configPath)
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	deadline := time.After(30 * time.Second)
	for {
		if conn, err := net.DialTimeout("unix", c.Socket, time.Second); err == nil {
			conn.Close()
			return c, nil
		}
		select {
		case <-c.done:
			return nil, fmt.Errorf("containerd exited at start-up: %v; see %s", c.err, c.LogPath)
		case <-deadline:
			_ = c.Stop()
			return nil, fmt.Errorf("containerd did not listen on %s within 30s; see %s", c.Socket, c.LogPath)
		case <-ctx.Done():
			_ = c.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends containerd with SIGTERM (SIGKILL after 20s). Its shims outlive
// it; remove the pods first.
func (c *Containerd) Stop() error {
	select {
	case <-c.done:
		return nil
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	return nil
}

// Pid is containerd's process id.
func (c *Containerd) Pid() int { return c.cmd.Process.Pid }
