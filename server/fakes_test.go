package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/checkpoint"
	"github.com/berth-dev/berth/namespaces"
	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/oci"
	"github.com/berth-dev/berth/sandbox"
	"github.com/berth-dev/berth/storage"
)

// The fakes behind the server's interfaces (deps.go) write every
// acquisition and every release, in order, into one journal shared by all
// of them, and fail where a test tells them to. Entries are "<op> <object>":
// "rootfs create c1", "rootfs remove c1".

// errInjected is the cause of every failure a test injects.
var errInjected = errors.New("injected fault")

// releases says which acquisitions each release undoes, the latest first:
// removing a rootfs unmounts it too, deleting a runtime container stops
// its process too.
var releases = map[string][]string{
	"record delete":     {"record create"},
	"pod record delete": {"pod record create"},
	"rootfs remove":     {"rootfs mount", "rootfs create"},
	"image unmount":     {"image mount"},
	"runtime delete":    {"runtime start", "runtime create", "runtime launch"},
	"runtime abort":     {"runtime launch"},
	"runtime stop":      {"runtime start"},
	"network teardown":  {"network setup"},
	"namespaces unpin":  {"namespaces pin"},
	"namespaces remove": {"namespaces pin"},
	"shm unmount":       {"shm mount"},
}

// consumes says which acquisition of the same object an acquisition takes
// over: the runtime's create uses the conmon launched for it, which is
// then given back with the container, in the container's place in the
// order.
var consumes = map[string]string{"runtime create": "runtime launch"}

// anyOrder are releases that may come at any point: a conmon launched but
// not let go has touched nothing, and may be killed before or after what
// was made after it.
var anyOrder = map[string]bool{"runtime abort": true}

// acquisitions are the ops that take something a release must give back.
var acquisitions = map[string]bool{
	"record create": true, "rootfs create": true, "rootfs mount": true, "image mount": true,
	"runtime launch": true, "runtime create": true, "runtime start": true, "network setup": true,
	"namespaces pin": true, "shm mount": true, "pod record create": true,
}

type journal struct {
	mu      sync.Mutex
	entries []string
	counts  map[string]int // calls of each op so far
	faults  map[string]int // op → the call of it (1-based, since reset) that fails
	fired   map[string]bool
}

func newJournal() *journal {
	return &journal{counts: map[string]int{}, faults: map[string]int{}, fired: map[string]bool{}}
}

// failAt makes the nth call of op from now on fail with errInjected.
func (j *journal) failAt(op string, nth int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.faults[op] = j.counts[op] + nth
}

// do is one call of op on obj: it fails if told to, and is journaled if
// not. The error names the op and the object, as the production
// subsystems' errors do.
func (j *journal) do(op, obj string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.counts[op]++
	if n, ok := j.faults[op]; ok && n == j.counts[op] {
		j.fired[op] = true
		return fmt.Errorf("%s %s: %w", op, obj, errInjected)
	}
	j.entries = append(j.entries, op+" "+obj)
	return nil
}

// reset forgets what a test's setup did, faults included.
func (j *journal) reset() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries, j.counts, j.faults, j.fired = nil, map[string]int{}, map[string]int{}, map[string]bool{}
}

func (j *journal) snapshot() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.entries)
}

func (j *journal) hasFired(op string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.fired[op]
}

// stops are the releases of a pod's stop, which leaves its stopped
// containers and its infra container (whose id is the pod's) for
// RemovePodSandbox: only processes must be gone before a stop.
var stops = map[string]bool{"runtime stop": true, "network teardown": true, "shm unmount": true}

// unbalanced lists what the journal does wrong: an acquisition never
// released, or a release made while something acquired later is still
// held. What blocks a stop is a later process still running (a pod's
// containers stop before its infra container, and both before its network
// goes); what blocks any other release is anything acquired later
// (containers go before their pod's namespaces, the pod's record goes
// last). Releasing what the journal never saw acquired (a container made
// by the test's setup) is fine, and so is releasing twice: removes are
// idempotent.
func (j *journal) unbalanced() []string {
	type held struct {
		seq     int
		op, obj string
	}
	var hs []held // still held, the oldest first
	var problems []string
	for seq, e := range j.snapshot() {
		op, obj := splitEntry(e)
		if acquisitions[op] {
			if taken, ok := consumes[op]; ok {
				hs = slices.DeleteFunc(hs, func(h held) bool { return h.op == taken && h.obj == obj })
			}
			hs = append(hs, held{seq, op, obj})
			continue
		}
		undoes := releases[op]
		if undoes == nil {
			continue
		}
		var kept []held
		oldest := -1 // seq of the oldest acquisition this gives back
		for _, h := range hs {
			if h.obj == obj && slices.Contains(undoes, h.op) {
				if oldest < 0 {
					oldest = h.seq
				}
				continue
			}
			kept = append(kept, h)
		}
		if oldest < 0 || anyOrder[op] {
			hs = kept
			continue // what setup made, or released already; or free to go at any point
		}
		for _, h := range kept {
			if h.seq > oldest && (h.op == "runtime start" || !stops[op]) {
				problems = append(problems, fmt.Sprintf("%q out of order: %q was acquired later and is still held", e, h.op+" "+h.obj))
				break
			}
		}
		hs = kept
	}
	for _, h := range hs {
		problems = append(problems, fmt.Sprintf("%q never released", h.op+" "+h.obj))
	}
	return problems
}

// splitEntry splits "rootfs create c1" into "rootfs create" and "c1".
func splitEntry(e string) (op, obj string) {
	i := strings.LastIndexByte(e, ' ')
	return e[:i], e[i+1:]
}

// assertBalanced fails t unless every acquisition in j was released, in
// reverse order.
func assertBalanced(t *testing.T, j *journal) {
	t.Helper()
	if p := j.unbalanced(); len(p) > 0 {
		t.Errorf("journal unbalanced: %s\njournal:\n  %s", strings.Join(p, "; "), strings.Join(j.snapshot(), "\n  "))
	}
}

// fakeImages holds images by reference; an image is mounted by id. Its
// filesystems' usage is fs.
type fakeImages struct {
	j      *journal
	images map[string]*storage.Image
	dir    string
	fs     storage.FsInfo
	// rootfs refuses the removal of an image a container's rootfs is
	// made from, as containers/storage does.
	rootfs *fakeRootfs
}

func (f *fakeImages) Image(_ context.Context, ref string) (*storage.Image, error) {
	if img, ok := f.images[ref]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
}

func (f *fakeImages) PullImage(_ context.Context, ref string, _ storage.Credentials) (storage.PullResult, error) {
	if err := f.j.do("image pull", ref); err != nil {
		return storage.PullResult{}, err
	}
	f.images[ref] = fakeImage(ref)
	return storage.PullResult{}, nil
}

// ListImages lists each image once, however many references it has; a
// filter keeps the image it names.
func (f *fakeImages) ListImages(ctx context.Context, filter string) ([]*storage.Image, error) {
	if filter != "" {
		img, err := f.Image(ctx, filter)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, nil
		}
		return []*storage.Image{img}, err
	}
	var out []*storage.Image
	for _, img := range f.images {
		if !slices.Contains(out, img) {
			out = append(out, img)
		}
	}
	return out, nil
}

// RemoveImage removes the reference; an image id removes every reference
// to the image.
func (f *fakeImages) RemoveImage(_ context.Context, ref string) error {
	if img, ok := f.images[ref]; ok && f.rootfs != nil && f.rootfs.uses(img.ID) {
		return fmt.Errorf("remove image %s: used by a container: %w", ref, errdefs.ErrFailedPrecondition)
	}
	for r, img := range f.images {
		if r == ref || img.ID == ref {
			delete(f.images, r)
		}
	}
	return nil
}

func (f *fakeImages) FsInfo(context.Context) (storage.FsInfo, error) { return f.fs, nil }

func (f *fakeImages) MountImage(id string) (string, error) {
	if err := f.j.do("image mount", id); err != nil {
		return "", err
	}
	mp := filepath.Join(f.dir, id)
	return mp, os.MkdirAll(mp, 0o755)
}

func (f *fakeImages) UnmountImage(id string) error { return f.j.do("image unmount", id) }

// fakeImage is an image with a config, as a pulled image has.
func fakeImage(ref string) *storage.Image {
	return &storage.Image{ID: "img-" + ref, RepoTags: []string{ref}, Config: &imgspecv1.Image{
		Config: imgspecv1.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}},
	}}
}

// fakeRootfs keeps each container's mount point and run dir under dir.
type fakeRootfs struct {
	j      *journal
	dir    string
	mu     sync.Mutex
	images map[string]string // id → the image it is made from
}

func (f *fakeRootfs) CreateRootfs(_ context.Context, id, _, imageID string, _ storage.Owner) error {
	if err := f.j.do("rootfs create", id); err != nil {
		return err
	}
	f.mu.Lock()
	if f.images == nil {
		f.images = map[string]string{}
	}
	f.images[id] = imageID
	f.mu.Unlock()
	return os.MkdirAll(filepath.Join(f.dir, id), 0o755)
}

// uses tells whether a rootfs is made from image id.
func (f *fakeRootfs) uses(imageID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, img := range f.images {
		if img == imageID {
			return true
		}
	}
	return false
}

func (f *fakeRootfs) MountRootfs(id string) (string, error) {
	if err := f.j.do("rootfs mount", id); err != nil {
		return "", err
	}
	mp := filepath.Join(f.dir, id, "merged")
	return mp, os.MkdirAll(mp, 0o755)
}

// RootfsRunDir makes the run dir; told to fail "spec write", it puts a
// directory where the runtime spec goes, so writing the spec fails for
// root as for anyone.
func (f *fakeRootfs) RootfsRunDir(id string) (string, error) {
	dir := filepath.Join(f.dir, id, "userdata")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if f.j.do("spec write", id) != nil {
		if err := os.MkdirAll(filepath.Join(dir, "config.json"), 0o755); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func (f *fakeRootfs) RemoveRootfs(id string) error {
	if err := f.j.do("rootfs remove", id); err != nil {
		return err
	}
	f.mu.Lock()
	delete(f.images, id)
	f.mu.Unlock()
	return os.RemoveAll(filepath.Join(f.dir, id))
}

func (f *fakeRootfs) ListRootfs() ([]storage.Rootfs, error) {
	ents, err := os.ReadDir(f.dir)
	if err != nil {
		return nil, err
	}
	var out []storage.Rootfs
	for _, e := range ents {
		out = append(out, storage.Rootfs{ID: e.Name()})
	}
	return out, nil
}

func (f *fakeRootfs) WritableLayerUsage(string) (uint64, uint64, error) { return 0, 0, nil }
func (f *fakeRootfs) LayersDir() string                                 { return f.dir }

// fakeNetwork attaches pods by id.
type fakeNetwork struct{ j *journal }

func (f *fakeNetwork) Status() error {
	if err := f.j.do("network status", "-"); err != nil {
		return err
	}
	return nil
}

func (f *fakeNetwork) Setup(_ context.Context, pod network.Pod) (*network.Result, error) {
	if err := f.j.do("network setup", pod.ID); err != nil {
		return nil, err
	}
	return &network.Result{IPs: []string{"10.88.0.2"}}, nil
}

func (f *fakeNetwork) Teardown(_ context.Context, pod network.Pod) error {
	return f.j.do("network teardown", pod.ID)
}

func (f *fakeNetwork) GC(context.Context, []network.Pod) error { return f.j.do("network gc", "-") }

// fakeNamespaces pins a pod's namespaces as plain files under dir (a pin
// is a file whose content is "pinned") and mounts nothing for its shm.
// Either can be told to fail; a pin whose namespace is gone, as after a
// reboot, is a test's os.Remove of the file.
type fakeNamespaces struct {
	j   *journal
	dir string
}

func (f *fakeNamespaces) Pin(_ context.Context, podID string, opts namespaces.Options) (*namespaces.Pinned, error) {
	if err := f.j.do("namespaces pin", podID); err != nil {
		return nil, err
	}
	p := &namespaces.Pinned{PodID: podID}
	for _, pin := range []struct {
		want bool
		kind string
		path *string
	}{{opts.NewNet, namespaces.KindNet, &p.Net}, {opts.NewIPC, namespaces.KindIPC, &p.IPC}, {opts.NewUTS, namespaces.KindUTS, &p.UTS}} {
		if !pin.want {
			continue
		}
		*pin.path = f.PinPath(pin.kind, podID)
		if err := os.MkdirAll(filepath.Dir(*pin.path), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(*pin.path, []byte("pinned"), 0o644); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (f *fakeNamespaces) Unpin(p *namespaces.Pinned) error {
	if err := f.j.do("namespaces unpin", p.PodID); err != nil {
		return err
	}
	for _, path := range []string{p.Net, p.IPC, p.UTS} {
		if path != "" {
			os.Remove(path)
		}
	}
	return nil
}

func (f *fakeNamespaces) Remove(podID string) error {
	if err := f.j.do("namespaces remove", podID); err != nil {
		return err
	}
	for _, kind := range []string{namespaces.KindNet, namespaces.KindIPC, namespaces.KindUTS} {
		os.Remove(f.PinPath(kind, podID))
	}
	return nil
}

func (f *fakeNamespaces) List() ([]string, error) {
	seen := map[string]bool{}
	for _, kind := range []string{namespaces.KindNet, namespaces.KindIPC, namespaces.KindUTS} {
		ents, _ := os.ReadDir(filepath.Join(f.dir, kind))
		for _, e := range ents {
			seen[e.Name()] = true
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

func (f *fakeNamespaces) PinPath(kind, podID string) string { return filepath.Join(f.dir, kind, podID) }

func (f *fakeNamespaces) IsPinned(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && string(b) == "pinned"
}

// The shm of a pod is <pod dir>/shm: the pod's id names it.
func (f *fakeNamespaces) MountShm(path string, _ int64) error {
	if err := f.j.do("shm mount", filepath.Base(filepath.Dir(path))); err != nil {
		return err
	}
	return os.MkdirAll(path, 0o755)
}

func (f *fakeNamespaces) UnmountShm(path string) error {
	return f.j.do("shm unmount", filepath.Base(filepath.Dir(path)))
}

// fakeRuntime keeps the state of each container it made, and what its
// monitor says: whether conmon runs, and the exit file it wrote. A
// container stopped through it has exited with code 0.
type fakeRuntime struct {
	j      *journal
	dir    string // persist dirs
	mu     sync.Mutex
	ctrs   map[string]string // id → "created", "running" or "stopped"
	exits  map[string]int32  // id → the code in its exit file
	conmon map[string]bool   // id → its conmon runs
}

// monitor sets what container id's conmon says: whether it runs, and the
// exit code in its exit file (nil: none).
func (f *fakeRuntime) monitor(id string, alive bool, exit *int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conmon[id] = alive
	delete(f.exits, id)
	if exit != nil {
		f.exits[id] = *exit
	}
}

func (f *fakeRuntime) state(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ctrs[id]
}

func (f *fakeRuntime) set(id, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if state == "" {
		delete(f.ctrs, id)
		delete(f.exits, id)
		delete(f.conmon, id)
		return
	}
	f.ctrs[id] = state
}

func (f *fakeRuntime) Name() string { return "crun" }

func (f *fakeRuntime) PersistDir(c *oci.Container) string { return filepath.Join(f.dir, c.ID) }

// LaunchContainer makes the persist dir; told to fail "spec write", it puts
// a directory where the runtime spec goes, so writing the spec fails for
// root as for anyone.
func (f *fakeRuntime) LaunchContainer(_ context.Context, c *oci.Container) (oci.Launched, error) {
	if err := f.j.do("runtime launch", c.ID); err != nil {
		return nil, err
	}
	dir := f.PersistDir(c)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if f.j.do("spec write", c.ID) != nil {
		if err := os.MkdirAll(filepath.Join(dir, "config.json"), 0o755); err != nil {
			return nil, err
		}
	}
	return &fakeLaunch{f: f, c: c}, nil
}

type fakeLaunch struct {
	f    *fakeRuntime
	c    *oci.Container
	used bool
}

// Create undoes its own failure, as the real one does.
func (l *fakeLaunch) Create(ctx context.Context) (int, error) {
	l.used = true
	pid, err := l.f.CreateContainer(ctx, l.c)
	if err != nil {
		_ = l.f.j.do("runtime abort", l.c.ID)
	}
	return pid, err
}

func (l *fakeLaunch) Abort(context.Context) error {
	if l.used {
		return nil
	}
	l.used = true
	if err := l.f.j.do("runtime abort", l.c.ID); err != nil {
		return err
	}
	return os.RemoveAll(l.f.PersistDir(l.c))
}

func (f *fakeRuntime) CreateContainer(_ context.Context, c *oci.Container) (int, error) {
	if err := f.j.do("runtime create", c.ID); err != nil {
		return 0, err
	}
	f.set(c.ID, "created")
	f.mu.Lock()
	f.conmon[c.ID] = true
	f.mu.Unlock()
	return 4242, nil
}

func (f *fakeRuntime) StartContainer(_ context.Context, c *oci.Container) error {
	if err := f.j.do("runtime start", c.ID); err != nil {
		return err
	}
	f.set(c.ID, "running")
	return nil
}

func (f *fakeRuntime) StopContainer(_ context.Context, c *oci.Container, _ time.Duration, _ syscall.Signal) error {
	if err := f.j.do("runtime stop", c.ID); err != nil {
		return err
	}
	if f.state(c.ID) != "" {
		f.set(c.ID, "stopped")
		f.mu.Lock()
		f.exits[c.ID] = 0
		f.mu.Unlock()
	}
	return nil
}

func (f *fakeRuntime) DeleteContainer(_ context.Context, c *oci.Container) error {
	if err := f.j.do("runtime delete", c.ID); err != nil {
		return err
	}
	f.set(c.ID, "")
	return nil
}

func (f *fakeRuntime) UpdateResources(context.Context, *oci.Container, *specs.LinuxResources) error {
	return nil
}

func (f *fakeRuntime) ReopenLog(context.Context, *oci.Container) error { return nil }

func (f *fakeRuntime) State(_ context.Context, c *oci.Container) (*specs.State, error) {
	st := f.state(c.ID)
	if st == "" {
		return nil, fmt.Errorf("state of container %s: %w", c.ID, errdefs.ErrNotFound)
	}
	return &specs.State{ID: c.ID, Status: specs.ContainerState(st)}, nil
}

func (f *fakeRuntime) Exit(c *oci.Container) (oci.ExitStatus, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	code, ok := f.exits[c.ID]
	if !ok {
		return oci.ExitStatus{}, false, nil
	}
	return oci.ExitStatus{Code: code, Finished: time.Now()}, true, nil
}

func (f *fakeRuntime) InitPid(c *oci.Container) (int, error) {
	if f.state(c.ID) == "" {
		return 0, fmt.Errorf("init pid of container %s: %w", c.ID, errdefs.ErrNotFound)
	}
	return 4242, nil
}

func (f *fakeRuntime) InitAlive(c *oci.Container) bool { return f.state(c.ID) == "running" }
func (f *fakeRuntime) IsConmonAlive(c *oci.Container) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conmon[c.ID]
}

func (f *fakeRuntime) ExecSync(context.Context, *oci.Container, []string, time.Duration) (*oci.ExecResult, error) {
	return nil, fmt.Errorf("exec in the fake runtime: %w", errdefs.ErrNotImplemented)
}

func (f *fakeRuntime) ExecStream(context.Context, *oci.Container, []string, oci.Streams) (int32, error) {
	return 0, fmt.Errorf("exec in the fake runtime: %w", errdefs.ErrNotImplemented)
}

func (f *fakeRuntime) Attach(context.Context, *oci.Container, oci.Streams) error {
	return fmt.Errorf("attach in the fake runtime: %w", errdefs.ErrNotImplemented)
}

// fakeRecords keeps pod or container records in a checkpoint dir, as
// production does, and journals them: the first save of a container's is
// "record create", a later one "record save <phase>", the deletion "record
// delete"; a pod's are "pod record create" and so on.
type fakeRecords struct {
	checkpoint.Dir
	j    *journal
	kind string // "" for containers' records, "pod " for pods'
}

func (r fakeRecords) Save(id string, v any) error {
	op := r.kind + "record create"
	if _, err := os.Stat(filepath.Join(string(r.Dir), id+".json")); err == nil {
		op = r.kind + "record save " + string(recordPhase(v))
	}
	if err := r.j.do(op, id); err != nil {
		return err
	}
	return r.Dir.Save(id, v)
}

// SaveUnsynced is Save: the journal does not tell a synced save from
// another (the embedded checkpoint.Dir's would bypass the journal).
func (r fakeRecords) SaveUnsynced(id string, v any) error { return r.Save(id, v) }

func (r fakeRecords) Delete(id string) error {
	if err := r.j.do(r.kind+"record delete", id); err != nil {
		return err
	}
	return r.Dir.Delete(id)
}

func recordPhase(v any) string {
	switch r := v.(type) {
	case container.Record:
		return string(r.Phase)
	case *container.Record:
		return string(r.Phase)
	case sandbox.Record:
		return string(r.Phase)
	case *sandbox.Record:
		return string(r.Phase)
	}
	return "?"
}

// fakes are the fakes of one server.
type fakes struct {
	j       *journal
	images  *fakeImages
	rootfs  *fakeRootfs
	network *fakeNetwork
	ns      *fakeNamespaces
	runtime *fakeRuntime
}

// fakeServer is unitServer with every subsystem a fake and the records
// journaled. It knows the images "busybox", "data" and the pause
// image.
func fakeServer(t *testing.T) (*Server, *fakes) {
	t.Helper()
	s := unitServer(t)
	j := newJournal()
	f := &fakes{
		j:       j,
		images:  &fakeImages{j: j, images: map[string]*storage.Image{}, dir: t.TempDir()},
		rootfs:  &fakeRootfs{j: j, dir: t.TempDir()},
		network: &fakeNetwork{j: j},
		ns:      &fakeNamespaces{j: j, dir: t.TempDir()},
		runtime: &fakeRuntime{j: j, dir: t.TempDir(), ctrs: map[string]string{}, exits: map[string]int32{}, conmon: map[string]bool{}},
	}
	f.images.rootfs = f.rootfs
	s.config.Image.PauseImage = "pause"
	s.config.Runtime.DropInfra = true
	for _, ref := range []string{"busybox", "data", "pause"} {
		f.images.images[ref] = fakeImage(ref)
	}
	f.install(s)
	return s, f
}

// install makes f s's subsystems and journals s's records.
func (f *fakes) install(s *Server) {
	s.images, s.rootfs, s.network, s.ns = f.images, f.rootfs, f.network, f.ns
	s.podRecords = fakeRecords{Dir: s.sandboxRecords(), j: f.j, kind: "pod "}
	s.runtimes = map[string]OCIRuntime{"crun": f.runtime}
	s.ctrHooks = container.Hooks{Records: fakeRecords{Dir: s.containerRecords(), j: f.j}}
}

// restart is Berth started again after old stopped or crashed: a new
// server on old's config and state, with the node as it is (f's storage,
// runtime, pins and network). It has not recovered yet.
func restart(t *testing.T, old *Server, f *fakes) *Server {
	t.Helper()
	s := unitServer(t)
	s.config = old.config
	f.install(s)
	return s
}

// The balance check itself: what it must accept and what it must flag.
func TestJournalBalance(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []string
		ok      bool
	}{
		{"nothing", nil, true},
		{"reverse order", []string{"rootfs create a", "rootfs mount a", "image mount i", "image unmount i", "rootfs remove a"}, true},
		{"release of what setup made", []string{"runtime stop x", "runtime delete x"}, true},
		{"released twice", []string{"runtime create a", "runtime delete a", "runtime delete a"}, true},
		{"processes stop before the pod's infra", []string{"runtime create p", "runtime start p", "runtime create a", "runtime start a",
			"runtime stop a", "runtime stop p", "runtime delete a", "runtime delete p"}, true},
		{"a pod's network goes while its stopped container stays", []string{"namespaces pin p", "network setup p", "runtime create a", "runtime start a",
			"runtime stop a", "network teardown p", "runtime delete a", "namespaces remove p"}, true},
		{"never released", []string{"rootfs create a", "rootfs mount a"}, false},
		{"network torn down under a running container", []string{"network setup p", "runtime create a", "runtime start a",
			"network teardown p", "runtime delete a"}, false},
		{"namespaces removed before the pod's container", []string{"namespaces pin p", "runtime create a",
			"namespaces remove p", "runtime delete a"}, false},
		{"released out of order", []string{"rootfs create a", "image mount i", "rootfs remove a", "image unmount i"}, false},
		{"infra stopped before its container", []string{"runtime create p", "runtime start p", "runtime create a", "runtime start a",
			"runtime stop p", "runtime stop a", "runtime delete a", "runtime delete p"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJournal()
			for _, e := range tc.entries {
				op, obj := splitEntry(e)
				if err := j.do(op, obj); err != nil {
					t.Fatal(err)
				}
			}
			if p := j.unbalanced(); (len(p) == 0) != tc.ok {
				t.Errorf("unbalanced = %q, want balanced %v", p, tc.ok)
			}
		})
	}
}

// waitRemovals waits until the background removals of s are done, or have
// given up.
func waitRemovals(s *Server) { s.removals.wg.Wait() }
