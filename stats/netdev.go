package stats

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/namespaces"
)

// Interface is one network interface's counters.
type Interface struct {
	Name                                    string
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// ParseNetDev parses the /proc/net/dev format: two header lines, then one
// line per interface, "name: <8 receive counters> <8 transmit counters>".
func ParseNetDev(r io.Reader) ([]Interface, error) {
	var out []Interface
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		if line <= 2 {
			continue // headers
		}
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		name, rest, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fmt.Errorf("net dev line %d: no interface name in %q", line, text)
		}
		fields := strings.Fields(rest)
		if len(fields) < 16 {
			return nil, fmt.Errorf("net dev line %d: %d counters for %s, want 16", line, len(fields), name)
		}
		var n [16]uint64
		for i := range n {
			v, err := strconv.ParseUint(fields[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("net dev line %d: counter %d of %s: %w", line, i, name, err)
			}
			n[i] = v
		}
		// receive: bytes packets errs drop fifo frame compressed multicast
		// transmit: bytes packets errs drop fifo colls carrier compressed
		out = append(out, Interface{
			Name:    strings.TrimSpace(name),
			RxBytes: n[0], RxPackets: n[1], RxErrors: n[2], RxDropped: n[3],
			TxBytes: n[8], TxPackets: n[9], TxErrors: n[10], TxDropped: n[11],
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read net dev: %w", err)
	}
	return out, nil
}

// ReadNetNS returns the interfaces of the network namespace pinned at path.
// The file is read on a thread that joined the namespace, through
// /proc/thread-self: /proc/self/net (and /proc/net) would show the
// namespace of the process's main thread, and sysfs that of its mounter.
func ReadNetNS(path string) ([]Interface, error) {
	var ifs []Interface
	err := namespaces.WithNetNS(path, func() error {
		f, err := os.Open("/proc/thread-self/net/dev")
		if err != nil {
			return err
		}
		defer f.Close()
		ifs, err = ParseNetDev(f)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("network counters of netns %s: %w", path, err)
	}
	return ifs, nil
}
