package stats

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
)

// CgroupReader reads cgroups as ReadCgroup does, but keeps the files it
// reads open between calls and reads them again with one pread each: a
// cgroup file's content is made anew by the kernel for every read from
// offset 0, and opening one costs far more (a path walk through a deep
// cgroup tree, and the kernel's per-open state) than reading it; the
// kubelet reads every container's cgroup every ten seconds.
//
// A cgroup's files are closed when it is found removed (a read of an open
// file of a removed cgroup fails with ENODEV), when it goes unread for
// idleAfter, and by Forget. At most a quarter of the process's file limit
// is held; past that, files are opened for each read. Safe for concurrent
// use; the zero value holds nothing open.
type CgroupReader struct {
	mu     sync.Mutex
	groups map[string]*heldCgroup // by path as asked
	timer  *time.Timer            // the next sweep, while groups is not empty

	held    atomic.Int64 // files held open
	maxHeld int64
}

// heldCgroup is one cgroup's directories and the files held open in them.
type heldCgroup struct {
	used time.Time // guarded by CgroupReader.mu

	mu   sync.Mutex // held while reading and closing
	v2   bool
	dir  string // v2
	v1   v1Dirs
	fds  [numFiles]int // -1 when not open
	dead bool          // closed for good: read without holding
}

// cgroupFile names the files the CRI stats read, for a cgroup's table of
// open files.
type cgroupFile uint8

const (
	fileMemoryStat   cgroupFile = iota
	fileMemoryUsage             // memory.usage_in_bytes, memory.current
	fileMemoryLimit             // memory.limit_in_bytes, memory.max
	fileMemorySwap              // memory.swap.current (v2)
	fileUseHierarchy            // memory.use_hierarchy (v1, before 5.11)
	fileCPUUsage                // cpuacct.usage, cpu.stat
	filePids                    // pids.current
	fileProcs                   // cgroup.procs (v2 without pids)
	numFiles
)

// NewCgroupReader returns a reader that may hold up to a quarter of the
// process's file limit open (at most 65536 files).
func NewCgroupReader() *CgroupReader {
	r := &CgroupReader{}
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil {
		r.maxHeld = int64(min(lim.Cur/4, 1<<16))
	}
	return r
}

// Read reads what f asks of the cgroup at path, as ReadCgroup.
func (r *CgroupReader) Read(path string, f Fields) (Sample, error) {
	if f == AllFields {
		return readAllFields(path)
	}
	g, err := r.get(path)
	if err != nil {
		return Sample{}, fmt.Errorf("cgroup %s: %w", path, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	fs := newFileSet(r, g)
	defer fs.release()
	var s Sample
	if g.v2 {
		s, err = readV2Usage(g.dir, f, fs)
	} else {
		s, err = readV1Usage(g.v1, f, fs)
	}
	if errors.Is(err, ErrNoCgroup) {
		r.forget(path, g)
	}
	return s, err
}

// Forget closes the files of the cgroup at path, whose container exited.
func (r *CgroupReader) Forget(path string) {
	r.mu.Lock()
	g := r.groups[path]
	r.mu.Unlock()
	if g != nil {
		g.mu.Lock()
		r.forget(path, g)
		g.mu.Unlock()
	}
}

// Held is the number of files held open.
func (r *CgroupReader) Held() int { return int(r.held.Load()) }

// get returns path's entry, made if missing, marked used now.
func (r *CgroupReader) get(path string) (*heldCgroup, error) {
	now := time.Now()
	r.mu.Lock()
	g, ok := r.groups[path]
	if ok {
		g.used = now
	}
	r.mu.Unlock()
	if ok {
		return g, nil
	}
	g, err := newHeldCgroup(path)
	if err != nil {
		return nil, err
	}
	g.used = now
	if r.maxHeld == 0 {
		g.dead = true // nothing to hold: nothing to remember either
		return g, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.groups[path]; ok {
		old.used = now
		return old, nil
	}
	if r.groups == nil {
		r.groups = map[string]*heldCgroup{}
	}
	r.groups[path] = g
	if r.timer == nil {
		r.timer = time.AfterFunc(sweepEvery, r.sweep)
	}
	return g, nil
}

func newHeldCgroup(path string) (*heldCgroup, error) {
	path = filepath.Clean("/" + path)
	g := &heldCgroup{}
	for i := range g.fds {
		g.fds[i] = -1
	}
	if cgroups.IsCgroup2UnifiedMode() {
		g.v2, g.dir = true, filepath.Join(unifiedRoot, path)
		return g, nil
	}
	roots, err := v1Roots()
	if err != nil {
		return nil, err
	}
	if r := roots["cpuacct"]; r != "" {
		g.v1.cpuacct = filepath.Join(r, path)
	}
	if r := roots["memory"]; r != "" {
		g.v1.memory = filepath.Join(r, path)
	}
	if r := roots["pids"]; r != "" {
		g.v1.pids = filepath.Join(r, path)
	}
	return g, nil
}

// forget drops g, path's entry, and closes its files; g.mu is held.
func (r *CgroupReader) forget(path string, g *heldCgroup) {
	r.mu.Lock()
	if r.groups[path] == g {
		delete(r.groups, path)
	}
	r.mu.Unlock()
	r.closeLocked(g)
}

// closeLocked closes g's files for good; g.mu is held.
func (r *CgroupReader) closeLocked(g *heldCgroup) {
	g.dead = true
	for i, fd := range g.fds {
		if fd >= 0 {
			unix.Close(fd)
			r.held.Add(-1)
			g.fds[i] = -1
		}
	}
}

// sweep closes the files of cgroups unread for idleAfter, and comes back
// while any are held.
func (r *CgroupReader) sweep() {
	now := time.Now()
	var idle []*heldCgroup
	r.mu.Lock()
	for path, g := range r.groups {
		if now.Sub(g.used) > idleAfter {
			delete(r.groups, path)
			idle = append(idle, g)
		}
	}
	if len(r.groups) > 0 {
		r.timer.Reset(sweepEvery)
	} else {
		r.timer = nil
	}
	r.mu.Unlock()
	for _, g := range idle {
		g.mu.Lock()
		r.closeLocked(g)
		g.mu.Unlock()
	}
}

// fileSet reads one cgroup's files into a pooled buffer: through the files
// g holds when it has them (one pread), else with open, read and close and
// nothing else (os.ReadFile adds an fstat and os.Open a poller check: each
// a system call, and system calls are what a stats read is made of). A
// fileSet without a cgroup (g nil) holds nothing.
type fileSet struct {
	r    *CgroupReader
	g    *heldCgroup
	buf  []byte
	pool *[]byte
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 8<<10); return &b }}

func newFileSet(r *CgroupReader, g *heldCgroup) *fileSet {
	p := bufPool.Get().(*[]byte)
	return &fileSet{r: r, g: g, buf: *p, pool: p}
}

func (fs *fileSet) release() {
	*fs.pool = fs.buf[:cap(fs.buf)]
	bufPool.Put(fs.pool)
}

// read returns the content of file which, dir/name, valid until the next
// read. A file that is missing, or whose cgroup was removed, is
// ErrNoCgroup wrapping errNoFile.
func (fs *fileSet) read(which cgroupFile, dir, name string) ([]byte, error) {
	if fs.g != nil {
		if fd := fs.g.fds[which]; fd >= 0 {
			b, err := fs.pread(fd)
			if err != nil {
				return nil, readError(dir+"/"+name, err)
			}
			return b, nil
		}
	}
	path := dir + "/" + name
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	for err == unix.EINTR {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, readError(path, err)
	}
	if fs.g != nil && !fs.g.dead && fs.reserve() {
		fs.g.fds[which] = fd
	} else {
		defer unix.Close(fd)
	}
	b, err := fs.pread(fd)
	if err != nil {
		return nil, readError(path, err)
	}
	return b, nil
}

// reserve counts one more file held, if the limit allows.
func (fs *fileSet) reserve() bool {
	if fs.r.held.Add(1) > fs.r.maxHeld {
		fs.r.held.Add(-1)
		return false
	}
	return true
}

// pread reads fd from its start in one call: a cgroup file is generated
// whole, so a read that leaves room in the buffer has it all (and so does
// one of a regular file, as in the tests). One that fills it is made again
// with twice the room.
func (fs *fileSet) pread(fd int) ([]byte, error) {
	for {
		n, err := unix.Pread(fd, fs.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n < len(fs.buf) {
			return fs.buf[:n], nil
		}
		fs.buf = make([]byte, 2*len(fs.buf))
	}
}

// readUint reads which, a file of one number.
func (fs *fileSet) readUint(which cgroupFile, dir, name string) (uint64, error) {
	b, err := fs.read(which, dir, name)
	if err != nil {
		return 0, err
	}
	n, err := parseUint(b)
	if err != nil {
		return 0, fmt.Errorf("parse %s/%s: %w", dir, name, err)
	}
	return n, nil
}
