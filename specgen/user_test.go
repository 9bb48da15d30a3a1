package specgen

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
)

func TestUser(t *testing.T) {
	i64 := func(v int64) *runtime.Int64Value { return &runtime.Int64Value{Value: v} }
	for _, tc := range []struct {
		name      string
		image     string
		user      *runtime.Int64Value
		username  string
		group     *runtime.Int64Value
		groups    []int64
		strict    bool
		uid, gid  uint32
		gids      []uint32
		home      string
		errField  string
		errSentry error
	}{
		{name: "root by default", uid: 0, gid: 0, gids: []uint32{0}, home: "/root"},
		{name: "image uid", image: "1000", uid: 1000, gid: 1000, gids: []uint32{1000, 50, 50000}, home: "/home/alice"},
		{name: "image uid:gid", image: "1001:7", uid: 1001, gid: 7, gids: []uint32{7, 50}, home: "/home/bob"},
		{name: "image name", image: "alice", uid: 1000, gid: 1000, gids: []uint32{1000, 50, 50000}, home: "/home/alice"},
		{name: "image name:group", image: "bob:staff", uid: 1001, gid: 50, gids: []uint32{50}, home: "/home/bob"},
		{name: "image unknown uid", image: "4242", uid: 4242, gid: 0, gids: []uint32{0}, home: "/"},
		{name: "image unknown name", image: "mallory", errField: "image config User", errSentry: errdefs.ErrInvalidArgument},
		{name: "image unknown group", image: "alice:wheel", errField: "image config User", errSentry: errdefs.ErrInvalidArgument},
		{name: "run_as_user overrides image", image: "alice", user: i64(1001), uid: 1001, gid: 1001, gids: []uint32{1001, 50}, home: "/home/bob"},
		{name: "run_as_user without entry", user: i64(5000), uid: 5000, gid: 0, gids: []uint32{0}, home: "/"},
		{name: "run_as_user and group", user: i64(1001), group: i64(1002), uid: 1001, gid: 1002, gids: []uint32{1002, 50}, home: "/home/bob"},
		{name: "run_as_username", username: "nobody", uid: 65534, gid: 65534, gids: []uint32{65534}, home: "/nonexistent"},
		{name: "run_as_username unknown", username: "mallory", errField: scField + ".run_as_username", errSentry: errdefs.ErrInvalidArgument},
		{name: "both user fields", user: i64(1), username: "daemon", errField: scField + ".run_as_username", errSentry: errdefs.ErrInvalidArgument},
		{name: "group without user", image: "alice", group: i64(5), errField: scField + ".run_as_group", errSentry: errdefs.ErrInvalidArgument},
		{name: "negative uid", user: i64(-1), errField: scField + ".run_as_user", errSentry: errdefs.ErrInvalidArgument},
		{name: "merge groups", user: i64(1000), groups: []int64{1234, 50}, uid: 1000, gid: 1000, gids: []uint32{1000, 50, 50000, 1234}, home: "/home/alice"},
		{name: "strict groups", user: i64(1000), groups: []int64{1234}, strict: true, uid: 1000, gid: 1000, gids: []uint32{1000, 1234}, home: "/home/alice"},
		{name: "bad supplemental group", groups: []int64{-5}, errField: scField + ".supplemental_groups[0]", errSentry: errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Image = &imagespec.ImageConfig{User: tc.image}
			s := sc(&in)
			s.RunAsUser, s.RunAsUsername, s.RunAsGroup, s.SupplementalGroups = tc.user, tc.username, tc.group, tc.groups
			if tc.strict {
				s.SupplementalGroupsPolicy = runtime.SupplementalGroupsPolicy_Strict
			}
			res, err := Generate(in)
			if tc.errField != "" {
				wantErr(t, err, tc.errSentry, tc.errField)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u := res.Spec.Process.User
			if u.UID != tc.uid || u.GID != tc.gid || !reflect.DeepEqual(u.AdditionalGids, tc.gids) {
				t.Fatalf("user %d:%d %v, want %d:%d %v", u.UID, u.GID, u.AdditionalGids, tc.uid, tc.gid, tc.gids)
			}
			if res.User.UID != u.UID || res.User.GID != u.GID || !reflect.DeepEqual(res.User.AdditionalGids, u.AdditionalGids) {
				t.Fatalf("Result.User %+v differs from the spec's %+v", res.User, u)
			}
			if !contains(res.Spec.Process.Env, "HOME="+tc.home) {
				t.Fatalf("env %q lacks HOME=%s", res.Spec.Process.Env, tc.home)
			}
		})
	}
}

// The image's /etc/passwd is a symlink to a file outside the rootfs: it must
// be read as the rootfs sees it (a missing file), never the host's.
func TestPasswdSymlinkStaysInRootfs(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "passwd"), "evil:x:0:0::/root:/bin/sh\n")
	in := baseInput(t)
	os.Remove(filepath.Join(in.Rootfs, "etc/passwd"))
	if err := os.Symlink(filepath.Join(outside, "passwd"), filepath.Join(in.Rootfs, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	sc(&in).RunAsUsername = "evil"
	_, err := Generate(in)
	wantErr(t, err, errdefs.ErrInvalidArgument, "run_as_username")

	// A relative symlink that climbs out lands on the rootfs's own file.
	os.Remove(filepath.Join(in.Rootfs, "etc/passwd"))
	writeFile(t, filepath.Join(in.Rootfs, "shadowed"), "inside:x:77:77::/in:/bin/sh\n")
	if err := os.Symlink("../../../../../../shadowed", filepath.Join(in.Rootfs, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	sc(&in).RunAsUsername = "inside"
	res := mustGenerate(t, in)
	if res.User.UID != 77 {
		t.Fatalf("uid %d, want 77 from the rootfs's /shadowed", res.User.UID)
	}
}
