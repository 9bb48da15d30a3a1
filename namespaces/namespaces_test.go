package namespaces

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/errdefs"
)

func TestValidateSysctls(t *testing.T) {
	for _, tc := range []struct {
		name             string
		sysctls          map[string]string
		hostNet, hostIPC bool
		wantErr          string // substring; "" for success
		wantPath         string
	}{
		{name: "net in own netns", sysctls: map[string]string{"net.ipv4.ping_group_range": "0 1"}, wantPath: "net/ipv4/ping_group_range"},
		{name: "ipc in own ipc ns", sysctls: map[string]string{"kernel.shmmax": "1"}, wantPath: "kernel/shmmax"},
		{name: "kernel.sem", sysctls: map[string]string{"kernel.sem": "1 2 3 4"}, wantPath: "kernel/sem"},
		{name: "mqueue", sysctls: map[string]string{"fs.mqueue.msg_max": "10"}, wantPath: "fs/mqueue/msg_max"},
		{name: "slashed form", sysctls: map[string]string{"net/ipv4/conf/eth0.1/forwarding": "1"}, wantPath: "net/ipv4/conf/eth0.1/forwarding"},
		{name: "dotted with vlan", sysctls: map[string]string{"net.ipv4.conf.eth0/1.forwarding": "1"}, wantPath: "net/ipv4/conf/eth0.1/forwarding"},
		{name: "kernel.panic refused", sysctls: map[string]string{"kernel.panic": "1"}, wantErr: `"kernel.panic" is not namespaced`},
		{name: "vm refused", sysctls: map[string]string{"vm.swappiness": "1"}, wantErr: `"vm.swappiness" is not namespaced`},
		{name: "kernel.hostname refused", sysctls: map[string]string{"kernel.hostname": "x"}, wantErr: "not namespaced"},
		{name: "net with host network", sysctls: map[string]string{"net.ipv4.ping_group_range": "0 1"}, hostNet: true, wantErr: "own network namespace"},
		{name: "ipc with host ipc", sysctls: map[string]string{"kernel.shmmax": "1"}, hostIPC: true, wantErr: "own IPC namespace"},
		{name: "empty component", sysctls: map[string]string{"net..ipv4": "1"}, wantErr: "malformed"},
		{name: "dot-dot", sysctls: map[string]string{"net.ipv4/../../x": "1"}, wantErr: "malformed"},
		{name: "newline in value", sysctls: map[string]string{"net.ipv4.ping_group_range": "0 1\n"}, wantErr: "newline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ValidateSysctls(tc.sysctls, tc.hostNet, tc.hostIPC)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("got %v, want invalid argument containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Path != tc.wantPath {
				t.Fatalf("got %+v, want path %s", got, tc.wantPath)
			}
		})
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// nsenter runs a command in the namespace pinned at path.
func nsenter(t *testing.T, flag, path string, args ...string) string {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{flag + "=" + path, "--"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter %s=%s %v: %v: %s", flag, path, args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestPinSession(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	ctx := context.Background()
	hostPing := readFile(t, "/proc/sys/net/ipv4/ping_group_range")
	hostShm := readFile(t, "/proc/sys/kernel/shmmax")
	hostName, _ := os.Hostname()
	hostNetNS := inode(t, "/proc/self/ns/net")

	p, err := Pin(ctx, "pod1", Options{
		Dir: dir, NewNet: true, NewIPC: true, NewUTS: true,
		Hostname: "berth-test-pod",
		Sysctls: map[string]string{
			"net.ipv4.ping_group_range": "100 200",
			"kernel/shmmax":             "12345678",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Unpin(p) })

	for kind, path := range map[string]string{KindNet: p.Net, KindIPC: p.IPC, KindUTS: p.UTS} {
		if path != filepath.Join(dir, kind, "pod1") {
			t.Fatalf("%s pin at %q", kind, path)
		}
		if !IsPinned(path) {
			t.Fatalf("%s is not a mounted namespace", path)
		}
		if inode(t, path) == inode(t, "/proc/self/ns/"+kind) {
			t.Fatalf("%s pin is the host's namespace", kind)
		}
	}
	if got := nsenter(t, "--uts", p.UTS, "hostname"); got != "berth-test-pod" {
		t.Errorf("hostname in pod = %q", got)
	}
	if got, _ := os.Hostname(); got != hostName {
		t.Errorf("host name changed to %q", got)
	}
	if got := nsenter(t, "--net", p.Net, "cat", "/proc/sys/net/ipv4/ping_group_range"); got != "100\t200" {
		t.Errorf("ping_group_range in pod = %q", got)
	}
	if got := readFile(t, "/proc/sys/net/ipv4/ping_group_range"); got != hostPing {
		t.Errorf("host ping_group_range changed to %q", got)
	}
	if got := nsenter(t, "--ipc", p.IPC, "cat", "/proc/sys/kernel/shmmax"); got != "12345678" {
		t.Errorf("shmmax in pod = %q", got)
	}
	if got := readFile(t, "/proc/sys/kernel/shmmax"); got != hostShm {
		t.Errorf("host shmmax changed to %q", got)
	}

	// The pinned netns is empty but for lo, which is up whatever the CNI
	// config holds: nothing in it need run the loopback plugin.
	var names []string
	loUp := false
	if err := WithNetNS(p.Net, func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			names = append(names, i.Name)
			loUp = loUp || (i.Name == "lo" && i.Flags&net.FlagUp != 0)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "lo" {
		t.Errorf("interfaces in new netns: %v", names)
	}
	if !loUp {
		t.Error("lo is down in the new netns")
	}

	ids, err := List(dir)
	if err != nil || strings.Join(ids, ",") != "pod1" {
		t.Fatalf("List = %v, %v", ids, err)
	}

	// A second Pin of the same pod is refused and leaves the pins alone.
	if _, err := Pin(ctx, "pod1", Options{Dir: dir, NewNet: true}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second Pin: %v", err)
	}
	if !IsPinned(p.Net) {
		t.Fatal("second Pin broke the first one's pin")
	}

	if err := Unpin(p); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{p.Net, p.IPC, p.UTS} {
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", path, err)
		}
	}
	if err := Unpin(p); err != nil {
		t.Errorf("second Unpin: %v", err)
	}
	if err := Remove(dir, "pod1"); err != nil {
		t.Errorf("Remove after Unpin: %v", err)
	}
	if err := Remove(dir, "never-pinned"); err != nil {
		t.Errorf("Remove of unknown pod: %v", err)
	}
	if ids, _ := List(dir); len(ids) != 0 {
		t.Errorf("List after Unpin = %v", ids)
	}
	if inode(t, "/proc/self/ns/net") != hostNetNS {
		t.Error("the main thread was left in another network namespace")
	}
}

func TestPinHostNamespaces(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	p, err := Pin(context.Background(), "hostpod", Options{Dir: dir, Hostname: "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Net != "" || p.IPC != "" || p.UTS != "" {
		t.Fatalf("host pod got pins: %+v", p)
	}
	if ids, _ := List(dir); len(ids) != 0 {
		t.Fatalf("List = %v", ids)
	}
}

func TestPinFailureLeavesNothing(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name    string
		opts    Options
		wantErr error
		errText string
	}{
		{
			name:    "unsafe sysctl",
			opts:    Options{NewNet: true, NewIPC: true, Sysctls: map[string]string{"kernel.panic": "10"}},
			wantErr: errdefs.ErrInvalidArgument, errText: "kernel.panic",
		},
		{
			name:    "net sysctl with host network",
			opts:    Options{NewIPC: true, Sysctls: map[string]string{"net.ipv4.ping_group_range": "0 1"}},
			wantErr: errdefs.ErrInvalidArgument, errText: "net.ipv4.ping_group_range",
		},
		{
			// Exists on the host but is global, so it is not in a new netns.
			name:    "net sysctl not per netns",
			opts:    Options{NewNet: true, NewIPC: true, NewUTS: true, Sysctls: map[string]string{"net.core.netdev_max_backlog": "1000"}},
			wantErr: errdefs.ErrInvalidArgument, errText: "net.core.netdev_max_backlog",
		},
		{
			name:    "bad sysctl value",
			opts:    Options{NewNet: true, NewUTS: true, Sysctls: map[string]string{"net.ipv4.ping_group_range": "x y"}},
			wantErr: errdefs.ErrInvalidArgument, errText: "ping_group_range",
		},
		{
			name:    "hostname too long",
			opts:    Options{NewNet: true, NewUTS: true, Hostname: strings.Repeat("h", 80)},
			errText: "set hostname",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.opts.Dir = dir
			_, err := Pin(context.Background(), "bad", tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.errText) || !strings.Contains(err.Error(), "pod bad") {
				t.Fatalf("got %v, want error naming %q and the pod", err, tc.errText)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			if ids, _ := List(dir); len(ids) != 0 {
				t.Fatalf("failed Pin left pins for %v", ids)
			}
		})
	}
}

func TestPinParallel(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	hostNetNS := inode(t, "/proc/self/ns/net")
	errs := make(chan error, 40)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			p, err := Pin(context.Background(), fmt.Sprintf("pod%d", i), Options{
				Dir: dir, NewNet: true, NewIPC: true, NewUTS: true, Hostname: fmt.Sprintf("h%d", i),
				Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": fmt.Sprint(100 + i)},
			})
			if err != nil {
				errs <- err
				return
			}
			if got := nsenterErr("--net", p.Net, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"); got != fmt.Sprint(100+i) {
				errs <- fmt.Errorf("pod%d: ip_unprivileged_port_start = %q", i, got)
			}
			errs <- Unpin(p)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if ids, _ := List(dir); len(ids) != 0 {
		t.Errorf("left pins: %v", ids)
	}
	if inode(t, "/proc/self/ns/net") != hostNetNS {
		t.Error("the main thread was left in another network namespace")
	}
}

// nsenterErr is nsenter for other goroutines: output or the error text.
func nsenterErr(flag, path string, args ...string) string {
	out, err := exec.Command("nsenter", append([]string{flag + "=" + path, "--"}, args...)...).CombinedOutput()
	if err != nil {
		return err.Error() + ": " + string(out)
	}
	return strings.TrimSpace(string(out))
}

func TestPinInvalidPodID(t *testing.T) {
	for _, id := range []string{"", "..", "a/b"} {
		if _, err := Pin(context.Background(), id, Options{Dir: t.TempDir(), NewNet: true}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Pin(%q): %v", id, err)
		}
		if err := Remove(t.TempDir(), id); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Remove(%q): %v", id, err)
		}
	}
}
