package rig

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Images that Kubernetes' node e2e suite (e2e_node.test v1.37.2, focus
// [NodeConformance], --prepull-images=false) pulls, under the names its
// test/utils/image/manifest.go gives them; test/nodee2e/IMAGES.md says which
// specs use each and what they need of it. They are built apart from
// BuildImages' images (BuildNodeE2EImages) because they need inputs the rest
// does not: a static agnhost binary and a few host programs.
const (
	nodeE2ERegistry = "registry.k8s.io/e2e-test-images/"

	// The suite's default image: busybox (with a shell that keeps
	// environment variables whose names are not shell identifiers).
	RefNodeE2EBusybox = nodeE2ERegistry + "busybox:1.37.0-2"
	// agnhost, current and previous (the Pods lifecycle spec patches one
	// into the other, so they must be distinct images).
	RefNodeE2EAgnhost     = nodeE2ERegistry + "agnhost:2.66.1"
	RefNodeE2EAgnhostPrev = nodeE2ERegistry + "agnhost:2.55"
	RefNodeE2ENginx       = nodeE2ERegistry + "nginx:1.27.0-2"
	// Setuid-root nnp, without USER: the specs set runAsUser.
	RefNodeE2ENonewprivs = nodeE2ERegistry + "nonewprivs:1.4"
	// busybox with USER 1234.
	RefNodeE2ENonroot = nodeE2ERegistry + "nonroot:1.5"
	// pause as an ordinary container image (the sandbox image is RefPause).
	RefNodeE2EPause = "registry.k8s.io/pause:3.10.2"
	// busybox with glibc's hostname, for `hostname -f` through NSS.
	RefNodeE2EGlibcDNSTesting = nodeE2ERegistry + "glibc-dns-testing:2.1.1"
	// busybox with util-linux's ipcs.
	RefNodeE2EIPCUtils = nodeE2ERegistry + "ipc-utils:1.4"
)

// nodeE2EDir is BuildNodeE2EImages' subdirectory of the image dir: its own
// lock, images.json and layouts, so its builds and BuildImages' never
// invalidate or wait for each other.
const nodeE2EDir = "node-e2e"

// kubernetesVersion is the module whose agnhost the images are laid out for;
// its test/images/agnhost/porter holds the key pair agnhost's image carries.
const kubernetesVersion = "v1.37.2"

// The host programs the images carry, at their Debian paths (packages curl,
// bash, netcat-openbsd, hostname, util-linux).
const (
	hostCurl     = "/usr/bin/curl"
	hostBash     = "/bin/bash"
	hostHostname = "/bin/hostname"
	hostIpcs     = "/usr/bin/ipcs"
	hostNc       = "/usr/bin/nc.openbsd"
	nssFilesLib  = "libnss_files.so.2"
)

// agnhostPorts are the ports agnhost's Dockerfile exposes.
var agnhostPorts = []string{"80/tcp", "8080/tcp", "8081/tcp", "9376/tcp", "5000/tcp"}

// NodeE2ERefs lists every image BuildNodeE2EImages makes, in the order it
// returns them.
func NodeE2ERefs() []string {
	var refs []string
	for _, r := range nodeE2ERecipes(nodeE2ELayers{}) {
		refs = append(refs, r.ref)
	}
	return refs
}

// nodeE2ELayers are the layers the node e2e images are made of.
type nodeE2ELayers struct {
	base, users   *layer // BuildImages' busybox layer, busybox.net's users
	pause         *layer // static pause at /pause
	nginx, nnp    *layer // the rig's nginx (port 80) and setuid nnp stand-ins
	sh            *layer // bash as /bin/sh (busybox)
	agnhostTools  *layer // curl and bash (agnhost)
	agnhost       *layer // agnhost's files, users and groups
	hostname, ipc *layer // glibc's hostname (glibc-dns-testing), ipcs (ipc-utils)
}

// nodeE2ERecipes lays out the node e2e images. Each gets an
// org.opencontainers.image.version label equal to its tag, so agnhost 2.55
// and 2.66.1, which share every layer, are distinct images.
func nodeE2ERecipes(l nodeE2ELayers) []recipe {
	shell := func(user string) v1.ImageConfig {
		return v1.ImageConfig{User: user, Env: []string{pathEnv}, Cmd: []string{"sh"}}
	}
	agnhostConfig := v1.ImageConfig{
		Env:          []string{pathEnv},
		Entrypoint:   []string{"/agnhost"},
		Cmd:          []string{"pause"},
		ExposedPorts: map[string]struct{}{},
	}
	for _, p := range agnhostPorts {
		agnhostConfig.ExposedPorts[p] = struct{}{}
	}
	agnhostLayers := []*layer{l.base, l.users, l.agnhostTools, l.agnhost}
	all := []recipe{
		{ref: RefNodeE2EBusybox, layers: []*layer{l.base, l.users, l.sh}, config: shell("")},
		{ref: RefNodeE2EAgnhost, layers: agnhostLayers, config: agnhostConfig},
		{ref: RefNodeE2EAgnhostPrev, layers: agnhostLayers, config: agnhostConfig},
		{ref: RefNodeE2ENginx, layers: []*layer{l.base, l.users, l.nginx}, config: v1.ImageConfig{
			Env:          []string{pathEnv, "NGINX_VERSION=1.27.0"},
			Cmd:          []string{"nginx", "-g", "daemon off;"},
			ExposedPorts: map[string]struct{}{"80/tcp": {}},
			// nginx 1.27's official image stops with SIGQUIT.
			StopSignal: "SIGQUIT",
		}},
		// Upstream: FROM alpine, COPY nnp, chmod +s, CMD ["nnp"]; no USER.
		{ref: RefNodeE2ENonewprivs, layers: []*layer{l.base, l.users, l.nnp}, config: v1.ImageConfig{
			Env: []string{pathEnv},
			Cmd: []string{"nnp"},
		}},
		{ref: RefNodeE2ENonroot, layers: []*layer{l.base, l.users}, config: shell("1234")},
		{ref: RefNodeE2EPause, layers: []*layer{l.pause}, config: pauseConfig("") /* version label set below */},
		{ref: RefNodeE2EGlibcDNSTesting, layers: []*layer{l.base, l.users, l.hostname}, config: shell("")},
		{ref: RefNodeE2EIPCUtils, layers: []*layer{l.base, l.users, l.ipc}, config: shell("")},
	}
	for i := range all {
		_, tag := splitRef(all[i].ref)
		all[i].config.Labels = map[string]string{v1.AnnotationVersion: tag}
	}
	return all
}

// hostTool is a host program copied into an image with the shared libraries
// it loads.
type hostTool struct {
	src  string   // on the host
	dst  string   // in the image
	libs []string // ldd's view, as for busybox; none if static
}

// findHostTool inspects the host program src, to go to dst in an image.
func findHostTool(ctx context.Context, src, dst, pkg string) (hostTool, error) {
	if st, err := os.Stat(src); err != nil {
		return hostTool{}, fmt.Errorf("find %s (Debian package %s; run contrib/install-deps.sh): %w", src, pkg, err)
	} else if !st.Mode().IsRegular() {
		return hostTool{}, fmt.Errorf("find %s (Debian package %s): not a regular file", src, pkg)
	}
	t := hostTool{src: src, dst: dst}
	dynamic, err := isDynamic(src)
	if err != nil {
		return hostTool{}, err
	}
	if dynamic {
		if t.libs, err = sharedLibs(ctx, src); err != nil {
			return hostTool{}, err
		}
	}
	return t, nil
}

// files are the host files the tool brings into an image.
func (t hostTool) files() []string { return append([]string{t.src}, t.libs...) }

// hostToolsLayer holds the tools and every library they load, each library
// at the path the loader looks it up, as busyboxLayer has busybox's. link
// adds hard links, name to target, both image paths of the layer.
func hostToolsLayer(comment string, tools []hostTool, link map[string]string) (*layer, error) {
	l := newLayer(comment)
	var libs []string
	for _, t := range tools {
		data, err := os.ReadFile(t.src)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", t.src, err)
		}
		l.file(t.dst, 0o755, data)
		libs = append(libs, t.libs...)
	}
	if err := addLibs(l, libs); err != nil {
		return nil, err
	}
	for name, target := range link {
		l.hardlink(name, target)
	}
	return l, nil
}

// agnhostLayer lays agnhost out as test/images/agnhost/Dockerfile does:
// /agnhost and the symlink /agnhost-2 (entrypoint-tester specs run it under
// that name), /uploads (netexec), porter's /localhost.crt and
// /localhost.key (left out if cert is nil), and
// `adduser -u 1000 -D user-defined-in-image && addgroup -g 50000
// group-defined-in-image && addgroup user-defined-in-image
// group-defined-in-image` on top of busybox.net's users. Not reproduced:
// /var/registry (fake-registry-server content, fetched with crane; used by
// [Serial] specs) and /coredns, dig and the other alpine packages but curl
// and bash (which agnhostTools carries).
func agnhostLayer(agnhost, cert, key []byte) *layer {
	l := newLayer("berth-rig: agnhost, laid out as test/images/agnhost/Dockerfile")
	l.file("agnhost", 0o755, agnhost)
	l.symlink("agnhost-2", "agnhost")
	l.dir("uploads", 0o755, 0, 0)
	if cert != nil {
		l.file("localhost.crt", 0o644, cert)
		l.file("localhost.key", 0o644, key)
	}
	l.file("etc/passwd", 0o644, []byte(upstreamPasswd+
		"user-defined-in-image:x:1000:1000:Linux User,,,:/home/user-defined-in-image:/bin/sh\n"))
	l.file("etc/group", 0o644, []byte(upstreamGroup+
		"user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n"))
	l.dir("home/user-defined-in-image", 0o755, 1000, 1000)
	return l
}

// nodeE2ESource is part of BuildNodeE2EImages' cache key (with everything
// BuildImages' key covers), and not of BuildImages': editing these recipes
// rebuilds only the node e2e images.
//
//go:embed nodee2e.go
var nodeE2ESource []byte

// nodeE2EInputs is everything a node e2e build depends on.
type nodeE2EInputs struct {
	rig          *buildInputs // busybox, go, the rig's sources
	agnhost      string       // absolute path of the static agnhost
	cert, tlsKey []byte       // porter's pair; nil if the module cache lacks it
	curl         hostTool
	nc           hostTool // OpenBSD netcat: busybox's has no -u
	bash         hostTool
	hostname     hostTool
	nssFiles     hostTool
	ipcs         hostTool
	hashed       []string // files whose content is in key, in order
	key          string
}

func gatherNodeE2EInputs(ctx context.Context, agnhost string) (*nodeE2EInputs, error) {
	rigIn, err := gatherInputs(ctx)
	if err != nil {
		return nil, err
	}
	in := &nodeE2EInputs{rig: rigIn}
	if in.agnhost, err = filepath.Abs(agnhost); err != nil {
		return nil, fmt.Errorf("resolve agnhost %s: %w", agnhost, err)
	}
	if st, err := os.Stat(in.agnhost); err != nil {
		return nil, fmt.Errorf("agnhost binary: %w", err)
	} else if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("agnhost binary %s is not an executable file", in.agnhost)
	}
	if dynamic, err := isDynamic(in.agnhost); err != nil {
		return nil, err
	} else if dynamic {
		return nil, fmt.Errorf("agnhost binary %s is dynamically linked; build it with CGO_ENABLED=0", in.agnhost)
	}

	// The alpine packages of upstream's agnhost that the selected specs
	// call: curl (exec hooks, DialFromContainer) and /bin/bash (probes).
	if in.curl, err = findHostTool(ctx, hostCurl, "usr/bin/curl", "curl"); err != nil {
		return nil, err
	}
	if in.bash, err = findHostTool(ctx, hostBash, "bin/bash", "bash"); err != nil {
		return nil, err
	}
	// The networking specs' `nc -w 1 -u IP PORT` (alpine's busybox nc
	// speaks UDP; Debian's does not build -u).
	if in.nc, err = findHostTool(ctx, hostNc, "bin/nc", "netcat-openbsd"); err != nil {
		return nil, err
	}
	if in.hostname, err = findHostTool(ctx, hostHostname, "bin/hostname", "hostname"); err != nil {
		return nil, err
	}
	if in.ipcs, err = findHostTool(ctx, hostIpcs, "usr/bin/ipcs", "util-linux"); err != nil {
		return nil, err
	}
	// NSS's files module lives beside the libc hostname loads (since glibc
	// 2.34 it is a stub and libc resolves files itself, but an NSS
	// configuration naming "files" may still look for it).
	for _, lib := range in.hostname.libs {
		if filepath.Base(lib) == "libc.so.6" {
			p := filepath.Join(filepath.Dir(lib), nssFilesLib)
			if in.nssFiles, err = findHostTool(ctx, p, p, "libc6"); err != nil {
				return nil, err
			}
		}
	}
	if in.nssFiles.src == "" {
		return nil, fmt.Errorf("find %s: %s does not load libc.so.6 (ldd: %v)", nssFilesLib, hostHostname, in.hostname.libs)
	}

	out, err := exec.CommandContext(ctx, rigIn.goBin, "env", "GOMODCACHE").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOMODCACHE: %w", exitDetail(err))
	}
	porter := filepath.Join(strings.TrimSpace(string(out)), "k8s.io", "kubernetes@"+kubernetesVersion, "test", "images", "agnhost", "porter")
	cert, certErr := os.ReadFile(filepath.Join(porter, "localhost.crt"))
	key, keyErr := os.ReadFile(filepath.Join(porter, "localhost.key"))
	if certErr == nil && keyErr == nil {
		in.cert, in.tlsKey = cert, key
	}

	h := sha256.New()
	fmt.Fprintf(h, "rig %s\nsource nodee2e.go %x\n", rigIn.key, sha256.Sum256(nodeE2ESource))
	fmt.Fprintf(h, "porter crt %x key %x (present %v)\n", sha256.Sum256(in.cert), sha256.Sum256(in.tlsKey), in.cert != nil)
	in.hashed = []string{in.agnhost}
	for _, t := range []hostTool{in.curl, in.bash, in.nc, in.hostname, in.nssFiles, in.ipcs} {
		in.hashed = append(in.hashed, t.files()...)
	}
	for _, p := range in.hashed {
		sum, err := sha256File(p)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h, "file %s %s\n", p, sum)
	}
	in.key = fmt.Sprintf("%x", h.Sum(nil))
	return in, nil
}

// BuildNodeE2EImages builds the node e2e suite's images (NodeE2ERefs) as OCI
// image layouts under dir/node-e2e/oci/<name> and returns them in a fixed
// order. agnhost is the path of a static agnhost binary the caller built
// (CGO_ENABLED=0 go build k8s.io/kubernetes/test/images/agnhost: the berth
// module does not require k8s.io/kubernetes). dir may be BuildImages' dir:
// this build keeps to its own subdirectory, lock and cache key, so neither
// disturbs the other. The key covers what BuildImages' does plus these
// recipes, agnhost's content, porter's key pair and the host programs and
// libraries copied in, so a build is reused (as BuildImages reuses its own)
// until one of them changes.
func BuildNodeE2EImages(ctx context.Context, dir, agnhost string) ([]Image, error) {
	var in *nodeE2EInputs
	return buildCached(filepath.Join(dir, nodeE2EDir), func() (key string, err error) {
		in, err = gatherNodeE2EInputs(ctx, agnhost)
		if err != nil {
			return "", err
		}
		return in.key, nil
	}, func(stagingRoot, finalRoot string) ([]Image, error) {
		return buildNodeE2E(ctx, in, stagingRoot, finalRoot)
	})
}

func buildNodeE2E(ctx context.Context, in *nodeE2EInputs, stagingRoot, finalRoot string) ([]Image, error) {
	pauseBin, err := buildProgram(ctx, in.rig.goBin, "pause", pauseSource)
	if err != nil {
		return nil, err
	}
	webserverBin, err := buildProgram(ctx, in.rig.goBin, "webserver", webserverSource)
	if err != nil {
		return nil, err
	}
	nnpBin, err := buildProgram(ctx, in.rig.goBin, "nnp", nnpSource)
	if err != nil {
		return nil, err
	}
	agnhostBin, err := os.ReadFile(in.agnhost)
	if err != nil {
		return nil, fmt.Errorf("read agnhost: %w", err)
	}
	l := nodeE2ELayers{
		users:   usersLayer(),
		pause:   pauseLayer(pauseBin),
		nginx:   nginxLayer(webserverBin, 80),
		nnp:     nnpLayer(nnpBin),
		agnhost: agnhostLayer(agnhostBin, in.cert, in.tlsKey),
	}
	if l.base, err = busyboxLayer(in.rig.busybox); err != nil {
		return nil, err
	}
	// Debian's busybox 1.35 ash drops environment variables whose names
	// are not shell identifiers ("data-1", "p-data-1", "1-data-1", ...)
	// when it starts, so no child of `sh -c env` (the ConfigMap and Secret
	// envFrom specs) sees them, whatever its env is: replacing the env
	// applet cannot help. Upstream's busybox 1.37 keeps them, and so does
	// bash, so here /bin/sh is Debian's bash (POSIX mode when run as sh);
	// env is still busybox's, which prints them. ash stays at /bin/ash.
	sh := in.bash
	sh.dst = "bin/sh"
	if l.sh, err = hostToolsLayer("berth-rig: bash as /bin/sh (keeps env names like data-1), nmeter", []hostTool{sh}, nil); err != nil {
		return nil, err
	}
	l.sh.file("bin/nmeter", 0o755, []byte(nmeterStandIn("/bin/sh")))
	if l.agnhostTools, err = hostToolsLayer("berth-rig: curl, bash, netcat and nmeter", []hostTool{in.curl, in.bash, in.nc}, nil); err != nil {
		return nil, err
	}
	// The image-update specs restart containers on agnhost, whose
	// upstream (alpine) busybox has nmeter too; /bin/sh here is ash.
	l.agnhostTools.file("bin/nmeter", 0o755, []byte(nmeterStandIn("/bin/bash")))
	// glibc's hostname replaces busybox's applet link: `hostname -f` asks
	// NSS (files: the /etc/hosts kubelet writes) for the canonical name.
	if l.hostname, err = hostToolsLayer("berth-rig: glibc hostname, libnss_files, nsswitch.conf", []hostTool{in.hostname, in.nssFiles}, nil); err != nil {
		return nil, err
	}
	l.hostname.file("etc/nsswitch.conf", 0o644, []byte(nsswitchConf))
	// util-linux's ipcs; /bin/ipcs (the busybox layer's shell stand-in)
	// becomes a link to it, so both names run the real one.
	if l.ipc, err = hostToolsLayer("berth-rig: util-linux ipcs", []hostTool{in.ipcs}, map[string]string{"bin/ipcs": "usr/bin/ipcs"}); err != nil {
		return nil, err
	}
	return writeLayouts(nodeE2ERecipes(l), stagingRoot, finalRoot)
}

// nmeterStandIn replaces busybox's nmeter applet, which Debian's busybox
// does not build: the Containers Lifecycle specs stamp their log lines with
// `date -u +%FT$(nmeter -d0 '%3t' | head -n1)Z` and parse the stamps back.
// bash is the image's bash, which the script needs.
func nmeterStandIn(bash string) string { return "#!" + bash + "\n" + nmeterBody }

const nmeterBody = `# nmeter stand-in from berth-rig (Debian's busybox has no nmeter applet; the
# node e2e suite's containers take millisecond timestamps from
# "nmeter -d0 '%3t'"). Prints FORMAT, its %t and %Nt the time of day in UTC
# (with N digits of fractions of a second), once per line every -d ms.
# Runs in bash, for $EPOCHREALTIME.
delay=1000
while [ $# -gt 1 ]; do
	case $1 in
	-d) delay=$2; shift 2 ;;
	-d*) delay=${1#-d}; shift ;;
	*) break ;;
	esac
done
fmt=${1:-%t}
while :; do
	now=$EPOCHREALTIME
	sec=${now%.*} frac=${now#*.}000000
	hms=$(date -u -d "@$sec" +%H:%M:%S)
	out=$fmt
	for n in 1 2 3 4 5 6; do
		out=${out//%${n}t/$hms.${frac:0:$n}}
	done
	printf '%s\n' "${out//%t/$hms}" || exit 0
	[ "$delay" -gt 0 ] && sleep "$((delay / 1000)).$(printf %03d $((delay % 1000)))"
done
`
