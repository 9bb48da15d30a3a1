package specgen

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
)

func TestDefaultAndPodMounts(t *testing.T) {
	in := baseInput(t)
	pod := t.TempDir()
	in.Sandbox.ResolvPath, in.Sandbox.HostsPath, in.Sandbox.HostnamePath = pod+"/resolv.conf", pod+"/hosts", pod+"/hostname"
	in.Sandbox.ShmPath = pod + "/shm"
	hostsOverride := t.TempDir() + "/my-hosts"
	writeFile(t, hostsOverride, "127.0.0.1 me\n")
	term := t.TempDir() + "/termination-log"
	writeFile(t, term, "")
	in.Config.Mounts = []*runtime.Mount{
		{ContainerPath: "/etc/hosts", HostPath: hostsOverride},
		{ContainerPath: "/dev/termination-log", HostPath: term},
	}
	res := mustGenerate(t, in)
	var dests []string
	for _, m := range res.Spec.Mounts {
		dests = append(dests, m.Destination)
	}
	want := []string{"/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/dev/shm",
		"/etc/resolv.conf", "/etc/hostname", "/etc/hosts", "/dev/termination-log"}
	if !reflect.DeepEqual(dests, want) {
		t.Fatalf("mount order\n got %v\nwant %v", dests, want)
	}
	if m := findMount(res.Spec, "/etc/hosts"); m.Source != hostsOverride {
		t.Fatalf("/etc/hosts from %s, want the CRI mount", m.Source)
	}
	if m := findMount(res.Spec, "/dev/shm"); m.Source != pod+"/shm" || m.Type != "bind" {
		t.Fatalf("/dev/shm %+v", m)
	}
	if m := findMount(res.Spec, "/sys/fs/cgroup"); m.Type != "cgroup" || !contains(m.Options, "ro") {
		t.Fatalf("/sys/fs/cgroup %+v", m)
	}
	// The targets exist in the rootfs, except below /dev (a tmpfs).
	for _, p := range []string{"etc/resolv.conf", "etc/hosts", "etc/hostname", "dev/mqueue"} {
		if _, err := os.Lstat(filepath.Join(in.Rootfs, p)); err != nil && p != "dev/mqueue" {
			t.Errorf("mount target %s: %v", p, err)
		} else if err == nil && p == "dev/mqueue" {
			t.Errorf("created %s in the rootfs below the /dev tmpfs", p)
		}
	}
	if len(res.Mounts) != 2 || res.Mounts[0].HostPath != hostsOverride {
		t.Fatalf("reported mounts %v", res.Mounts)
	}
}

func TestCRIMounts(t *testing.T) {
	src := t.TempDir()
	mountinfo := filepath.Join(t.TempDir(), "mountinfo")
	shared, slave, private := filepath.Join(src, "shared"), filepath.Join(src, "slave"), filepath.Join(src, "private")
	for _, d := range []string{shared, slave, private} {
		os.MkdirAll(d, 0o755)
	}
	writeFile(t, mountinfo, fmt.Sprintf(`22 1 8:1 / / rw - ext4 /dev/sda rw
30 22 0:40 / %s rw shared:5 - tmpfs tmpfs rw
31 22 0:41 / %s rw master:5 - tmpfs tmpfs rw
32 22 0:42 / %s rw - tmpfs tmpfs rw
`, shared, slave, private))
	missing := filepath.Join(src, "made", "by", "berth")
	prop := func(p runtime.MountPropagation, host string) *runtime.Mount {
		return &runtime.Mount{ContainerPath: "/data", HostPath: host, Propagation: p}
	}
	for _, tc := range []struct {
		name      string
		m         *runtime.Mount
		rro       bool
		wantOpts  []string
		wantRootP string
		errField  string
		errSentry error
	}{
		{name: "private rw", m: prop(runtime.MountPropagation_PROPAGATION_PRIVATE, private), wantOpts: []string{"rbind", "rprivate", "rw"}},
		{name: "readonly", m: &runtime.Mount{ContainerPath: "/data", HostPath: private, Readonly: true, SelinuxRelabel: true}, wantOpts: []string{"rbind", "rprivate", "ro"}},
		{name: "rslave on shared", m: prop(runtime.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, shared), wantOpts: []string{"rbind", "rslave", "rw"}, wantRootP: "rslave"},
		{name: "rslave on slave", m: prop(runtime.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, slave+"/sub"), wantOpts: []string{"rbind", "rslave", "rw"}, wantRootP: "rslave"},
		{name: "rshared on shared", m: prop(runtime.MountPropagation_PROPAGATION_BIDIRECTIONAL, shared), wantOpts: []string{"rbind", "rshared", "rw"}, wantRootP: "rshared"},
		{name: "rshared on slave", m: prop(runtime.MountPropagation_PROPAGATION_BIDIRECTIONAL, slave), errField: "config.mounts[0].propagation", errSentry: errdefs.ErrFailedPrecondition},
		{name: "rslave on private", m: prop(runtime.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, private), errField: "config.mounts[0].propagation", errSentry: errdefs.ErrFailedPrecondition},
		{name: "rro", m: &runtime.Mount{ContainerPath: "/data", HostPath: private, Readonly: true, RecursiveReadOnly: true}, rro: true, wantOpts: []string{"rbind", "rprivate", "ro", "rro"}},
		{name: "rro unsupported", m: &runtime.Mount{ContainerPath: "/data", HostPath: private, Readonly: true, RecursiveReadOnly: true},
			errField: "config.mounts[0].recursive_read_only", errSentry: errdefs.ErrFailedPrecondition},
		{name: "rro without readonly", m: &runtime.Mount{ContainerPath: "/data", HostPath: private, RecursiveReadOnly: true}, rro: true,
			errField: "config.mounts[0].recursive_read_only", errSentry: errdefs.ErrInvalidArgument},
		{name: "rro with propagation", m: &runtime.Mount{ContainerPath: "/data", HostPath: shared, Readonly: true, RecursiveReadOnly: true, Propagation: runtime.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}, rro: true,
			errField: "config.mounts[0].recursive_read_only", errSentry: errdefs.ErrInvalidArgument},
		{name: "mount options", m: &runtime.Mount{ContainerPath: "/data", HostPath: private, MountOptions: []string{"noexec", "nosuid"}}, wantOpts: []string{"rbind", "rprivate", "rw", "noexec", "nosuid"}},
		{name: "bad mount option", m: &runtime.Mount{ContainerPath: "/data", HostPath: private, MountOptions: []string{"shared"}},
			errField: "config.mounts[0].mount_options[0]", errSentry: errdefs.ErrInvalidArgument},
		{name: "empty host path", m: &runtime.Mount{ContainerPath: "/data"}, errField: "config.mounts[0].host_path", errSentry: errdefs.ErrInvalidArgument},
		{name: "relative container path", m: &runtime.Mount{ContainerPath: "data", HostPath: private}, errField: "config.mounts[0].container_path", errSentry: errdefs.ErrInvalidArgument},
		{name: "missing host path is created", m: &runtime.Mount{ContainerPath: "/data", HostPath: missing}, wantOpts: []string{"rbind", "rprivate", "rw"}},
		{name: "idmapped", m: &runtime.Mount{ContainerPath: "/data", HostPath: private, UidMappings: []*runtime.IDMapping{{Length: 1}}},
			errField: "config.mounts[0].uidMappings", errSentry: errdefs.ErrNotImplemented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Host.mountinfo = mountinfo
			in.SupportsRRO = tc.rro
			in.Config.Mounts = []*runtime.Mount{tc.m}
			res, err := Generate(in)
			if tc.errField != "" {
				wantErr(t, err, tc.errSentry, tc.errField)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := findMount(res.Spec, "/data")
			if m == nil || m.Type != "bind" || !reflect.DeepEqual(m.Options, tc.wantOpts) {
				t.Fatalf("mount %+v, want options %v", m, tc.wantOpts)
			}
			if res.Spec.Linux.RootfsPropagation != tc.wantRootP {
				t.Fatalf("rootfs propagation %q, want %q", res.Spec.Linux.RootfsPropagation, tc.wantRootP)
			}
			if fi, err := os.Stat(filepath.Join(in.Rootfs, "data")); err != nil || !fi.IsDir() {
				t.Fatalf("mount point not made: %v", err)
			}
			if r := res.Mounts[0]; r.ContainerPath != tc.m.ContainerPath || r.HostPath != tc.m.HostPath || r.Propagation != tc.m.Propagation || r.Readonly != tc.m.Readonly {
				t.Fatalf("reported mount %v, want %v", r, tc.m)
			}
		})
	}
	if fi, err := os.Stat(missing); err != nil || !fi.IsDir() {
		t.Fatalf("missing host path not created: %v", err)
	}
}

func TestImageVolumes(t *testing.T) {
	in := baseInput(t)
	os.MkdirAll(filepath.Join(in.Rootfs, "var/lib/db"), 0o700)
	os.Chown(filepath.Join(in.Rootfs, "var/lib/db"), 1000, 1000)
	in.Image = &imagespec.ImageConfig{Volumes: map[string]struct{}{"/var/lib/db": {}, "/cache": {}, "/covered": {}}}
	in.Config.Mounts = []*runtime.Mount{{ContainerPath: "/covered", HostPath: t.TempDir()}}
	in.VolumesDir = filepath.Join(t.TempDir(), "volumes")
	res := mustGenerate(t, in)
	if want := []string{in.VolumesDir + "/0", in.VolumesDir + "/2"}; !reflect.DeepEqual(res.VolumeDirs, want) {
		t.Fatalf("volume dirs %v, want %v (/covered has a CRI mount)", res.VolumeDirs, want)
	}
	if m := findMount(res.Spec, "/var/lib/db"); m == nil || m.Source != in.VolumesDir+"/2" {
		t.Fatalf("/var/lib/db mount %+v", m)
	}
	if st, err := statInRoot("/", in.VolumesDir+"/2"); err != nil || st.Uid != 1000 || st.Mode&0o777 != 0o700 {
		t.Fatalf("volume dir does not take the image dir's owner and mode: %+v %v", st, err)
	}
	if len(res.Mounts) != 1 {
		t.Fatalf("ContainerStatus would report image volumes: %v", res.Mounts)
	}

	// Without VolumesDir the directories are only made in the rootfs.
	in = baseInput(t)
	in.Image = &imagespec.ImageConfig{Volumes: map[string]struct{}{"/cache": {}}}
	res = mustGenerate(t, in)
	if findMount(res.Spec, "/cache") != nil || len(res.VolumeDirs) != 0 {
		t.Fatal("a mount was made without VolumesDir")
	}
	if _, err := os.Stat(filepath.Join(in.Rootfs, "cache")); err != nil {
		t.Fatal(err)
	}

	// A failed Generate removes the directories it made.
	in = baseInput(t)
	in.VolumesDir = filepath.Join(t.TempDir(), "volumes")
	in.Image = &imagespec.ImageConfig{Volumes: map[string]struct{}{"/cache": {}}}
	in.Config.Mounts = []*runtime.Mount{{ContainerPath: "/x"}}
	if _, err := Generate(in); err == nil {
		t.Fatal("want an error")
	}
	if _, err := os.Stat(in.VolumesDir + "/0"); !os.IsNotExist(err) {
		t.Fatalf("volume dir left behind: %v", err)
	}
}

func TestDevices(t *testing.T) {
	in := baseInput(t)
	in.Config.Devices = []*runtime.Device{{HostPath: "/dev/null", ContainerPath: "/dev/mynull", Permissions: "rw"}}
	res := mustGenerate(t, in)
	l := res.Spec.Linux
	if len(l.Devices) != 1 || l.Devices[0].Path != "/dev/mynull" || l.Devices[0].Type != "c" || l.Devices[0].Major != 1 || l.Devices[0].Minor != 3 {
		t.Fatalf("devices %+v", l.Devices)
	}
	rules := l.Resources.Devices
	if len(rules) != 2 || rules[0].Allow || !rules[1].Allow || rules[1].Access != "rw" || *rules[1].Major != 1 || *rules[1].Minor != 3 {
		t.Fatalf("device rules %+v", rules)
	}
	for _, tc := range []struct {
		d     *runtime.Device
		field string
	}{
		{&runtime.Device{HostPath: "/dev/null", Permissions: "rwx"}, "config.devices[0].permissions"},
		{&runtime.Device{HostPath: "/etc/hostname"}, "config.devices[0].host_path"},
		{&runtime.Device{HostPath: "/dev/no-such-device"}, "config.devices[0].host_path"},
		{&runtime.Device{}, "config.devices[0].host_path"},
	} {
		in.Config.Devices = []*runtime.Device{tc.d}
		_, err := Generate(in)
		wantErr(t, err, errdefs.ErrInvalidArgument, tc.field)
	}

	in.Config.Devices = nil
	sc(&in).Privileged = true
	in.Sandbox.SecurityContext = &runtime.LinuxSandboxSecurityContext{Privileged: true}
	res = mustGenerate(t, in)
	if len(res.Spec.Linux.Devices) < 3 || len(res.Spec.Linux.Resources.Devices) != 1 || !res.Spec.Linux.Resources.Devices[0].Allow {
		t.Fatalf("privileged: %d devices, rules %+v", len(res.Spec.Linux.Devices), res.Spec.Linux.Resources.Devices)
	}
}

// CRI image volumes (Mount.image) bind the image the caller mounted read-only (or a sub path
// of it, resolved inside the image) and refuse to be writable.
func TestCRIImageVolumes(t *testing.T) {
	image := t.TempDir()
	os.MkdirAll(filepath.Join(image, "etc"), 0o755)
	os.Symlink("/", filepath.Join(image, "escape"))
	for _, tc := range []struct {
		name     string
		m        *runtime.Mount
		mounted  bool
		wantSrc  string
		errField string
	}{
		{"whole image", &runtime.Mount{ContainerPath: "/data", Readonly: true, Image: &runtime.ImageSpec{Image: "busybox"}}, true, image, ""},
		{"sub path", &runtime.Mount{ContainerPath: "/data", Readonly: true, Image: &runtime.ImageSpec{Image: "busybox"}, ImageSubPath: "etc"}, true, filepath.Join(image, "etc"), ""},
		{"sub path through a symlink stays in the image", &runtime.Mount{ContainerPath: "/data", Readonly: true, Image: &runtime.ImageSpec{Image: "busybox"}, ImageSubPath: "escape/etc"}, true, filepath.Join(image, "etc"), ""},
		{"missing sub path", &runtime.Mount{ContainerPath: "/data", Readonly: true, Image: &runtime.ImageSpec{Image: "busybox"}, ImageSubPath: "nope"}, true, "", "config.mounts[0].image_sub_path"},
		{"writable", &runtime.Mount{ContainerPath: "/data", Image: &runtime.ImageSpec{Image: "busybox"}}, true, "", "config.mounts[0].readonly"},
		{"not mounted by the caller", &runtime.Mount{ContainerPath: "/data", Readonly: true, Image: &runtime.ImageSpec{Image: "busybox"}}, false, "", "config.mounts[0].image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Config.Mounts = []*runtime.Mount{tc.m}
			if tc.mounted {
				in.ImageMounts = map[int]string{0: image}
			}
			res, err := Generate(in)
			if tc.errField != "" {
				wantErr(t, err, errdefs.ErrInvalidArgument, tc.errField)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := findMount(res.Spec, "/data")
			if m == nil || m.Source != tc.wantSrc || !reflect.DeepEqual(m.Options, []string{"rbind", "rprivate", "ro"}) {
				t.Fatalf("mount %+v, want a read-only bind of %s", m, tc.wantSrc)
			}
			if got := res.Mounts[0]; got.GetImage().GetImage() != "busybox" || got.GetImageSubPath() != tc.m.GetImageSubPath() {
				t.Errorf("reported mount %v lacks the image", got)
			}
		})
	}
}
