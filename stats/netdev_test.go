package stats

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/namespaces"
)

const netDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     840      10    0    0    0     0          0         0      840      10    0    0    0     0       0          0
  eth0: 1296000    1600    2    3    0     0          0         4   796000     990    5    6    0     0       0          0
eth1:18446744073709551615 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0
`

func TestParseNetDev(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    []Interface
		wantErr string
	}{
		{
			name: "lo, eth0 and a counter at its maximum without a space after the colon",
			in:   netDev,
			want: []Interface{
				{Name: "lo", RxBytes: 840, RxPackets: 10, TxBytes: 840, TxPackets: 10},
				{Name: "eth0", RxBytes: 1296000, RxPackets: 1600, RxErrors: 2, RxDropped: 3,
					TxBytes: 796000, TxPackets: 990, TxErrors: 5, TxDropped: 6},
				{Name: "eth1", RxBytes: 18446744073709551615, RxPackets: 1, TxBytes: 7, TxPackets: 1},
			},
		},
		{name: "headers only", in: strings.Join(strings.SplitN(netDev, "\n", 3)[:2], "\n") + "\n"},
		{name: "empty"},
		{name: "short line", in: "h\nh\n eth0: 1 2 3\n", wantErr: "3 counters for eth0"},
		{name: "not a number", in: "h\nh\n eth0: 1 2 3 4 5 6 7 8 x 10 11 12 13 14 15 16\n", wantErr: "counter 8 of eth0"},
		{name: "no name", in: "h\nh\n 1 2 3\n", wantErr: "no interface name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseNetDev(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("interface %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestParseNetDevOfThisHost(t *testing.T) {
	f, err := os.Open("/proc/self/net/dev")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	ifs, err := ParseNetDev(f)
	if err != nil || len(ifs) == 0 {
		t.Fatalf("ParseNetDev(/proc/self/net/dev) = %v, %v", ifs, err)
	}
}

// ReadNetNSOf reads through a pid only when the pid is in the namespace:
// this process's own is read through its pid, a pod's fresh one (lo only)
// is joined even when told this process's pid.
func TestReadNetNSOf(t *testing.T) {
	names := func(ifs []Interface) string {
		var n []string
		for _, i := range ifs {
			n = append(n, i.Name)
		}
		slices.Sort(n)
		return strings.Join(n, ",")
	}
	f, err := os.Open("/proc/self/net/dev")
	if err != nil {
		t.Skip(err)
	}
	direct, err := ParseNetDev(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadNetNSOf("/proc/self/ns/net", []int{-1, 0, os.Getpid()})
	if err != nil {
		t.Fatalf("through this process's pid: %v", err)
	}
	if names(got) != names(direct) {
		t.Errorf("through this process's pid: %s, want %s", names(got), names(direct))
	}

	if os.Geteuid() != 0 {
		t.Skip("a new network namespace needs root")
	}
	dir := t.TempDir()
	p, err := namespaces.Pin(context.Background(), "pod1", namespaces.Options{Dir: dir, NewNet: true})
	if err != nil {
		t.Fatal(err)
	}
	defer namespaces.Remove(dir, "pod1")
	got, err = ReadNetNSOf(p.Net, []int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if names(got) != "lo" {
		t.Errorf("a fresh netns read as %s: a pid outside it was used", names(got))
	}
}
