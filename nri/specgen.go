package nri

import (
	"fmt"
	"strings"

	"github.com/containerd/nri/pkg/api"
	nrigen "github.com/containerd/nri/pkg/runtime-tools/generate"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/errdefs"
)

// AdjustOptions carries the facts about the node that decide how much of an
// adjustment can be honoured.
type AdjustOptions struct {
	// Hugetlb tells whether the host has the hugetlb controller; without it hugepage limits are dropped (as containerd does).
	Hugetlb bool
}

// Adjust applies adj to spec in place. A nil adj changes nothing. Errors name
// what could not be applied; the generator is not transactional, so after an
// error spec may be partly adjusted and the container must not be created
// from it.
func Adjust(spec *specs.Spec, adj *api.ContainerAdjustment, opts AdjustOptions) error {
	if adj == nil {
		return nil
	}
	if spec == nil {
		return fmt.Errorf("apply NRI adjustment: no OCI spec to adjust: %w", errdefs.ErrInvalidArgument)
	}

	sa := newSpecAdapter(spec)
	sa.prepare(adj)

	g := nrigen.SpecGenerator(sa,
		nrigen.WithResourceChecker(func(r *specs.LinuxResources) error {
			// The OCI runtime fails a create that limits hugepages on a host
			// without the hugetlb controller; dropping the limit keeps the
			// container startable, the trade containerd makes too.
			if r != nil && !opts.Hugetlb {
				r.HugepageLimits = nil
			}
			return nil
		}),
		nrigen.WithRdtResolver(func(class string) (*specs.LinuxIntelRdt, error) {
			// The class names a resctrl group the runtime joins; Berth keeps
			// no RDT configuration of its own to translate it through.
			return &specs.LinuxIntelRdt{ClosID: class}, nil
		}),
		nrigen.WithBlockIOResolver(func(class string) (*specs.LinuxBlockIO, error) {
			// Silently ignoring a class would leave the plugin believing its
			// I/O policy is in force. The generator clears block I/O itself
			// for an empty class and never asks us to resolve one.
			return nil, fmt.Errorf("blockio class %q: blockio classes are not configured on this node: %w", class, errdefs.ErrFailedPrecondition)
		}),
		nrigen.WithCDIDeviceInjector(func(_ *specs.Spec, devices []string) error {
			return fmt.Errorf("CDI devices %v requested by an NRI plugin: CDI is not enabled: %w", devices, errdefs.ErrNotImplemented)
		}),
	)
	if err := g.Adjust(adj); err != nil {
		return fmt.Errorf("apply NRI adjustment: %w", err)
	}
	if len(adj.GetRlimits()) > 0 {
		// The generator appends a plugin's rlimit even when the spec already
		// has one of that type, and the runtime spec requires runtimes to
		// reject duplicate types; the plugin's (later) entry is the one meant.
		dedupeRlimits(spec.Process)
	}
	return nil
}

// dedupeRlimits keeps one entry per type: the last one given, in the place
// of the first, so a replaced limit does not move.
func dedupeRlimits(p *specs.Process) {
	if p == nil {
		return
	}
	at := make(map[string]int, len(p.Rlimits))
	kept := p.Rlimits[:0]
	for _, rl := range p.Rlimits {
		if i, seen := at[rl.Type]; seen {
			kept[i] = rl
			continue
		}
		at[rl.Type] = len(kept)
		kept = append(kept, rl)
	}
	p.Rlimits = kept
}

// specAdapter is the nrigen.UnderlyingGenerator over Berth's own spec:
// runtime-tools' generator, which nri was written against, cannot be built
// with the runtime-spec Berth uses.
type specAdapter struct {
	spec *specs.Spec
}

var _ nrigen.UnderlyingGenerator = (*specAdapter)(nil)

// newSpecAdapter allocates a missing spec up front: nrigen.SpecGenerator
// reads Spec() once, and a spec created lazily later would be a different
// object from the one the generator writes to directly.
func newSpecAdapter(spec *specs.Spec) *specAdapter {
	if spec == nil {
		spec = &specs.Spec{}
	}
	return &specAdapter{spec: spec}
}

// prepare creates the parts of the spec that the generator writes through
// without creating them first, so a sparse spec gets an error-free
// adjustment instead of a nil dereference.
func (a *specAdapter) prepare(adj *api.ContainerAdjustment) {
	if len(adj.GetRlimits()) > 0 {
		a.initProcess()
	}
	if adj.GetLinux().GetSeccompPolicy() != nil {
		a.initLinux()
	}
	for _, m := range adj.GetMounts() {
		for _, o := range m.GetOptions() {
			if o == "rslave" {
				a.initLinux()
			}
		}
	}
}

func (a *specAdapter) Spec() *specs.Spec { return a.spec }

func (a *specAdapter) initProcess() {
	if a.spec.Process == nil {
		a.spec.Process = &specs.Process{}
	}
}

func (a *specAdapter) initLinux() {
	if a.spec.Linux == nil {
		a.spec.Linux = &specs.Linux{}
	}
}

func (a *specAdapter) initResources() {
	a.initLinux()
	if a.spec.Linux.Resources == nil {
		a.spec.Linux.Resources = &specs.LinuxResources{}
	}
}

func (a *specAdapter) initCPU() {
	a.initResources()
	if a.spec.Linux.Resources.CPU == nil {
		a.spec.Linux.Resources.CPU = &specs.LinuxCPU{}
	}
}

func (a *specAdapter) initMemory() {
	a.initResources()
	if a.spec.Linux.Resources.Memory == nil {
		a.spec.Linux.Resources.Memory = &specs.LinuxMemory{}
	}
}

func (a *specAdapter) initHooks() {
	if a.spec.Hooks == nil {
		a.spec.Hooks = &specs.Hooks{}
	}
}

func (a *specAdapter) AddAnnotation(key, value string) {
	if a.spec.Annotations == nil {
		a.spec.Annotations = map[string]string{}
	}
	a.spec.Annotations[key] = value
}

func (a *specAdapter) RemoveAnnotation(key string) {
	delete(a.spec.Annotations, key)
}

// AddDevice replaces the device at the same path: two nodes at one path
// cannot both be created.
func (a *specAdapter) AddDevice(device specs.LinuxDevice) {
	a.initLinux()
	for i, d := range a.spec.Linux.Devices {
		if d.Path == device.Path {
			a.spec.Linux.Devices[i] = device
			return
		}
	}
	a.spec.Linux.Devices = append(a.spec.Linux.Devices, device)
}

func (a *specAdapter) RemoveDevice(path string) {
	if a.spec.Linux == nil {
		return
	}
	for i, d := range a.spec.Linux.Devices {
		if d.Path == path {
			a.spec.Linux.Devices = append(a.spec.Linux.Devices[:i], a.spec.Linux.Devices[i+1:]...)
			return
		}
	}
}

// namespaceType maps the names NRI plugins use (runtime-tools' vocabulary,
// which predates the time namespace) to the spec's types.
func namespaceType(ns string) (specs.LinuxNamespaceType, error) {
	switch ns {
	case "network":
		return specs.NetworkNamespace, nil
	case "pid":
		return specs.PIDNamespace, nil
	case "mount":
		return specs.MountNamespace, nil
	case "ipc":
		return specs.IPCNamespace, nil
	case "uts":
		return specs.UTSNamespace, nil
	case "user":
		return specs.UserNamespace, nil
	case "cgroup":
		return specs.CgroupNamespace, nil
	case "time":
		return specs.TimeNamespace, nil
	}
	return "", fmt.Errorf("linux namespace %q: not one of network, pid, mount, ipc, uts, user, cgroup, time: %w", ns, errdefs.ErrInvalidArgument)
}

// AddOrReplaceLinuxNamespace keeps one entry per type because the runtime
// spec forbids duplicates.
func (a *specAdapter) AddOrReplaceLinuxNamespace(ns, path string) error {
	typ, err := namespaceType(ns)
	if err != nil {
		return err
	}
	a.initLinux()
	want := specs.LinuxNamespace{Type: typ, Path: path}
	for i, n := range a.spec.Linux.Namespaces {
		if n.Type == typ {
			a.spec.Linux.Namespaces[i] = want
			return nil
		}
	}
	a.spec.Linux.Namespaces = append(a.spec.Linux.Namespaces, want)
	return nil
}

func (a *specAdapter) RemoveLinuxNamespace(ns string) error {
	typ, err := namespaceType(ns)
	if err != nil {
		return err
	}
	if a.spec.Linux == nil {
		return nil
	}
	for i, n := range a.spec.Linux.Namespaces {
		if n.Type == typ {
			a.spec.Linux.Namespaces = append(a.spec.Linux.Namespaces[:i], a.spec.Linux.Namespaces[i+1:]...)
			return nil
		}
	}
	return nil
}

func (a *specAdapter) AddPreStartHook(hook specs.Hook) {
	a.initHooks()
	a.spec.Hooks.Prestart = append(a.spec.Hooks.Prestart, hook) //nolint:staticcheck // deprecated in the spec, but plugins still send them and runtimes still run them
}

func (a *specAdapter) AddPostStartHook(hook specs.Hook) {
	a.initHooks()
	a.spec.Hooks.Poststart = append(a.spec.Hooks.Poststart, hook)
}

func (a *specAdapter) AddPostStopHook(hook specs.Hook) {
	a.initHooks()
	a.spec.Hooks.Poststop = append(a.spec.Hooks.Poststop, hook)
}

// AddProcessEnv replaces NAME= in place: a second entry would leave which
// value the process sees to the runtime.
func (a *specAdapter) AddProcessEnv(name, value string) {
	a.initProcess()
	prefix := name + "="
	for i, e := range a.spec.Process.Env {
		if strings.HasPrefix(e, prefix) {
			a.spec.Process.Env[i] = prefix + value
			return
		}
	}
	a.spec.Process.Env = append(a.spec.Process.Env, prefix+value)
}

// ClearProcessEnv leaves an empty, not nil, slice: the generator refills it
// right after, and a spec without a process must not grow one.
func (a *specAdapter) ClearProcessEnv() {
	if a.spec.Process == nil {
		return
	}
	a.spec.Process.Env = []string{}
}

func (a *specAdapter) SetProcessArgs(args []string) {
	a.initProcess()
	a.spec.Process.Args = args
}

func (a *specAdapter) SetProcessOOMScoreAdj(adj int) {
	a.initProcess()
	a.spec.Process.OOMScoreAdj = &adj
}

func (a *specAdapter) AddMount(mnt specs.Mount) {
	a.spec.Mounts = append(a.spec.Mounts, mnt)
}

func (a *specAdapter) RemoveMount(dest string) {
	for i, m := range a.spec.Mounts {
		if m.Destination == dest {
			a.spec.Mounts = append(a.spec.Mounts[:i], a.spec.Mounts[i+1:]...)
			return
		}
	}
}

func (a *specAdapter) ClearMounts() {
	a.spec.Mounts = []specs.Mount{}
}

func (a *specAdapter) Mounts() []specs.Mount {
	return a.spec.Mounts
}

func (a *specAdapter) AddLinuxSysctl(key, value string) {
	a.initLinux()
	if a.spec.Linux.Sysctl == nil {
		a.spec.Linux.Sysctl = map[string]string{}
	}
	a.spec.Linux.Sysctl[key] = value
}

func (a *specAdapter) RemoveLinuxSysctl(key string) {
	if a.spec.Linux == nil {
		return
	}
	delete(a.spec.Linux.Sysctl, key)
}

func (a *specAdapter) SetLinuxCgroupsPath(path string) {
	a.initLinux()
	a.spec.Linux.CgroupsPath = path
}

func (a *specAdapter) SetLinuxRootPropagation(rp string) error {
	switch rp {
	case "", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable":
	default:
		return fmt.Errorf("rootfs propagation %q: not empty or one of (r)private, (r)slave, (r)shared, (r)unbindable: %w", rp, errdefs.ErrInvalidArgument)
	}
	a.initLinux()
	a.spec.Linux.RootfsPropagation = rp
	return nil
}

func (a *specAdapter) AddLinuxResourcesDevice(allow bool, devType string, major, minor *int64, access string) {
	a.initResources()
	a.spec.Linux.Resources.Devices = append(a.spec.Linux.Resources.Devices, specs.LinuxDeviceCgroup{
		Allow:  allow,
		Type:   devType,
		Major:  major,
		Minor:  minor,
		Access: access,
	})
}

// AddLinuxResourcesHugepageLimit keeps one limit per page size: a cgroup has
// one hugetlb.<size>.limit_in_bytes file per size.
func (a *specAdapter) AddLinuxResourcesHugepageLimit(pageSize string, limit uint64) {
	a.initResources()
	r := a.spec.Linux.Resources
	for i, h := range r.HugepageLimits {
		if h.Pagesize == pageSize {
			r.HugepageLimits[i].Limit = limit
			return
		}
	}
	r.HugepageLimits = append(r.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: pageSize, Limit: limit})
}

func (a *specAdapter) AddLinuxResourcesUnified(key, val string) {
	a.initResources()
	if a.spec.Linux.Resources.Unified == nil {
		a.spec.Linux.Resources.Unified = map[string]string{}
	}
	a.spec.Linux.Resources.Unified[key] = val
}

func (a *specAdapter) SetLinuxResourcesCPUCpus(cpus string) {
	a.initCPU()
	a.spec.Linux.Resources.CPU.Cpus = cpus
}

func (a *specAdapter) SetLinuxResourcesCPUMems(mems string) {
	a.initCPU()
	a.spec.Linux.Resources.CPU.Mems = mems
}

func (a *specAdapter) SetLinuxResourcesCPUPeriod(period uint64) {
	a.initCPU()
	a.spec.Linux.Resources.CPU.Period = &period
}

func (a *specAdapter) SetLinuxResourcesCPUQuota(quota int64) {
	a.initCPU()
	a.spec.Linux.Resources.CPU.Quota = &quota
}

func (a *specAdapter) SetLinuxResourcesCPURealtimePeriod(period uint64) {
	a.initCPU()
	a.spec.Linux.Resources.CPU.RealtimePeriod = &period
}

func (a *specAdapter) SetLinuxResourcesCPURealtimeRuntime(time int64) {
	a.initCPU()
	a.spec.Linux.Resources.CPU.RealtimeRuntime = &time
}

func (a *specAdapter) SetLinuxResourcesCPUShares(shares uint64) {
	a.initCPU()
	a.spec.Linux.Resources.CPU.Shares = &shares
}

func (a *specAdapter) SetLinuxResourcesMemoryLimit(limit int64) {
	a.initMemory()
	a.spec.Linux.Resources.Memory.Limit = &limit
}

func (a *specAdapter) SetLinuxResourcesMemorySwap(swap int64) {
	a.initMemory()
	a.spec.Linux.Resources.Memory.Swap = &swap
}
