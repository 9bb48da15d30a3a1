package storage

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/storage/storagetest"
)

func TestPullThenLookUp(t *testing.T) {
	reg := storagetest.StartRegistry(t)
	built := tinyImage(t, "v1", "1000")
	reg.Push(t, built, "library/tiny:1.0")
	var observed []int64
	r := newRig(t, func(o *Options) {
		o.RegistriesConf = registriesConf(t, t.TempDir(), "", reg.Addr)
		o.PullObserver = func(bytes int64, _ time.Duration, err error) {
			if err != nil {
				t.Errorf("observed a failed pull: %v", err)
			}
			observed = append(observed, bytes)
		}
	})

	res, err := r.svc.PullImage(testCtx(t), "docker://"+reg.Addr+"/library/tiny:1.0", Credentials{})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if len(observed) != 1 || observed[0] == 0 {
		t.Errorf("observed pulls of %v bytes, want one of the image's size", observed)
	}
	wantDigest := reg.Addr + "/library/tiny@" + built.Manifest.String()
	if res.ImageID != built.ID() || res.RepoDigest != wantDigest {
		t.Fatalf("pull result = %+v, want id %s and repo digest %s", res, built.ID(), wantDigest)
	}
	if n := r.logs.Count("pull finished", "id="+built.ID()); n != 1 {
		t.Errorf("%d 'pull finished' lines, want 1", n)
	}

	name := reg.Addr + "/library/tiny:1.0"
	for _, ref := range []string{built.ID(), "sha256:" + built.ID(), built.ID()[:12], built.ID()[:3], name, reg.Addr + "/library/tiny@" + built.Manifest.String(), res.RepoDigest} {
		img, err := r.svc.Image(testCtx(t), ref)
		if err != nil {
			t.Fatalf("image %q: %v", ref, err)
		}
		if img.ID != built.ID() {
			t.Fatalf("image %q has id %s, want %s", ref, img.ID, built.ID())
		}
	}
	img, _ := r.svc.Image(testCtx(t), name)
	if len(img.RepoTags) != 1 || img.RepoTags[0] != name {
		t.Errorf("repo tags = %v, want [%s]", img.RepoTags, name)
	}
	if len(img.RepoDigests) != 1 || img.RepoDigests[0] != wantDigest {
		t.Errorf("repo digests = %v, want [%s]", img.RepoDigests, wantDigest)
	}
	if img.UID == nil || *img.UID != 1000 || img.Username != "" {
		t.Errorf("uid = %v, username = %q, want 1000 and none", img.UID, img.Username)
	}
	if img.Size == 0 || img.Config == nil || img.TopLayer == "" {
		t.Errorf("size %d, config %v, top layer %q: want all set", img.Size, img.Config, img.TopLayer)
	}

	// A second pull of a stored image downloads no layer again.
	if _, err := r.svc.PullImage(testCtx(t), name, Credentials{}); err != nil {
		t.Fatalf("second pull: %v", err)
	}
	if n := reg.BlobGets(built.Layers[0]); n != 1 {
		t.Errorf("layer fetched %d times, want 1", n)
	}
}

func TestPullShortNameThroughMirror(t *testing.T) {
	reg := storagetest.StartRegistry(t)
	built := tinyImage(t, "v1", "nobody")
	reg.Push(t, built, "team/app:2")
	closed := storagetest.FreeAddr(t)
	conf := `unqualified-search-registries = ["missing.test", "mirrored.test"]

[[registry]]
prefix = "missing.test"
location = "` + closed + `"
insecure = true
[[registry.mirror]]
location = "` + reg.Addr + `/nothing-here"
insecure = true

[[registry]]
prefix = "mirrored.test"
location = "mirrored.test"
[[registry.mirror]]
location = "` + reg.Addr + `"
insecure = true
`
	r := newRig(t, func(o *Options) { o.RegistriesConf = registriesConf(t, t.TempDir(), conf) })

	// missing.test's mirror has no such repository and missing.test
	// itself is unreachable; mirrored.test's mirror has it.
	res, err := r.svc.PullImage(testCtx(t), "team/app:2", Credentials{})
	if err != nil {
		t.Fatalf("pull short name: %v", err)
	}
	if res.Name != "mirrored.test/team/app:2" || res.ImageID != built.ID() {
		t.Fatalf("pulled %+v, want mirrored.test/team/app:2 with id %s", res, built.ID())
	}
	if res.RepoDigest != "mirrored.test/team/app@"+built.Manifest.String() {
		t.Errorf("repo digest = %s", res.RepoDigest)
	}
	// The short name resolves locally through the search registries.
	img, err := r.svc.Image(testCtx(t), "team/app:2")
	if err != nil || img.ID != built.ID() || img.Username != "nobody" {
		t.Fatalf("image by short name = %+v, %v", img, err)
	}
}

func TestPullErrors(t *testing.T) {
	reg := storagetest.StartRegistry(t)
	built := tinyImage(t, "v1", "")
	reg.Push(t, built, "library/present:1")
	closed := storagetest.FreeAddr(t)
	mirrorConf := `[[registry]]
prefix = "` + closed + `"
location = "` + closed + `"
insecure = true
[[registry.mirror]]
location = "` + reg.Addr + `"
insecure = true
`
	for _, tc := range []struct {
		name, ref string
		edit      func(t *testing.T, o *Options)
		want      error
		mention   []string
	}{
		{name: "missing tag", ref: reg.Addr + "/library/present:nope", want: errdefs.ErrNotFound, mention: []string{"present:nope"}},
		{name: "missing repository", ref: reg.Addr + "/library/absent:1", want: errdefs.ErrNotFound, mention: []string{"absent:1"}},
		{name: "unreachable registry", ref: closed + "/library/x:1", want: errdefs.ErrUnavailable, mention: []string{"registry " + closed, "connection refused"}},
		{name: "malformed reference", ref: "bad ref!!", want: errdefs.ErrInvalidArgument, mention: []string{`"bad ref!!"`}},
		{
			name: "mirror says unknown and primary unreachable", ref: closed + "/library/absent:1",
			edit: func(t *testing.T, o *Options) { o.RegistriesConf = registriesConf(t, t.TempDir(), mirrorConf) },
			want: errdefs.ErrNotFound, mention: []string{"absent:1"},
		},
		{
			name: "missing policy", ref: reg.Addr + "/library/present:1",
			edit: func(t *testing.T, o *Options) { o.SignaturePolicy = "/nonexistent/policy.json" },
			want: errdefs.ErrFailedPrecondition, mention: []string{"/nonexistent/policy.json"},
		},
		{
			name: "policy rejects", ref: reg.Addr + "/library/present:1",
			edit: func(t *testing.T, o *Options) {
				o.SignaturePolicy = storagetest.WriteFile(t, t.TempDir()+"/policy.json", `{"default":[{"type":"reject"}]}`)
			},
			want: errdefs.ErrPermissionDenied, mention: []string{"signature policy"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(o *Options) {
				o.RegistriesConf = registriesConf(t, t.TempDir(), "", reg.Addr, closed)
				if tc.edit != nil {
					tc.edit(t, o)
				}
			})
			_, err := r.svc.PullImage(testCtx(t), tc.ref, Credentials{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("pull %q: error %v, want %v", tc.ref, err, tc.want)
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			if layers, images := r.counts(t); layers != 0 || images != 0 {
				t.Errorf("%d layers and %d images left after failed pull", layers, images)
			}
		})
	}
}
