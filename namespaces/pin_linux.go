package namespaces

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/errdefs"
)

var cloneFlags = map[string]int{
	KindNet: unix.CLONE_NEWNET,
	KindIPC: unix.CLONE_NEWIPC,
	KindUTS: unix.CLONE_NEWUTS,
}

// Pin makes the namespaces opts asks for and pins them under opts.Dir.
//
// The work happens on a dedicated OS thread: it unshares the namespaces,
// sets the hostname in the new UTS namespace, writes the sysctls through
// /proc/sys (which resolves to the namespaces of the writing thread) and
// bind-mounts /proc/thread-self/ns/<kind> onto each pin. The thread is
// never unlocked, so the Go runtime discards it instead of reusing a thread
// that sits in the pod's namespaces. Nothing runs in a namespace before its
// pin exists. A failed Pin leaves no pin, file or namespace behind.
// Pinning a pod that already has a pin fails with errdefs.ErrAlreadyExists
// and leaves the existing pins alone.
func Pin(ctx context.Context, podID string, opts Options) (*Pinned, error) {
	if err := validatePodID(podID); err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		return nil, fmt.Errorf("pin namespaces of pod %s: no pin directory: %w", podID, errdefs.ErrInvalidArgument)
	}
	sysctls, err := ValidateSysctls(opts.Sysctls, !opts.NewNet, !opts.NewIPC)
	if err != nil {
		return nil, fmt.Errorf("pin namespaces of pod %s: %w", podID, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pin namespaces of pod %s: %w", podID, err)
	}

	p := &Pinned{PodID: podID}
	var want []string
	for _, kind := range kinds {
		if (kind == KindNet && opts.NewNet) || (kind == KindIPC && opts.NewIPC) || (kind == KindUTS && opts.NewUTS) {
			want = append(want, kind)
		}
	}
	if len(want) == 0 {
		return p, nil
	}

	// Undo as we go: every pin file made so far is unmounted and removed
	// if a later step fails.
	created := &Pinned{PodID: podID}
	fail := func(err error) (*Pinned, error) {
		if uerr := Unpin(created); uerr != nil {
			err = fmt.Errorf("%w (cleanup: %v)", err, uerr)
		}
		return nil, fmt.Errorf("pin namespaces of pod %s: %w", podID, err)
	}
	for _, kind := range want {
		path := PinPath(opts.Dir, kind, podID)
		if err := createPinFile(path); err != nil {
			return fail(err)
		}
		created.set(kind, path)
		p.set(kind, path)
	}

	if err := onThread(want, func() error { return pinOnThread(p, want, opts.Hostname, sysctls) }); err != nil {
		return fail(err)
	}
	return p, nil
}

// onThread runs fn on a fresh goroutine locked to its OS thread, which fn
// may move into other namespaces of the given kinds. Afterwards the thread
// is put back into its original namespaces and still never unlocked, so the
// Go runtime ends it rather than reuse it. The restore matters when the
// runtime picked the main thread, which it cannot end (it parks it): the
// main thread must not stay in, and keep alive, a pod's namespace, and
// /proc/self/ns/* must keep naming the host's.
func onThread(kinds []string, fn func() error) error {
	errCh := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, see above
		var restore []func() error
		for _, kind := range kinds {
			fd, err := unix.Open("/proc/thread-self/ns/"+kind, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				errCh <- fmt.Errorf("open the thread's %s namespace: %w", kind, err)
				return
			}
			defer unix.Close(fd)
			flag := cloneFlags[kind]
			restore = append(restore, func() error {
				if err := unix.Setns(fd, flag); err != nil {
					return fmt.Errorf("return the thread to its %s namespace: %w", kind, err)
				}
				return nil
			})
		}
		err := fn()
		for _, r := range restore {
			if rerr := r(); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		errCh <- err
	}()
	return <-errCh
}

// createPinFile makes the empty file a namespace is bind-mounted onto.
func createPinFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("pin %s: %w", path, errdefs.ErrAlreadyExists)
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// pinOnThread runs on a locked thread that is thrown away afterwards.
func pinOnThread(p *Pinned, want []string, hostname string, sysctls []Sysctl) error {
	flags := 0
	for _, kind := range want {
		flags |= cloneFlags[kind]
	}
	if err := unix.Unshare(flags); err != nil {
		return fmt.Errorf("unshare %v: %w", want, err)
	}
	if p.Net != "" {
		if err := upLoopback(); err != nil {
			return err
		}
	}
	if p.UTS != "" && hostname != "" {
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", hostname, err)
		}
	}
	for _, s := range sysctls {
		if err := writeSysctl(s); err != nil {
			return err
		}
	}
	paths := p.paths()
	order := make([]string, 0, len(paths))
	for kind := range paths {
		order = append(order, kind)
	}
	sort.Strings(order)
	for _, kind := range order {
		src := "/proc/thread-self/ns/" + kind
		if err := unix.Mount(src, paths[kind], "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount %s onto %s: %w", src, paths[kind], err)
		}
	}
	return nil
}

// upLoopback brings up lo in the calling thread's network namespace, as
// CRI-O and containerd do for every pod without being asked: a conflist of
// a network provider names no loopback plugin, and a pod's lo must be up
// (127.0.0.1 is how its containers talk to each other). It costs an ioctl,
// where the loopback plugin costs a process.
func upLoopback() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: read its flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	return nil
}

// writeSysctl writes one sysctl of the calling thread's namespaces. The
// /proc/sys entries of net.* and the IPC sysctls are looked up in the
// namespaces of the task that opens them, so a net.* sysctl that is not
// per network namespace does not even exist here and is refused.
func writeSysctl(s Sysctl) error {
	path := "/proc/sys/" + s.Path
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sysctl %q does not exist in the pod's %s namespace (unknown or not namespaced): %w", s.Name, s.Kind, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return fmt.Errorf("open sysctl %q: %w", s.Name, err)
	}
	_, err = f.WriteString(s.Value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ERANGE) {
		return fmt.Errorf("set sysctl %q to %q: %w: %w", s.Name, s.Value, errdefs.ErrInvalidArgument, err)
	}
	if err != nil {
		return fmt.Errorf("set sysctl %q to %q: %w", s.Name, s.Value, err)
	}
	return nil
}

// Unpin unmounts and removes p's pins. It is idempotent: pins already gone
// are fine. The namespaces themselves go away once no process and no other
// mount holds them.
func Unpin(p *Pinned) error {
	if p == nil {
		return nil
	}
	var errs []error
	for _, kind := range kinds {
		path, ok := p.paths()[kind]
		if !ok {
			continue
		}
		if err := removePin(path); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("unpin namespaces of pod %s: %w", p.PodID, err)
	}
	return nil
}

// Remove unmounts and removes every pin of podID under dir, whatever kinds
// it has; missing pins are fine. Use it when the Pinned value is lost
// (recovery after a restart, leak checks).
func Remove(dir, podID string) error {
	if err := validatePodID(podID); err != nil {
		return err
	}
	return Unpin(&Pinned{
		PodID: podID,
		Net:   PinPath(dir, KindNet, podID),
		IPC:   PinPath(dir, KindIPC, podID),
		UTS:   PinPath(dir, KindUTS, podID),
	})
}

// removePin detaches every mount stacked on path, then removes the file.
func removePin(path string) error {
	for i := 0; i < 16; i++ {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if err == nil {
			continue
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not (or no longer) a mount point
		}
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// List returns the ids of the pods that have at least one pin under dir,
// sorted. A missing dir has none.
func List(dir string) ([]string, error) {
	seen := map[string]bool{}
	for _, kind := range kinds {
		entries, err := os.ReadDir(filepath.Join(dir, kind))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list pinned namespaces: %w", err)
		}
		for _, e := range entries {
			seen[e.Name()] = true
		}
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

// IsPinned reports whether path is a mounted namespace (nsfs), as opposed
// to a missing file or a pin whose mount is gone.
func IsPinned(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// WithNetNS runs fn on a fresh OS thread that has joined the network
// namespace at path and returns fn's error. The thread goes back to its
// own network namespace and is discarded afterwards. Goroutines that fn
// starts run elsewhere, in the host's namespace.
func WithNetNS(path string, fn func() error) error {
	return onThread([]string{KindNet}, func() error {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open netns %s: %w", path, err)
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("join netns %s: %w", path, err)
		}
		return fn()
	})
}
