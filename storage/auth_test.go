package storage

import (
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/storage/storagetest"
)

func TestPullWithCredentials(t *testing.T) {
	reg := storagetest.StartRegistry(t, storagetest.WithBasicAuth("kube", "s3cret"))
	built := tinyImage(t, "v1", "")
	reg.Push(t, built, "private/app:1")
	ref := reg.Addr + "/private/app:1"
	authFile := storagetest.WriteFile(t, filepath.Join(t.TempDir(), "auth.json"),
		fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Addr, base64.StdEncoding.EncodeToString([]byte("kube:s3cret"))))

	for _, tc := range []struct {
		name     string
		creds    Credentials
		authFile string
		want     error
	}{
		{name: "none", want: errdefs.ErrPermissionDenied},
		{name: "wrong password", creds: Credentials{Username: "kube", Password: "nope"}, want: errdefs.ErrPermissionDenied},
		{name: "username and password", creds: Credentials{Username: "kube", Password: "s3cret"}},
		{name: "auth string", creds: Credentials{Auth: base64.StdEncoding.EncodeToString([]byte("kube:s3cret"))}},
		{name: "auth file", authFile: authFile},
		{name: "request beats auth file", authFile: authFile, creds: Credentials{Username: "kube", Password: "nope"}, want: errdefs.ErrPermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(o *Options) {
				o.RegistriesConf = registriesConf(t, t.TempDir(), "", reg.Addr)
				o.AuthFile = tc.authFile
			})
			res, err := r.svc.PullImage(testCtx(t), ref, tc.creds)
			if tc.want == nil {
				if err != nil || res.ImageID != built.ID() {
					t.Fatalf("pull = %+v, %v", res, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("pull: %v, want %v", err, tc.want)
			}
		})
	}
}
