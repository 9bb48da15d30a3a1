package rig

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// critest compares these fields of its images with what ImageStatus and the
// containers report, so they must be exactly upstream's.
func TestCritestImageConfigs(t *testing.T) {
	images := testImages(t)
	for _, tc := range []struct {
		ref        string
		user       string
		cmd        []string
		entrypoint []string
		stopSignal string
	}{
		{ref: RefE2EBusybox, cmd: []string{"sh"}},
		{ref: RefTestImageTag, cmd: []string{"sh"}},
		{ref: RefTestImageUserUID, user: "1002", cmd: []string{"sh"}},
		{ref: RefTestImageUserUsername, user: "www-data", cmd: []string{"sh"}},
		{ref: RefTestImageUserUIDGroup, user: "1003:1004", cmd: []string{"sh"}},
		{ref: RefTestImageUserUsernameGroup, user: "www-data:1004", cmd: []string{"sh"}},
		{ref: RefTestImagePredefinedGroup, user: "1000", cmd: []string{"sh"}},
		{ref: RefE2ENonewprivs, user: "1000", entrypoint: []string{"/usr/local/bin/nnp"}},
		{ref: RefE2ENginx, cmd: []string{"nginx", "-g", "daemon off;"}, stopSignal: "SIGTERM"},
		{ref: RefHostnetNginx, cmd: []string{"nginx", "-g", "daemon off;"}, stopSignal: "SIGQUIT"},
		{ref: RefE2EHttpd, cmd: []string{"httpd-foreground"}, stopSignal: "SIGWINCH"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			cfg, err := mustImage(t, images, tc.ref).Config()
			if err != nil {
				t.Fatal(err)
			}
			c := cfg.Config
			if c.User != tc.user || !slices.Equal(c.Cmd, tc.cmd) || !slices.Equal(c.Entrypoint, tc.entrypoint) || c.StopSignal != tc.stopSignal {
				t.Errorf("config: User %q Cmd %q Entrypoint %q StopSignal %q; want %q %q %q %q",
					c.User, c.Cmd, c.Entrypoint, c.StopSignal, tc.user, tc.cmd, tc.entrypoint, tc.stopSignal)
			}
		})
	}

	// One image under three tags; three distinct images; distinct tags of
	// test-image-tag.
	same := mustImage(t, images, RefTestImageTags1).Digest
	for _, ref := range []string{RefTestImageTags2, RefTestImageTags3} {
		if d := mustImage(t, images, ref).Digest; d != same {
			t.Errorf("%s is %s, want the same image as test-image-tags:1 (%s)", ref, d, same)
		}
	}
	seen := map[string]string{}
	for _, ref := range []string{RefTestImage1, RefTestImage2, RefTestImage3, RefTestImageTag, RefTestImageTagAll, RefTestImageLatest, RefTestImageTags1} {
		id := mustImage(t, images, ref).ConfigDigest
		if other, dup := seen[id]; dup {
			t.Errorf("%s and %s are one image (%s); want distinct", ref, other, id)
		}
		seen[id] = ref
	}
}

func TestCritestImageFiles(t *testing.T) {
	images := testImages(t)
	read := func(t *testing.T, root, p string) string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}

	t.Run("predefined group", func(t *testing.T) {
		root := unpack(t, mustImage(t, images, RefTestImagePredefinedGroup))
		if g := read(t, root, "etc/group"); !strings.Contains(g, "\ngroup-defined-in-image:x:50000:default-user\n") {
			t.Errorf("/etc/group lacks default-user in group 50000:\n%s", g)
		}
		if p := read(t, root, "etc/passwd"); !strings.Contains(p, "\ndefault-user:x:1000:1000:") {
			t.Errorf("/etc/passwd lacks default-user 1000:\n%s", p)
		}
	})
	t.Run("busybox users", func(t *testing.T) {
		root := unpack(t, mustImage(t, images, RefE2EBusybox))
		p := read(t, root, "etc/passwd")
		for _, u := range []string{"\nnobody:x:65534:65534:", "\nwww-data:x:33:33:"} {
			if !strings.Contains(p, u) {
				t.Errorf("/etc/passwd lacks %q:\n%s", u, p)
			}
		}
	})
	t.Run("marker files", func(t *testing.T) {
		for ref, file := range map[string]string{RefTestImage2: "test-image-2", RefTestImageTagAll: "all", RefTestImageTags3: "same-image"} {
			root := unpack(t, mustImage(t, images, ref))
			if _, err := os.Stat(filepath.Join(root, file)); err != nil {
				t.Errorf("%s: %v", ref, err)
			}
		}
	})
	t.Run("nnp is setuid root", func(t *testing.T) {
		root := unpack(t, mustImage(t, images, RefE2ENonewprivs))
		st, err := os.Stat(filepath.Join(root, "usr/local/bin/nnp"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode()&os.ModeSetuid == 0 {
			t.Errorf("nnp mode %v, want setuid", st.Mode())
		}
	})
}

// TestCritestProgramsRun runs the stand-ins as critest's specs do: nnp as
// user 1000 with and without no_new_privs, and the web servers in fresh
// namespaces, where critest looks at their pid file, command line, port
// and log.
func TestCritestProgramsRun(t *testing.T) {
	images := testImages(t)
	requireRoot(t)

	t.Run("nnp", func(t *testing.T) {
		root := unpack(t, mustImage(t, images, RefE2ENonewprivs))
		if out := run(t, "chroot", "--userspec=1000:1000", root, "/usr/local/bin/nnp"); out != "Effective uid: 0\n" {
			t.Errorf("nnp without no_new_privs printed %q", out)
		}
		out := run(t, "setpriv", "--no-new-privs", "chroot", "--userspec=1000:1000", root, "/usr/local/bin/nnp")
		if out != "Effective uid: 1000\n" {
			t.Errorf("nnp with no_new_privs printed %q", out)
		}
	})

	for _, tc := range []struct {
		ref, start, port, want string
	}{
		{RefE2ENginx, "nginx -g 'daemon off;'", "80", "Welcome to nginx!"},
		{RefHostnetNginx, "nginx -g 'daemon off;'", "12003", "Welcome to nginx!"},
		{RefE2EHttpd, "cd /usr/local/apache2 && httpd-foreground", "80", "It works!"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			root := unpack(t, mustImage(t, images, tc.ref))
			// In the image: start the server, wait for its port, fetch
			// the page, then show the process as pidof and /proc see it.
			script := "export PATH=" + strings.TrimPrefix(pathEnv, "PATH=") + "\n" +
				"ip link set lo up\n" +
				"(" + tc.start + ") >/tmp/log 2>&1 &\n" +
				"for i in $(seq 50); do wget -q -O /tmp/page http://127.0.0.1:" + tc.port + "/ && break; sleep 0.1; done\n" +
				"cat /tmp/page\n" +
				"pid=$(cat /var/run/nginx.pid /usr/local/apache2/logs/httpd.pid 2>/dev/null)\n" +
				"echo \"pidfile=$pid\"\n" +
				"echo \"pidof=$(pidof nginx)\"\n" +
				"echo \"cmdline=$(tr '\\0' ' ' </proc/$pid/cmdline)\"\n" +
				"echo \"log=$(cat /tmp/log)\"\n"
			if err := os.WriteFile(filepath.Join(root, "check.sh"), []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			out := inNamespaces(t, root, `unshare --net chroot "$R" /bin/sh /check.sh`)
			t.Logf("%s", out)
			if !strings.Contains(out, tc.want) {
				t.Errorf("page lacks %q", tc.want)
			}
			fields := map[string]string{}
			for _, line := range strings.Split(out, "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					fields[k] = strings.TrimSpace(v)
				}
			}
			if fields["pidfile"] == "" {
				t.Errorf("no pid file")
			}
			if tc.ref != RefE2EHttpd && fields["pidof"] != fields["pidfile"] {
				t.Errorf("pidof nginx %q, pid file %q: want one and the same pid", fields["pidof"], fields["pidfile"])
			}
			if tc.ref != RefE2EHttpd && !strings.Contains(fields["cmdline"], "master process") {
				t.Errorf("cmdline %q lacks \"master process\"", fields["cmdline"])
			}
			if tc.ref == RefE2EHttpd && !strings.Contains(fields["log"], "httpd") {
				t.Errorf("httpd log %q lacks \"httpd\"", fields["log"])
			}
		})
	}
}
