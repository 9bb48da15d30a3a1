package rig

import (
	"fmt"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Images that critest v1.37.0 pulls, under the names it uses (its
// pkg/framework and pkg/validate), rebuilt from busybox the way cri-tools'
// images/build script and Kubernetes' test/images build them. The one it
// asks for that the rig cannot make is
// gcr.io/k8s-staging-cri-tools/test-image-digest@sha256:9700f9a2…: it is
// pulled by the digest of upstream's exact manifest bytes.
const (
	// The default container image of every spec that runs busybox.
	RefE2EBusybox = "registry.k8s.io/e2e-test-images/busybox:1.29-2"
	// Web servers: port mapping, port forwarding, PID namespaces
	// (nginx), several containers in a pod (httpd), port forwarding in the
	// host network namespace (hostnet-nginx, listening on 12003).
	RefE2ENginx      = "registry.k8s.io/e2e-test-images/nginx:1.14-2"
	RefE2EHttpd      = "registry.k8s.io/e2e-test-images/httpd:2.4.39-4"
	RefE2ENonewprivs = "registry.k8s.io/e2e-test-images/nonewprivs:1.3"

	critestRegistry = "gcr.io/k8s-staging-cri-tools/"

	// Image Manager specs: pull by tag, without a tag, three distinct
	// images, one image under three tags, references of every kind.
	RefTestImageTag    = critestRegistry + "test-image-tag:test"
	RefTestImageTagAll = critestRegistry + "test-image-tag:all"
	RefTestImageLatest = critestRegistry + "test-image-latest:latest"
	RefTestImage1      = critestRegistry + "test-image-1:latest"
	RefTestImage2      = critestRegistry + "test-image-2:latest"
	RefTestImage3      = critestRegistry + "test-image-3:latest"
	RefTestImageTags1  = critestRegistry + "test-image-tags:1"
	RefTestImageTags2  = critestRegistry + "test-image-tags:2"
	RefTestImageTags3  = critestRegistry + "test-image-tags:3"

	// The image's USER as ImageStatus must report it (uid or username).
	RefTestImageUserUID           = critestRegistry + "test-image-user-uid:latest"
	RefTestImageUserUsername      = critestRegistry + "test-image-user-username:latest"
	RefTestImageUserUIDGroup      = critestRegistry + "test-image-user-uid-group:latest"
	RefTestImageUserUsernameGroup = critestRegistry + "test-image-user-username-group:latest"
	// USER 1000 (default-user), a member of group 50000 in /etc/group:
	// SupplementalGroupsPolicy specs and image volume subPath.
	RefTestImagePredefinedGroup = critestRegistry + "test-image-predefined-group:latest"
)

// RefHostnetNginx is named after the architecture critest runs on.
var RefHostnetNginx = critestRegistry + "hostnet-nginx-" + goarch() + ":latest"

// CritestRefs lists every image critest can pull from the rig, in the order
// BuildImages returns them.
func CritestRefs() []string {
	var refs []string
	for _, r := range critestRecipes(&layer{}, nil, nil) {
		refs = append(refs, r.ref)
	}
	return refs
}

// busybox.net's images carry this /etc/passwd and /etc/group (critest's
// specs run as www-data and nobody and read the groups of users).
const (
	upstreamPasswd = "root:x:0:0:root:/root:/bin/sh\n" +
		"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n" +
		"bin:x:2:2:bin:/bin:/bin/false\n" +
		"sys:x:3:3:sys:/dev:/bin/false\n" +
		"sync:x:4:100:sync:/bin:/bin/sync\n" +
		"mail:x:8:8:mail:/var/spool/mail:/bin/false\n" +
		"www-data:x:33:33:www-data:/var/www:/bin/false\n" +
		"operator:x:37:37:Operator:/var:/bin/false\n" +
		"nobody:x:65534:65534:nobody:/home:/bin/false\n"
	upstreamGroup = "root:x:0:\n" +
		"daemon:x:1:\n" +
		"bin:x:2:\n" +
		"sys:x:3:\n" +
		"adm:x:4:\n" +
		"tty:x:5:\n" +
		"disk:x:6:\n" +
		"lp:x:7:\n" +
		"mail:x:8:\n" +
		"kmem:x:9:\n" +
		"wheel:x:10:root\n" +
		"cdrom:x:11:\n" +
		"dialout:x:18:\n" +
		"floppy:x:19:\n" +
		"video:x:28:\n" +
		"audio:x:29:\n" +
		"tape:x:32:\n" +
		"www-data:x:33:\n" +
		"operator:x:37:\n" +
		"utmp:x:43:\n" +
		"plugdev:x:46:\n" +
		"staff:x:50:\n" +
		"lock:x:54:\n" +
		"netdev:x:82:\n" +
		"users:x:100:\n" +
		"nogroup:x:65534:\n"
)

// critestRecipes lays out critest's images on top of the rig's busybox
// layer. webserver and nnp are the static binaries of ./webserver and
// ./nnp.
func critestRecipes(base *layer, webserver, nnp []byte) []recipe {
	users := usersLayer()
	shell := func(user string) v1.ImageConfig {
		return v1.ImageConfig{User: user, Env: []string{pathEnv}, Cmd: []string{"sh"}}
	}
	// cri-tools' images/image-test: `ADD ${TEST} ${TEST}` of an empty file.
	marked := func(ref, file string) recipe {
		return recipe{ref: ref, layers: []*layer{base, users, markerLayer(file)}, config: shell("")}
	}
	// cri-tools' images/image-user: busybox with `USER ${USER}`.
	user := func(ref, u string) recipe {
		return recipe{ref: ref, layers: []*layer{base, users}, config: shell(u)}
	}
	nginxConfig := func(stop string) v1.ImageConfig {
		return v1.ImageConfig{
			Env:          []string{pathEnv, "NGINX_VERSION=1.14.2"},
			Cmd:          []string{"nginx", "-g", "daemon off;"},
			ExposedPorts: map[string]struct{}{"80/tcp": {}},
			StopSignal:   stop,
		}
	}
	// One layer for test-image-tags:1, :2 and :3, so they are one image.
	sameImage := markerLayer("same-image")
	return []recipe{
		{ref: RefE2EBusybox, layers: []*layer{base, users}, config: shell("")},
		{ref: RefE2ENginx, layers: []*layer{base, users, nginxLayer(webserver, 80)}, config: nginxConfig("SIGTERM")},
		// Upstream builds it FROM nginx:1.25, which stops with SIGQUIT.
		{ref: RefHostnetNginx, layers: []*layer{base, users, nginxLayer(webserver, 12003)}, config: nginxConfig("SIGQUIT")},
		{ref: RefE2EHttpd, layers: []*layer{base, users, httpdLayer(webserver)}, config: v1.ImageConfig{
			Env:          []string{"PATH=/usr/local/apache2/bin:" + pathEnv[len("PATH="):], "HTTPD_PREFIX=/usr/local/apache2"},
			Cmd:          []string{"httpd-foreground"},
			WorkingDir:   "/usr/local/apache2",
			ExposedPorts: map[string]struct{}{"80/tcp": {}},
			// Apache's graceful stop, as the official image has it.
			StopSignal: "SIGWINCH",
		}},
		{ref: RefE2ENonewprivs, layers: []*layer{base, users, nnpLayer(nnp)}, config: v1.ImageConfig{
			User:       "1000",
			Env:        []string{pathEnv},
			Entrypoint: []string{"/usr/local/bin/nnp"},
		}},

		marked(RefTestImageTag, "test"),
		marked(RefTestImageTagAll, "all"),
		marked(RefTestImageLatest, "test-image-latest"),
		marked(RefTestImage1, "test-image-1"),
		marked(RefTestImage2, "test-image-2"),
		marked(RefTestImage3, "test-image-3"),
		{ref: RefTestImageTags1, layers: []*layer{base, users, sameImage}, config: shell("")},
		{ref: RefTestImageTags2, layers: []*layer{base, users, sameImage}, config: shell("")},
		{ref: RefTestImageTags3, layers: []*layer{base, users, sameImage}, config: shell("")},

		user(RefTestImageUserUID, "1002"),
		user(RefTestImageUserUsername, "www-data"),
		user(RefTestImageUserUIDGroup, "1003:1004"),
		user(RefTestImageUserUsernameGroup, "www-data:1004"),
		{ref: RefTestImagePredefinedGroup, layers: []*layer{base, users, predefinedGroupLayer()}, config: shell("1000")},
	}
}

// usersLayer gives busybox upstream's users and groups.
func usersLayer() *layer {
	l := newLayer("berth-rig: busybox.net /etc/passwd and /etc/group")
	l.file("etc/passwd", 0o644, []byte(upstreamPasswd))
	l.file("etc/group", 0o644, []byte(upstreamGroup))
	return l
}

// markerLayer holds one empty file at the root, named name.
func markerLayer(name string) *layer {
	l := newLayer(fmt.Sprintf("berth-rig: ADD %s %s", name, name))
	l.file(name, 0o644, nil)
	return l
}

// predefinedGroupLayer is what cri-tools' images/image-predefined-group
// runs: `adduser -u 1000 -D default-user && addgroup -g 50000
// group-defined-in-image && addgroup default-user group-defined-in-image`.
func predefinedGroupLayer() *layer {
	l := newLayer("berth-rig: default-user 1000, member of group-defined-in-image 50000")
	l.file("etc/passwd", 0o644, []byte(upstreamPasswd+"default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n"))
	l.file("etc/group", 0o644, []byte(upstreamGroup+"default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"))
	l.dir("home/default-user", 0o755, 1000, 1000)
	return l
}

const indexHTML = `<!DOCTYPE html>
<html>
<head><title>Welcome to nginx!</title></head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. (A stand-in from berth-rig.)</p>
</body>
</html>
`

// nginxLayer installs the web server as /usr/sbin/nginx, listening on port.
func nginxLayer(webserver []byte, port int) *layer {
	l := newLayer(fmt.Sprintf("berth-rig: nginx stand-in on port %d", port))
	l.file("usr/sbin/nginx", 0o755, webserver)
	l.file("etc/nginx/conf.d/default.conf", 0o644, fmt.Appendf(nil,
		"server {\n    listen       %d;\n    server_name  localhost;\n    location / {\n        root   /usr/share/nginx/html;\n        index  index.html index.htm;\n    }\n}\n", port))
	l.file("usr/share/nginx/html/index.html", 0o644, []byte(indexHTML))
	l.dir("var/run", 0o755, 0, 0)
	l.dir("var/log/nginx", 0o755, 0, 0)
	return l
}

// httpdLayer installs the web server as Apache's httpd-foreground.
func httpdLayer(webserver []byte) *layer {
	l := newLayer("berth-rig: httpd stand-in on port 80")
	l.file("usr/local/bin/httpd-foreground", 0o755, webserver)
	l.file("usr/local/apache2/conf/httpd.conf", 0o644, []byte("ServerRoot \"/usr/local/apache2\"\nListen 80\nDocumentRoot \"/usr/local/apache2/htdocs\"\n"))
	l.file("usr/local/apache2/htdocs/index.html", 0o644, []byte("<html><body><h1>It works!</h1></body></html>\n"))
	l.dir("usr/local/apache2/logs", 0o755, 0, 0)
	return l
}

// nnpLayer installs nnp setuid root, as Kubernetes' nonewprivs image does
// (`COPY nnp /usr/local/bin/nnp; RUN chmod +s /usr/local/bin/nnp`).
func nnpLayer(nnp []byte) *layer {
	l := newLayer("berth-rig: setuid-root nnp")
	l.file("usr/local/bin/nnp", 0o6755, nnp)
	return l
}
