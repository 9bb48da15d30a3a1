// Package rig is Berth's test rig: the real components an integration test
// or a person at a terminal needs around the daemon, with no network beyond
// loopback.
//
//   - BuildImages makes small, deterministic OCI images (busybox, pause,
//     a non-root image, a multi-layer image) under the names real clusters
//     pull them by, and every image critest v1.37.0 pulls (critest.go:
//     e2e busybox, nginx, httpd and nonewprivs, cri-tools' test-image-*
//     and hostnet-nginx), rebuilt from busybox with small Go stand-ins
//     for the web servers (webserver/) and nnp (nnp/).
//   - StartRegistry runs Debian's docker-registry on a loopback port;
//     Registry.PushAll puts the images there under "<addr>/<original ref>",
//     and WriteRegistriesConf mirrors the real registries to it, so an
//     unmodified "registry.k8s.io/pause:3.10" pulls locally.
//   - Setup does all of that in one call; StartBerth runs the daemon with
//     every path under one directory, and Crictl talks to it the way a
//     person would.
//
// A TestMain needs little more than:
//
//	env, err := rig.Setup(ctx, rig.DefaultImageDir(), tmp, rig.RegistryOptions{})
//	...
//	d, err := rig.StartBerth(ctx, berthBinary, filepath.Join(tmp, "berth"), env.BerthArgs()...)
//	...
//	out, err := rig.Crictl(ctx, d.Socket, "pull", rig.RefBusybox)
//
// contrib/install-deps.sh installs what the rig shells out to: the dynamic
// busybox it builds images from, docker-registry, skopeo and crictl. The
// berth-rig command (cmd/berth-rig) serves the same images by hand.
package rig
