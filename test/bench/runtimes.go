package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/test/rig"
)

// RuntimeNames are the runtimes the bench knows, in the order it runs
// them; the first one run is the one the ratios are of.
var RuntimeNames = []string{"berth", "containerd-2.4", "containerd-1.6"}

// networks gives each runtime a bridge and subnet of its own that no test
// of the project uses.
var networks = map[string]struct{ bridge, subnet string }{
	"berth":          {"bbench-berth", "10.201.0.0/22"},
	"containerd-2.4": {"bbench-cd24", "10.202.0.0/22"},
	"containerd-1.6": {"bbench-cd16", "10.203.0.0/22"},
}

// Env is what the runtimes of a run share: the work dir, the rig's
// registry and the images.
type Env struct {
	Work   string // temp dir; each runtime gets <Work>/<name>
	Out    string // results
	Rig    *rig.Env
	Images Images
	Berth  string // berth binary
	// ProfileFor, when non-zero, takes a CPU profile of berth this long
	// during the lifecycle phase, through --profiling-socket.
	ProfileFor time.Duration
	// BerthLogLevel is berth's --log-level; debug logs each
	// CreateContainer's step times ("create steps").
	BerthLogLevel string
	Logf          func(format string, args ...any)
}

// Instance is one runtime started by the bench, with everything its
// teardown must undo.
type Instance struct {
	Name    string
	Root    string
	Socket  string
	LogPath string
	Pid     int
	Network *Network
	CRI     *CRI

	helperComm, helperMarker string
	ociRoots                 []ociRoot // runtime binary and --root, to find leftover containers
	profileSocket            string
	netnsBefore              map[string]bool // containerd's: /run/netns at the start
	stop                     func() error
	Cgroups                  []string // pod cgroup parents the workload made
}

type ociRoot struct{ binary, root string }

// Helpers are the instance's conmons or shims now running.
func (in *Instance) Helpers() []int { return Helpers(in.helperComm, in.helperMarker) }

// Start starts the runtime called name with a private root under e.Work,
// its own bridge network and the rig's registry, and waits until its CRI
// says it is ready. On failure whatever was made is torn down.
func (e *Env) Start(ctx context.Context, name string) (in *Instance, err error) {
	nw, ok := networks[name]
	if !ok {
		return nil, fmt.Errorf("unknown runtime %q (known: %s)", name, strings.Join(RuntimeNames, ", "))
	}
	in = &Instance{Name: name, Root: filepath.Join(e.Work, name)}
	defer func() {
		if err != nil {
			if terr := e.Teardown(in); terr != nil {
				e.Logf("%s: teardown after failed start: %v", name, terr)
			}
			in = nil
		}
	}()
	if err := os.MkdirAll(in.Root, 0o755); err != nil {
		return in, err
	}
	if in.Network, err = NewNetwork(filepath.Join(in.Root, "cni"), nw.bridge, nw.subnet); err != nil {
		return in, fmt.Errorf("network: %w", err)
	}
	switch name {
	case "berth":
		err = e.startBerth(ctx, in)
	case "containerd-2.4":
		err = e.startContainerd(ctx, in, filepath.Join(ContainerdV2Dir, "containerd"), 3)
	case "containerd-1.6":
		err = e.startContainerd(ctx, in, ContainerdV1, 2)
	}
	if err != nil {
		return in, err
	}
	if in.CRI, err = Dial(in.Socket); err != nil {
		return in, err
	}
	if err := in.CRI.WaitReady(ctx, 60*time.Second); err != nil {
		return in, fmt.Errorf("%s: %w; see %s", name, err, in.LogPath)
	}
	e.Logf("%s: pid %d, socket %s, bridge %s %s, log %s", name, in.Pid, in.Socket, nw.bridge, nw.subnet, in.LogPath)
	return in, nil
}

// startBerth runs bin/berth with every path under its root (crun's and
// runc's state too), the rig's registries.conf and policy, the run's
// network and, when profiling, a pprof socket.
func (e *Env) startBerth(ctx context.Context, in *Instance) error {
	crunRoot, runcRoot := filepath.Join(in.Root, "crun"), filepath.Join(in.Root, "runc")
	conf := fmt.Sprintf(`# berth-bench: the OCI runtimes' state under this root, not /run.
[runtime.handlers.crun]
path = "/usr/bin/crun"
root = %q

[runtime.handlers.runc]
path = "/usr/bin/runc"
root = %q
`, crunRoot, runcRoot)
	if err := os.WriteFile(filepath.Join(in.Root, "berth.toml"), []byte(conf), 0o644); err != nil {
		return err
	}
	args := append(e.Rig.BerthArgs(),
		"--cni-config-dir", in.Network.ConfDir,
		"--cni-plugin-dir", ContainerdCNIBins,
		"--log-level", cmp.Or(e.BerthLogLevel, "info"),
	)
	if e.ProfileFor > 0 {
		in.profileSocket = filepath.Join(in.Root, "pprof.sock")
		args = append(args, "--profiling-socket", in.profileSocket)
	}
	in.ociRoots = []ociRoot{{"/usr/bin/crun", crunRoot}, {"/usr/bin/runc", runcRoot}}
	in.helperComm, in.helperMarker = "conmon", in.Root+"/"
	d, err := rig.StartBerth(ctx, e.Berth, in.Root, args...)
	if err != nil {
		return err
	}
	in.Socket, in.LogPath, in.Pid, in.stop = d.Socket, d.LogPath, d.Cmd.Process.Pid, d.Stop
	return nil
}

// startContainerd writes a config of the given version (3 for 2.x, 2 for
// 1.6) and runs the binary with its shim's directory first on PATH.
func (e *Env) startContainerd(ctx context.Context, in *Instance, binary string, version int) error {
	o := ContainerdOptions{
		Root:         in.Root,
		RegistryAddr: e.Rig.Registry.Addr,
		Mirrored:     rig.MirroredRegistries,
		CNIConfDir:   in.Network.ConfDir,
		CNIBinDir:    ContainerdCNIBins,
		PauseImage:   rig.RefPause,
	}
	write := WriteContainerdV2
	if version == 3 {
		write = WriteContainerdV3
	}
	config, err := write(o)
	if err != nil {
		return err
	}
	if err := EnsureNetnsMount(); err != nil {
		return err
	}
	in.netnsBefore = NetnsNames()
	in.ociRoots = []ociRoot{{RuncBinary, filepath.Join(in.Root, "runc")}}
	in.helperComm, in.helperMarker = "containerd-shim", o.Socket()
	p, err := StartProcess(ctx, in.Name, binary, []string{"--config", config}, []string{prependPath(filepath.Dir(binary))},
		o.Socket(), filepath.Join(in.Root, "containerd.log"))
	if err != nil {
		return err
	}
	in.Socket, in.LogPath, in.Pid, in.stop = p.Socket, p.LogPath, p.Pid(), p.Stop
	return nil
}

// Profile starts a CPU profile of e.ProfileFor through the instance's
// pprof socket, written to out; the channel closes when it is done.
func (e *Env) Profile(in *Instance, out string) func() <-chan struct{} {
	if in.profileSocket == "" {
		return nil
	}
	return func() <-chan struct{} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := fetchProfile(in.profileSocket, e.ProfileFor, out); err != nil {
				e.Logf("%s: CPU profile: %v", in.Name, err)
				return
			}
			e.Logf("%s: CPU profile of %s written to %s", in.Name, e.ProfileFor, out)
		}()
		return done
	}
}

func fetchProfile(socket string, d time.Duration, out string) error {
	client := &http.Client{
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}},
		Timeout: d + time.Minute,
	}
	resp, err := client.Get(fmt.Sprintf("http://berth/debug/pprof/profile?seconds=%d", int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Teardown undoes everything of the instance, whatever state the run left
// it in: every pod removed through the CRI, the daemon stopped, helpers
// and OCI containers that outlived it killed, mounts under its root
// unmounted and the root removed, its bridge and masquerade rules deleted
// and the pods' cgroups removed. Each step runs even when an earlier one
// failed; what it had to clean up by force is reported, since that is a
// leak of the runtime (or of the bench).
func (e *Env) Teardown(in *Instance) error {
	var errs []error
	note := func(format string, args ...any) { e.Logf("%s: teardown: "+format, append([]any{in.Name}, args...)...) }
	if in.CRI != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		n, err := in.CRI.RemoveAllPods(ctx, 4)
		if err != nil {
			// Once more: a stop that failed half-way often succeeds the
			// second time.
			note("removing pods: %v; trying again", err)
			time.Sleep(2 * time.Second)
			_, err = in.CRI.RemoveAllPods(ctx, 4)
		}
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("remove pods: %w", err))
		}
		if n > 0 {
			note("removed %d pods", n)
		}
		in.CRI.Close()
	}
	if in.stop != nil {
		if err := in.stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop daemon: %w", err))
		}
	}
	if in.helperComm != "" {
		deadline := time.Now().Add(10 * time.Second)
		left := in.Helpers()
		for len(left) > 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			left = in.Helpers()
		}
		if len(left) > 0 {
			note("killing %d %s processes left running: %v", len(left), in.helperComm, left)
			KillPids(left)
		}
	}
	for _, o := range in.ociRoots {
		if _, err := os.Stat(o.root); err != nil {
			continue
		}
		out, err := exec.Command(o.binary, "--root", o.root, "list", "-q").Output()
		if err != nil {
			continue
		}
		for _, id := range strings.Fields(string(out)) {
			note("deleting leftover %s container %s", filepath.Base(o.binary), id)
			_ = exec.Command(o.binary, "--root", o.root, "delete", "--force", id).Run()
		}
	}
	if in.LogPath != "" && e.Out != "" {
		if err := copyFile(in.LogPath, filepath.Join(e.Out, in.Name+".log")); err != nil {
			note("keep log: %v", err)
		}
	}
	if in.Network != nil {
		rules, err := in.Network.Remove()
		if err != nil {
			errs = append(errs, err)
		}
		if rules > 0 {
			note("deleted %d leftover masquerade rules", rules)
		}
	}
	if mounts := MountsUnder(in.Root); len(mounts) > 0 {
		note("unmounting %d mounts left under %s", len(mounts), in.Root)
	}
	if err := RemoveTree(in.Root); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", in.Root, err))
	}
	if in.netnsBefore != nil {
		var left []string
		for name := range NetnsNames() {
			if !in.netnsBefore[name] && strings.HasPrefix(name, "cni-") {
				left = append(left, name)
			}
		}
		if len(left) > 0 {
			errs = append(errs, fmt.Errorf("%d network namespaces left in %s (not removed: they may be another's): %s", len(left), NetnsDir, strings.Join(left, " ")))
		}
	}
	for _, cg := range in.Cgroups {
		if err := RemoveCgroup(strings.TrimPrefix(cg, "/")); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}
