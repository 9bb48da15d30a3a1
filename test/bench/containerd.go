package bench

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

	"github.com/berth-dev/berth/test/critest"
)

// Where the containerds of the bench are. ContainerdV2Dir is what
// contrib/install-deps.sh builds from the Go module: off PATH, so that
// `containerd` stays Debian's 1.6.
const (
	ContainerdV2Dir   = "/usr/local/libexec/berth-bench/containerd-2.4.2"
	ContainerdV1      = critest.ContainerdBinary // Debian's 1.6.20, shim in /usr/bin
	RuncBinary        = "/usr/bin/runc"
	ContainerdCNIBins = "/usr/lib/cni"
)

// ContainerdOptions are what a containerd of the bench needs to know.
type ContainerdOptions struct {
	Root         string   // everything of this instance lives here
	RegistryAddr string   // the rig's registry, host:port
	Mirrored     []string // registry hosts the rig serves at RegistryAddr/<host>
	CNIConfDir   string
	CNIBinDir    string
	PauseImage   string
}

// Socket is the CRI socket of a containerd with these options.
func (o ContainerdOptions) Socket() string { return filepath.Join(o.Root, "containerd.sock") }

// CertsDir is the registry.config_path of a version 3 config.
func (o ContainerdOptions) CertsDir() string { return filepath.Join(o.Root, "certs.d") }

// ContainerdV3Config renders the config.toml (version 3) of containerd 2.x:
// state, sockets, runc root and snapshots under o.Root; the CRI on runc with
// cgroupfs; no negative oom_score_adj (no CAP_SYS_RESOURCE here); the run's
// CNI network; registries through hosts.toml files in CertsDir (see
// HostsTOML); NRI off, so that its socket in /var/run/nri is left to others.
func ContainerdV3Config(o ContainerdOptions) string {
	return fmt.Sprintf(`version = 3
root = %q
state = %q
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.erofs"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = %q
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = %q

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = %q
        Root = %q
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [%q]
    conf_dir = %q
    max_conf_num = 1

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`,
		filepath.Join(o.Root, "root"), filepath.Join(o.Root, "state"),
		o.Socket(), o.Socket()+".ttrpc",
		o.PauseImage, o.CertsDir(),
		RuncBinary, filepath.Join(o.Root, "runc"),
		o.CNIBinDir, o.CNIConfDir)
}

// HostsTOML is certs.d/<host>/hosts.toml for one mirrored registry: pulls
// and resolves go to the rig's registry over plain HTTP, under the path the
// rig pushes that host's images to (override_path: the URL's path is the
// API root, "/v2/<host>").
func HostsTOML(registryAddr, host string) string {
	return fmt.Sprintf(`server = "http://%s/v2/%s"

[host."http://%s/v2/%s"]
  capabilities = ["pull", "resolve"]
  override_path = true
`, registryAddr, host, registryAddr, host)
}

// WriteContainerdV3 writes config.toml and the hosts.toml of every mirrored
// registry under o.Root, and returns the config's path.
func WriteContainerdV3(o ContainerdOptions) (string, error) {
	for _, host := range o.Mirrored {
		p := filepath.Join(o.CertsDir(), host, "hosts.toml")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, []byte(HostsTOML(o.RegistryAddr, host)), 0o644); err != nil {
			return "", err
		}
	}
	p := filepath.Join(o.Root, "config.toml")
	return p, os.WriteFile(p, []byte(ContainerdV3Config(o)), 0o644)
}

// WriteContainerdV2 writes the version 2 config of containerd 1.6 (the one
// `make bench-critest` uses: mirrors with a path) and returns its path.
func WriteContainerdV2(o ContainerdOptions) (string, error) {
	p := filepath.Join(o.Root, "config.toml")
	return p, os.WriteFile(p, []byte(critest.ContainerdConfig(critest.ContainerdOptions{
		Root: o.Root, RegistryAddr: o.RegistryAddr, Mirrored: o.Mirrored,
		CNIConfDir: o.CNIConfDir, CNIBinDir: o.CNIBinDir, PauseImage: o.PauseImage,
	})), 0o644)
}

// Process is a daemon the bench started.
type Process struct {
	Name    string
	Socket  string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

// StartProcess runs binary with args (stdout and stderr to logPath; extra
// environment on top of the bench's) and returns once socket accepts
// connections.
func StartProcess(ctx context.Context, name, binary string, args, env []string, socket, logPath string) (*Process, error) {
	if len(socket) > 107 {
		return nil, fmt.Errorf("%s socket path %s is longer than 107 bytes", name, socket)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	p := &Process{Name: name, Socket: socket, LogPath: logPath, done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.Env = append(os.Environ(), env...)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	deadline := time.After(60 * time.Second)
	for {
		if conn, err := net.DialTimeout("unix", socket, time.Second); err == nil {
			conn.Close()
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited at start-up: %v; see %s", name, p.err, logPath)
		case <-deadline:
			_ = p.Stop()
			return nil, fmt.Errorf("%s did not listen on %s within 60s; see %s", name, socket, logPath)
		case <-ctx.Done():
			_ = p.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Pid is the daemon's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop ends the daemon with SIGTERM, SIGKILL after 30s.
func (p *Process) Stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within 30s of SIGTERM; killed", p.Name)
	}
}

// prependPath puts dir first on PATH, for a containerd that must find its
// own shim before Debian's.
func prependPath(dir string) string {
	return "PATH=" + strings.Join([]string{dir, os.Getenv("PATH")}, ":")
}
