package specgen

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// setSecurity sets no_new_privs, the read-only root, masked and read-only
// paths, AppArmor and seccomp. It runs after setCapabilities: the default
// seccomp profile allows some syscalls only with some capabilities.
func (g *gen) setSecurity() error {
	p, l := g.spec.Process, g.spec.Linux
	p.NoNewPrivileges = g.sc.GetNoNewPrivs()
	g.spec.Root.Readonly = g.sc.GetReadonlyRootfs()
	if g.privileged {
		return nil // no masks, no AppArmor, no seccomp
	}
	var err error
	if l.MaskedPaths, err = pathList(scField+".masked_paths", g.sc.GetMaskedPaths(), defaultMaskedPaths); err != nil {
		return err
	}
	if l.ReadonlyPaths, err = pathList(scField+".readonly_paths", g.sc.GetReadonlyPaths(), defaultReadonlyPaths); err != nil {
		return err
	}
	if p.ApparmorProfile, err = apparmorProfile(g.sc.GetApparmor(), g.sc.GetApparmorProfile(), g.in.AppArmorEnabled); err != nil {
		return err
	}
	l.Seccomp, err = seccompProfile(g.sc.GetSeccomp(), g.sc.GetSeccompProfilePath(), scField,
		g.in.DefaultSeccompProfile, g.spec)
	return err
}

// pathList validates the paths kubelet gave, or returns the defaults when
// it gave none (kubelet sends the defaults itself for the Default
// procMount, and an empty list arrives as none at all).
func pathList(field string, given, defaults []string) ([]string, error) {
	if len(given) == 0 {
		return append([]string(nil), defaults...), nil
	}
	out := make([]string, 0, len(given))
	for i, p := range given {
		if !path.IsAbs(p) {
			return nil, invalidf(fmt.Sprintf("%s[%d]", field, i), "%q is not an absolute path", p)
		}
		out = append(out, path.Clean(p))
	}
	return out, nil
}

// apparmorProfile returns the profile to confine the process with. A
// Localhost profile needs AppArmor on the host: asking for one where it is
// off is an error, not a silent unconfined container. RuntimeDefault and
// Unconfined both mean no profile here (Berth ships no default profile).
func apparmorProfile(prof *runtime.SecurityProfile, legacy string, enabled bool) (string, error) {
	field := scField + ".apparmor"
	var name string
	switch {
	case prof != nil:
		switch prof.GetProfileType() {
		case runtime.SecurityProfile_RuntimeDefault, runtime.SecurityProfile_Unconfined:
			return "", nil
		case runtime.SecurityProfile_Localhost:
			name = strings.TrimPrefix(prof.GetLocalhostRef(), "localhost/")
		default:
			return "", invalidf(field, "unknown profile type %d", prof.GetProfileType())
		}
	case legacy == "", legacy == "runtime/default", legacy == "unconfined":
		return "", nil
	case strings.HasPrefix(legacy, "localhost/"):
		field = scField + ".apparmor_profile"
		name = strings.TrimPrefix(legacy, "localhost/")
	default:
		return "", invalidf(scField+".apparmor_profile", "unknown profile %q", legacy)
	}
	if name == "" {
		return "", invalidf(field, "localhost profile without a name")
	}
	if !enabled {
		return "", invalidf(field, "apparmor is not enabled on this host, cannot apply profile %q", name)
	}
	return name, nil
}

// seccompProfile turns a CRI seccomp request into the spec's filter.
// RuntimeDefault (also the legacy "runtime/default" and "docker/default")
// is defaultPath's profile or moby's default; Unconfined and an absent
// profile mean no filter; Localhost loads a file by its absolute path.
// spec's capabilities must be set already.
//
// A relative Localhost path is refused: the kubelet resolves a pod's
// localhostProfile against its own seccomp root (<root-dir>/seccomp) and
// sends the absolute path, and CRI-O and containerd read the path as given,
// with no root of their own, so there is nothing a relative one could
// rightly be relative to.
func seccompProfile(prof *runtime.SecurityProfile, legacy, base, defaultPath string, spec *specs.Spec) (*specs.LinuxSeccomp, error) {
	field := base + ".seccomp"
	var local string
	switch {
	case prof != nil:
		switch prof.GetProfileType() {
		case runtime.SecurityProfile_RuntimeDefault:
			return defaultSeccomp(defaultPath, spec)
		case runtime.SecurityProfile_Unconfined:
			return nil, nil
		case runtime.SecurityProfile_Localhost:
			field += ".localhost_ref"
			local = prof.GetLocalhostRef()
		default:
			return nil, invalidf(field, "unknown profile type %d", prof.GetProfileType())
		}
	case legacy == "" || legacy == "unconfined":
		return nil, nil
	case legacy == "runtime/default" || legacy == "docker/default":
		return defaultSeccomp(defaultPath, spec)
	case strings.HasPrefix(legacy, "localhost/"):
		field = base + ".seccomp_profile_path"
		local = strings.TrimPrefix(legacy, "localhost/")
	default:
		return nil, invalidf(base+".seccomp_profile_path", "unknown profile %q", legacy)
	}
	if local == "" {
		return nil, invalidf(field, "empty")
	}
	if !filepath.IsAbs(local) {
		return nil, invalidf(field, "%q is not an absolute path", local)
	}
	body, err := os.ReadFile(local)
	if err != nil {
		return nil, invalidf(field, "read seccomp profile: %v", err)
	}
	s, err := seccompFilters.load(string(body), spec)
	if err != nil {
		return nil, invalidf(field, "seccomp profile %s: %v", local, err)
	}
	return s, nil
}

func defaultSeccomp(file string, spec *specs.Spec) (*specs.LinuxSeccomp, error) {
	if file == "" {
		return seccompFilters.load(builtinProfile, spec)
	}
	body, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read the default seccomp profile: %w", err)
	}
	s, err := seccompFilters.load(string(body), spec)
	if err != nil {
		return nil, fmt.Errorf("default seccomp profile %s: %w", file, err)
	}
	return s, nil
}

// builtinProfile stands for moby's default profile in seccompFilters; no
// JSON profile is empty.
const builtinProfile = ""

// seccompFilters keeps the filters made from profiles: nearly every
// container asks for RuntimeDefault with the default capabilities, and
// turning the profile into a filter for them (a few hundred syscall rules,
// each checked against the capabilities and the architecture) would
// otherwise be done again for each one.
var seccompFilters = &filterCache{m: map[filterKey]*specs.LinuxSeccomp{}}

// filterCache holds filters by the profile's text and the bounding
// capabilities, the only part of the spec a profile's rules depend on. A
// profile file's text is read on every create, so an edited file takes
// effect at once. The filters are shared: nothing may modify one.
type filterCache struct {
	mu sync.Mutex
	m  map[filterKey]*specs.LinuxSeccomp
}

type filterKey struct{ profile, caps string }

// maxFilters bounds the cache: a node with many Localhost profiles gets
// them made anew once it holds this many.
const maxFilters = 64

func (c *filterCache) load(profile string, spec *specs.Spec) (*specs.LinuxSeccomp, error) {
	var caps []string
	if spec.Process != nil && spec.Process.Capabilities != nil {
		caps = slices.Clone(spec.Process.Capabilities.Bounding)
		slices.Sort(caps)
	}
	key := filterKey{profile, strings.Join(caps, ",")}
	c.mu.Lock()
	f, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return f, nil
	}
	var err error
	if profile == builtinProfile {
		f, err = seccomp.GetDefaultProfile(spec)
	} else {
		f, err = seccomp.LoadProfile(profile, spec)
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= maxFilters {
		clear(c.m)
	}
	c.m[key] = f
	c.mu.Unlock()
	return f, nil
}
