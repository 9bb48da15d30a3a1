package stats

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

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
//
// The threads that read are a few kept for the purpose (netnsWorkers),
// each joining a pod's namespace and going back to the host's for every
// read: two setns calls. Making a thread per read and throwing it away
// afterwards (namespaces.WithNetNS) costs more than the read itself, for
// every pod on every stats call.
func ReadNetNS(path string) ([]Interface, error) {
	startNetNS.Do(func() {
		for range netnsWorkers {
			go netnsWorker()
		}
	})
	req := netnsReq{path: path, done: make(chan netnsResult, 1)}
	netnsReqs <- req
	res := <-req.done
	if res.err != nil {
		return nil, fmt.Errorf("network counters of netns %s: %w", path, res.err)
	}
	return res.ifs, nil
}

// netnsWorkers is how many threads read network namespaces at once.
const netnsWorkers = 2

var (
	startNetNS sync.Once
	netnsReqs  = make(chan netnsReq)
)

type netnsReq struct {
	path string
	done chan netnsResult
}

type netnsResult struct {
	ifs []Interface
	err error
}

// netnsWorker serves reads on a thread of its own. A thread that cannot
// return to the host's namespace is left locked, so the Go runtime ends it
// with the goroutine, and another worker takes its place.
func netnsWorker() {
	runtime.LockOSThread()
	host, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		// Without a way back, read on throwaway threads.
		runtime.UnlockOSThread()
		for req := range netnsReqs {
			var res netnsResult
			res.err = namespaces.WithNetNS(req.path, func() error {
				var err error
				res.ifs, err = readNetDev(make([]byte, 4096))
				return err
			})
			req.done <- res
		}
		return
	}
	buf := make([]byte, 4096)
	for req := range netnsReqs {
		res, back := readNetNSOn(host, req.path, buf)
		req.done <- res
		if !back {
			go netnsWorker()
			return
		}
	}
}

// readNetNSOn joins the namespace pinned at path, reads its interfaces and
// returns to host; back is false when it could not.
func readNetNSOn(host int, path string, buf []byte) (res netnsResult, back bool) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return netnsResult{err: fmt.Errorf("open netns %s: %w", path, err)}, true
	}
	err = unix.Setns(fd, unix.CLONE_NEWNET)
	unix.Close(fd)
	if err != nil {
		return netnsResult{err: fmt.Errorf("join netns %s: %w", path, err)}, true
	}
	res.ifs, res.err = readNetDev(buf)
	if err := unix.Setns(host, unix.CLONE_NEWNET); err != nil {
		return netnsResult{err: errors.Join(res.err, fmt.Errorf("return the thread to the host's netns: %w", err))}, false
	}
	return res, true
}

// ReadNetNSOf returns the interfaces of the network namespace pinned at
// path, read through /proc/<pid>/net/dev of the first of pids that is in
// that namespace: no thread has to join it, which costs two setns calls a
// pod. Without such a pid it is ReadNetNS.
func ReadNetNSOf(path string, pids []int) ([]Interface, error) {
	var pin unix.Stat_t
	if len(pids) > 0 && unix.Stat(path, &pin) == nil {
		for _, pid := range pids {
			var ns unix.Stat_t
			if pid <= 0 || unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/net", &ns) != nil || ns.Dev != pin.Dev || ns.Ino != pin.Ino {
				continue
			}
			if ifs, err := readNetDevFile("/proc/"+strconv.Itoa(pid)+"/net/dev", make([]byte, 4096)); err == nil {
				return ifs, nil
			}
		}
	}
	return ReadNetNS(path)
}

// readNetDev reads the interfaces of the calling thread's network
// namespace, using buf.
func readNetDev(buf []byte) ([]Interface, error) {
	return readNetDevFile("/proc/thread-self/net/dev", buf)
}

// readNetDevFile reads a net/dev file of /proc, using buf. Which network
// namespace it shows is fixed when it is opened: the opener's for
// /proc/thread-self, the process's for /proc/<pid>.
func readNetDevFile(path string, buf []byte) ([]Interface, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if m == 0 {
			break
		}
		n += m
	}
	return ParseNetDev(bytes.NewReader(buf[:n]))
}
