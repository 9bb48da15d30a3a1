package storage

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

func TestParseName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"docker://busybox", "docker.io/library/busybox:latest"},
		{"library/busybox", "docker.io/library/busybox:latest"},
		{"quay.io/app/x", "quay.io/app/x:latest"},
		{"localhost:5000/x:1", "localhost:5000/x:1"},
		{"registry.k8s.io/pause@sha256:" + hex64('a'), "registry.k8s.io/pause@sha256:" + hex64('a')},
		{"bad ref!!", ""},
		{"UPPER/case", ""},
		{"", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseName(tc.in)
			if tc.want == "" {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("parseName(%q) = %v, %v; want invalid argument", tc.in, got, err)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("parseName(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestIDPrefix(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"abc", "abc", true},
		{"ab", "", false},
		{"sha256:" + hex64('f'), hex64('f'), true},
		{hex64('0') + "0", "", false},
		{"busybox", "", false},
		{"ABC123", "", false},
		{"deadbeef", "deadbeef", true},
	} {
		got, ok := idPrefix(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("idPrefix(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestImageUser(t *testing.T) {
	uid := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		in   string
		uid  *int64
		name string
	}{
		{"", nil, ""},
		{"0", uid(0), ""},
		{"1000:1000", uid(1000), ""},
		{"nobody", nil, "nobody"},
		{"www-data:www-data", nil, "www-data"},
	} {
		gotUID, gotName := imageUser(tc.in)
		if (gotUID == nil) != (tc.uid == nil) || (gotUID != nil && *gotUID != *tc.uid) || gotName != tc.name {
			t.Errorf("imageUser(%q) = %v, %q; want %v, %q", tc.in, gotUID, gotName, tc.uid, tc.name)
		}
	}
}

func TestMatchPinned(t *testing.T) {
	names := []string{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause@sha256:" + hex64('b')}
	for _, tc := range []struct {
		pattern string
		want    bool
	}{
		{"registry.k8s.io/pause:3.10", true},
		{"registry.k8s.io/pause:3.9", false},
		{"registry.k8s.io/pause*", true},
		{"registry.k8s.io/*", true},
		{"quay.io/*", false},
		{"*pause*", true},
		{"*coredns*", false},
		{"*", true},
		{"", false},
		{"busybox", false},
	} {
		if got := matchPinned([]string{tc.pattern}, names); got != tc.want {
			t.Errorf("matchPinned(%q) = %v, want %v", tc.pattern, got, tc.want)
		}
	}
	if !matchPinned([]string{"busybox"}, []string{"docker.io/library/busybox:latest"}) {
		t.Error("pattern busybox does not match its normalised name")
	}
}

func TestSplitNames(t *testing.T) {
	d := "sha256:" + hex64('c')
	tags, digests := splitNames([]string{"docker.io/library/busybox:latest", "quay.io/x/y@" + d, "not a name"})
	if !slices.Equal(tags, []string{"docker.io/library/busybox:latest"}) || !slices.Equal(digests, []string{"quay.io/x/y@" + d}) {
		t.Fatalf("splitNames = %v, %v", tags, digests)
	}
}

func TestDriverOptionsFor(t *testing.T) {
	all := []string{"overlay.mountopt=nodev", "vfs.ignore_chown_errors=true", "size=10G", "overlay2.size=1G"}
	if got := driverOptionsFor("vfs", all); !slices.Equal(got, []string{"vfs.ignore_chown_errors=true", "size=10G"}) {
		t.Errorf("vfs options = %v", got)
	}
	if got := driverOptionsFor("overlay", all); !slices.Equal(got, []string{"overlay.mountopt=nodev", "size=10G", "overlay2.size=1G"}) {
		t.Errorf("overlay options = %v", got)
	}
}

func TestReportInterval(t *testing.T) {
	for _, tc := range []struct{ timeout, want time.Duration }{
		{0, time.Second},
		{time.Minute, time.Second},
		{5 * time.Second, 500 * time.Millisecond},
		{time.Microsecond, time.Millisecond},
	} {
		if got := reportInterval(tc.timeout); got != tc.want {
			t.Errorf("reportInterval(%s) = %s, want %s", tc.timeout, got, tc.want)
		}
	}
}

func hex64(c byte) string {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return string(b)
}
