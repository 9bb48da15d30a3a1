package specgen

import (
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
)

const blockHostname = `{"defaultAction": "SCMP_ACT_ALLOW",
 "syscalls": [{"names": ["sethostname"], "action": "SCMP_ACT_ERRNO"}]}`

func TestSeccomp(t *testing.T) {
	dir := t.TempDir()
	local := filepath.Join(dir, "block.json")
	writeFile(t, local, blockHostname)
	writeFile(t, filepath.Join(dir, "broken.json"), "{nope")
	def := filepath.Join(dir, "default.json")
	writeFile(t, def, `{"defaultAction": "SCMP_ACT_LOG"}`)
	prof := func(t runtime.SecurityProfile_ProfileType, ref string) *runtime.SecurityProfile {
		return &runtime.SecurityProfile{ProfileType: t, LocalhostRef: ref}
	}
	for _, tc := range []struct {
		name       string
		prof       *runtime.SecurityProfile
		legacy     string
		defaultPrf string
		privileged bool
		want       specs.LinuxSeccompAction // "" = no filter
		errField   string
	}{
		{name: "nil is unconfined"},
		{name: "zero value is RuntimeDefault", prof: &runtime.SecurityProfile{}, want: specs.ActErrno},
		{name: "RuntimeDefault", prof: prof(runtime.SecurityProfile_RuntimeDefault, ""), want: specs.ActErrno},
		{name: "configured default", prof: prof(runtime.SecurityProfile_RuntimeDefault, ""), defaultPrf: def, want: specs.ActLog},
		{name: "Unconfined", prof: prof(runtime.SecurityProfile_Unconfined, "")},
		{name: "Localhost", prof: prof(runtime.SecurityProfile_Localhost, local), want: specs.ActAllow},
		// The kubelet sends absolute paths; a relative one has no root to
		// be relative to (CRI-O and containerd have none either).
		{name: "Localhost relative", prof: prof(runtime.SecurityProfile_Localhost, "block.json"), errField: scField + ".seccomp.localhost_ref: \"block.json\" is not an absolute path"},
		{name: "Localhost missing", prof: prof(runtime.SecurityProfile_Localhost, filepath.Join(dir, "none.json")), errField: scField + ".seccomp.localhost_ref"},
		{name: "Localhost broken", prof: prof(runtime.SecurityProfile_Localhost, filepath.Join(dir, "broken.json")), errField: scField + ".seccomp.localhost_ref"},
		{name: "Localhost empty", prof: prof(runtime.SecurityProfile_Localhost, ""), errField: scField + ".seccomp.localhost_ref"},
		{name: "legacy runtime/default", legacy: "runtime/default", want: specs.ActErrno},
		{name: "legacy docker/default", legacy: "docker/default", want: specs.ActErrno},
		{name: "legacy unconfined", legacy: "unconfined"},
		{name: "legacy localhost", legacy: "localhost/" + local, want: specs.ActAllow},
		{name: "legacy localhost relative", legacy: "localhost/block.json", errField: scField + ".seccomp_profile_path: \"block.json\" is not an absolute path"},
		{name: "legacy junk", legacy: "strict", errField: scField + ".seccomp_profile_path"},
		{name: "privileged ignores profile", prof: prof(runtime.SecurityProfile_Localhost, local), privileged: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.DefaultSeccompProfile = tc.defaultPrf
			s := sc(&in)
			s.Seccomp, s.SeccompProfilePath, s.Privileged = tc.prof, tc.legacy, tc.privileged
			in.Sandbox.SecurityContext = &runtime.LinuxSandboxSecurityContext{Privileged: tc.privileged}
			res, err := Generate(in)
			if tc.errField != "" {
				wantErr(t, err, errdefs.ErrInvalidArgument, tc.errField)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sec := res.Spec.Linux.Seccomp
			if tc.want == "" {
				if sec != nil {
					t.Fatalf("want no seccomp filter, got default action %s", sec.DefaultAction)
				}
				return
			}
			if sec == nil || sec.DefaultAction != tc.want {
				t.Fatalf("seccomp %+v, want default action %s", sec, tc.want)
			}
			if tc.want == specs.ActErrno && (len(sec.Syscalls) < 10 || len(sec.Architectures) == 0) {
				t.Fatalf("default profile has %d syscall rules and arches %v", len(sec.Syscalls), sec.Architectures)
			}
		})
	}
}

// The default profile allows some syscalls only to containers with the
// capability for them, so capabilities must be known when it is built.
func TestSeccompDefaultFollowsCapabilities(t *testing.T) {
	allows := func(sec *specs.LinuxSeccomp, name string) bool {
		for _, r := range sec.Syscalls {
			if r.Action == specs.ActAllow && contains(r.Names, name) {
				return true
			}
		}
		return false
	}
	in := baseInput(t)
	sc(&in).Seccomp = &runtime.SecurityProfile{}
	if allows(mustGenerate(t, in).Spec.Linux.Seccomp, "sethostname") {
		t.Fatal("sethostname allowed without CAP_SYS_ADMIN")
	}
	sc(&in).Capabilities = &runtime.Capability{AddCapabilities: []string{"SYS_ADMIN"}}
	if !allows(mustGenerate(t, in).Spec.Linux.Seccomp, "sethostname") {
		t.Fatal("sethostname denied with CAP_SYS_ADMIN")
	}
}

func TestAppArmor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prof    *runtime.SecurityProfile
		legacy  string
		enabled bool
		want    string
		errWant bool
	}{
		{name: "none"},
		{name: "runtime default", prof: &runtime.SecurityProfile{}},
		{name: "unconfined", prof: &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Unconfined}},
		{name: "localhost disabled", prof: &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Localhost, LocalhostRef: "p"}, errWant: true},
		{name: "legacy localhost disabled", legacy: "localhost/p", errWant: true},
		{name: "localhost enabled", prof: &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Localhost, LocalhostRef: "localhost/p"}, enabled: true, want: "p"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := apparmorProfile(tc.prof, tc.legacy, tc.enabled)
			if tc.errWant {
				wantErr(t, err, errdefs.ErrInvalidArgument, "apparmor is not enabled on this host")
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		masked, ro           []string
		privileged, readonly bool
		wantMasked, wantRO   []string
	}{
		{name: "defaults", wantMasked: defaultMaskedPaths, wantRO: defaultReadonlyPaths},
		{name: "given", masked: []string{"/bin/ls"}, ro: []string{"/tmp/"}, wantMasked: []string{"/bin/ls"}, wantRO: []string{"/tmp"}},
		{name: "privileged", masked: []string{"/bin/ls"}, privileged: true},
		{name: "readonly rootfs", readonly: true, wantMasked: defaultMaskedPaths, wantRO: defaultReadonlyPaths},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			s := sc(&in)
			s.MaskedPaths, s.ReadonlyPaths, s.Privileged, s.ReadonlyRootfs = tc.masked, tc.ro, tc.privileged, tc.readonly
			s.NoNewPrivs = true
			in.Sandbox.SecurityContext = &runtime.LinuxSandboxSecurityContext{Privileged: tc.privileged}
			res := mustGenerate(t, in)
			l := res.Spec.Linux
			if !reflect.DeepEqual(l.MaskedPaths, tc.wantMasked) || !reflect.DeepEqual(l.ReadonlyPaths, tc.wantRO) {
				t.Fatalf("masked %v readonly %v, want %v %v", l.MaskedPaths, l.ReadonlyPaths, tc.wantMasked, tc.wantRO)
			}
			if res.Spec.Root.Readonly != tc.readonly || !res.Spec.Process.NoNewPrivileges {
				t.Fatalf("root readonly %v, no_new_privs %v", res.Spec.Root.Readonly, res.Spec.Process.NoNewPrivileges)
			}
			sysMount := findMount(res.Spec, "/sys")
			if want := map[bool]string{true: "rw", false: "ro"}[tc.privileged]; !contains(sysMount.Options, want) {
				t.Fatalf("/sys options %v, want %s", sysMount.Options, want)
			}
		})
	}
	in := baseInput(t)
	sc(&in).MaskedPaths = []string{"relative"}
	_, err := Generate(in)
	wantErr(t, err, errdefs.ErrInvalidArgument, scField+".masked_paths[0]")
}

func TestAppArmorSwitch(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		content *string // nil: no such file (no AppArmor module)
		want    bool
	}{
		{"enabled", ptr("Y\n"), true},
		{"disabled", ptr("N\n"), false},
		{"empty", ptr(""), false},
		{"no apparmor module", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if tc.content != nil {
				writeFile(t, path, *tc.content)
			}
			if got := switchOn(path); got != tc.want {
				t.Fatalf("switchOn(%q) = %v, want %v", path, got, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
