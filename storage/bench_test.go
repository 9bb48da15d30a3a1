package storage

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/storage/storagetest"
)

// The benchmarks time the image calls against a real store in a temp dir
// and a local registry. go test -tags ... -run '^$' -bench . ./storage/

// randomLayer is a layer holding one file of n random (incompressible)
// bytes.
func randomLayer(b testing.TB, n int) storagetest.Layer {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		b.Fatal(err)
	}
	return storagetest.Layer{fmt.Sprintf("data/%x", buf[:8]): string(buf)}
}

// benchRig is a store and a registry with a one-layer tiny image and a
// five-layer image of 50 MB.
func benchRig(b *testing.B, withBig bool) (*rig, string, string) {
	b.Helper()
	reg := storagetest.StartRegistry(b)
	dir := b.TempDir()
	tiny := storagetest.WriteOCI(b, filepath.Join(dir, "tiny"), "tiny", storagetest.Spec{
		Layers: []storagetest.Layer{{"etc/hello": "hello"}}, Cmd: []string{"/bin/sh"},
	})
	reg.Push(b, tiny, "bench/tiny:1")
	if withBig {
		var layers []storagetest.Layer
		for range 5 {
			layers = append(layers, randomLayer(b, 10<<20))
		}
		big := storagetest.WriteOCI(b, filepath.Join(dir, "big"), "big", storagetest.Spec{Layers: layers, Cmd: []string{"/bin/sh"}})
		reg.Push(b, big, "bench/big:1")
	}
	r := newRig(b, func(o *Options) {
		o.RegistriesConf = registriesConf(b, b.TempDir(), "", reg.Addr)
	})
	return r, reg.Addr + "/bench/tiny:1", reg.Addr + "/bench/big:1"
}

func BenchmarkPullImage(b *testing.B) {
	for _, tc := range []struct {
		name string
		big  bool
	}{{"tiny", false}, {"big50MB", true}} {
		b.Run(tc.name, func(b *testing.B) {
			r, tiny, big := benchRig(b, tc.big)
			ref := tiny
			if tc.big {
				ref = big
			}
			ctx := context.Background()
			for b.Loop() {
				if _, err := r.svc.PullImage(ctx, ref, Credentials{}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := r.svc.RemoveImage(ctx, ref); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

func BenchmarkImageStatus(b *testing.B) {
	r, tiny, _ := benchRig(b, false)
	ctx := context.Background()
	res, err := r.svc.PullImage(ctx, tiny, Credentials{})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, ref string }{
		{"name", tiny}, {"id", res.ImageID}, {"idprefix", res.ImageID[:12]}, {"digest", res.RepoDigest},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := r.svc.Image(ctx, tc.ref); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkListImages(b *testing.B) {
	reg := storagetest.StartRegistry(b)
	r := newRig(b, func(o *Options) {
		o.RegistriesConf = registriesConf(b, b.TempDir(), "", reg.Addr)
	})
	dir := b.TempDir()
	for i := range 20 {
		tag := fmt.Sprintf("t%d", i)
		built := storagetest.WriteOCI(b, dir, tag, storagetest.Spec{Layers: []storagetest.Layer{{"etc/i": tag}}})
		storagetest.Import(b, r.svc.store, built, fmt.Sprintf("%s/bench/img%d:1", reg.Addr, i))
	}
	ctx := context.Background()
	for b.Loop() {
		imgs, err := r.svc.ListImages(ctx, "")
		if err != nil {
			b.Fatal(err)
		}
		if len(imgs) != 20 {
			b.Fatalf("%d images", len(imgs))
		}
	}
}

// BenchmarkCreateRootfs times a container's rootfs create and mount (and
// its removal, untimed) with 0 and 500 mounted rootfs present:
// containers/storage rewrites its containers.json and layers.json, and
// syncs them, on every create, so the cost grows with the containers
// present.
func BenchmarkCreateRootfs(b *testing.B) {
	for _, present := range []int{0, 500} {
		b.Run(fmt.Sprintf("present=%d", present), func(b *testing.B) {
			r := newRig(b, nil)
			img := tinyImage(b, "a", "")
			storagetest.Import(b, r.svc.store, img, "example.test/app:1")
			owner := Owner{Pod: "pod-1", Kind: KindContainer}
			ctx := context.Background()
			for i := range present {
				id := fmt.Sprintf("%064x", i+1)
				if err := r.rootfs.CreateRootfs(ctx, id, "k8s_c"+id[56:], img.ID(), owner); err != nil {
					b.Fatal(err)
				}
				if _, err := r.rootfs.MountRootfs(id); err != nil {
					b.Fatal(err)
				}
			}
			b.Cleanup(func() {
				for i := range present {
					_ = r.rootfs.RemoveRootfs(fmt.Sprintf("%064x", i+1))
				}
			})
			b.ResetTimer()
			for i := range b.N {
				id := fmt.Sprintf("%064x", 1<<40+i)
				if err := r.rootfs.CreateRootfs(ctx, id, "k8s_probe"+id[56:], img.ID(), owner); err != nil {
					b.Fatal(err)
				}
				if _, err := r.rootfs.MountRootfs(id); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := r.rootfs.RemoveRootfs(id); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
