#!/usr/bin/env bash
# install-deps.sh: install what Berth's build, integration tests, conformance
# runs (critest) and benchmarks need on a Debian 12 (bookworm) host.
#
# Idempotent and fast on a machine that already has everything: each step
# checks before it acts, and `apt-get update` runs only when something has to
# be fetched from apt. Run it as root, or as a user with sudo; the Go steps
# run as the invoking user (so GOPATH and the module cache stay theirs) and
# only the final copy into BIN_DIR is privileged.
#
# Environment knobs:
#   BERTH_DEPS_CACHE   cache directory (default /var/cache/berth-deps); the
#                      dynamically linked busybox is extracted to
#                      $BERTH_DEPS_CACHE/busybox, where test/rig looks for it
#   BERTH_DEPS_BIN     where crictl, critest and ginkgo go (default /usr/local/bin)
#   CRI_TOOLS_VERSION  cri-tools release for crictl and critest (default v1.37.0)
#   CONTAINERD2_VERSION  containerd release `make bench` compares with (default v2.4.2)
#   BERTH_CONTAINERD2_DIR  where its containerd and containerd-shim-runc-v2 go
#                      (default /usr/local/libexec/berth-bench/containerd-<version>,
#                      off PATH: Debian's containerd 1.6 stays `containerd`)
#   RUNC_VERSION       upstream runc built from its Go module (default v1.5.3):
#                      unlike Debian's 1.1.5 it makes idmapped mounts (user
#                      namespaces) and checkpoints with CRIU
#   BERTH_RUNC_PATH    where it goes (default /usr/local/sbin/runc; Debian's
#                      /usr/bin/runc stays)
#   GO                 the go command (default: go on PATH, then /usr/local/go/bin/go)
set -euo pipefail

CACHE_DIR=${BERTH_DEPS_CACHE:-/var/cache/berth-deps}
BIN_DIR=${BERTH_DEPS_BIN:-/usr/local/bin}
CRI_TOOLS_VERSION=${CRI_TOOLS_VERSION:-v1.37.0}
CONTAINERD2_VERSION=${CONTAINERD2_VERSION:-v2.4.2}
CONTAINERD2_DIR=${BERTH_CONTAINERD2_DIR:-/usr/local/libexec/berth-bench/containerd-${CONTAINERD2_VERSION#v}}
RUNC_VERSION=${RUNC_VERSION:-v1.5.3}
RUNC_PATH=${BERTH_RUNC_PATH:-/usr/local/sbin/runc}

# Debian packages. busybox-static goes on the host (a shell for debugging and
# the rig's fallback); the dynamic `busybox` package conflicts with it, so it is
# only downloaded and extracted below, never installed. curl and
# netcat-openbsd's nc (with bash, hostname and util-linux's ipcs, which every
# Debian has) are copied into the node e2e suite's image stand-ins
# (test/rig/nodee2e.go). gcc, pkg-config and
# libseccomp-dev build upstream runc (cgo, for its seccomp filters).
APT_PACKAGES=(
	crun runc conmon containernetworking-plugins iptables iproute2 util-linux
	docker-registry skopeo busybox-static containerd
	systemd iputils-ping stress-ng curl netcat-openbsd
	gcc libc6-dev pkg-config libseccomp-dev
)

log() { printf 'install-deps: %s\n' "$*"; }
die() {
	printf 'install-deps: error: %s\n' "$*" >&2
	exit 1
}

# as_root runs a command with root privileges: directly when we are root,
# through sudo otherwise.
as_root() {
	if [[ $EUID -eq 0 ]]; then
		"$@"
	else
		command -v sudo >/dev/null || die "not root and sudo is missing: run as root"
		sudo "$@"
	fi
}

# apt_update runs `apt-get update` at most once per invocation, and only when a
# step actually needs the package lists.
APT_UPDATED=0
apt_update() {
	if [[ $APT_UPDATED -eq 0 ]]; then
		log "apt-get update"
		as_root apt-get update -qq
		APT_UPDATED=1
	fi
}

# cleanup undoes temporary changes when the script exits for any reason.
CLEANUPS=()
cleanup() {
	local i
	for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do
		eval "${CLEANUPS[i]}" || true
	done
}
trap cleanup EXIT

install_apt_packages() {
	local missing=() pkg status
	for pkg in "${APT_PACKAGES[@]}"; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
		[[ $status == installed ]] || missing+=("$pkg")
	done
	if [[ ${#missing[@]} -eq 0 ]]; then
		log "apt packages: all ${#APT_PACKAGES[@]} present"
		return
	fi
	apt_update
	# docker-registry and containerd start system services from their
	# postinst; a registry on :5000 would collide with `berth-rig serve`, and
	# the tests start their own instances anyway. policy-rc.d (honoured by
	# invoke-rc.d and deb-systemd-invoke) stops that, for this install only.
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\n# temporary, from berth contrib/install-deps.sh\nexit 101\n' |
			as_root tee /usr/sbin/policy-rc.d >/dev/null
		as_root chmod 0755 /usr/sbin/policy-rc.d
		CLEANUPS+=("as_root rm -f /usr/sbin/policy-rc.d")
	fi
	log "apt-get install ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# fetch_dynamic_busybox puts Debian's dynamically linked busybox under
# $CACHE_DIR/busybox (bin/busybox inside). The test images need it rather than
# busybox-static: the static build runs applets in-process, so masking
# /bin/ls in a container would not affect `sh -c ls` (see MACHINE.md).
fetch_dynamic_busybox() {
	local root=$CACHE_DIR/busybox
	if [[ -x $root/bin/busybox ]]; then
		log "dynamic busybox: present at $root/bin/busybox"
		return
	fi
	as_root mkdir -p "$CACHE_DIR"
	local tmp
	tmp=$(mktemp -d)
	CLEANUPS+=("rm -rf '$tmp'")
	# apt-get download fetches as the unprivileged _apt user when it can;
	# a world-writable directory lets it, instead of warning about it.
	chmod 0777 "$tmp"
	if ! (cd "$tmp" && apt-get download -qq busybox) 2>/dev/null; then
		# A fresh machine may have no package lists yet.
		apt_update
		(cd "$tmp" && apt-get download -qq busybox) || die "apt-get download busybox failed"
	fi
	local deb
	deb=$(ls "$tmp"/busybox_*.deb)
	as_root cp "$deb" "$CACHE_DIR/"
	as_root rm -rf "$root.new"
	as_root mkdir -p "$root.new"
	as_root dpkg-deb -x "$deb" "$root.new"
	[[ -x $root.new/bin/busybox ]] || die "$(basename "$deb") has no bin/busybox"
	# Swap in atomically so an interrupted run never leaves a half-extracted tree.
	as_root rm -rf "$root"
	as_root mv "$root.new" "$root"
	log "dynamic busybox: extracted $(basename "$deb") to $root"
}

find_go() {
	if [[ -n ${GO:-} ]]; then
		echo "$GO"
	elif command -v go >/dev/null; then
		command -v go
	elif [[ -x /usr/local/go/bin/go ]]; then
		echo /usr/local/go/bin/go
	else
		die "go not found: install Go $(sed -n 's/^go //p' "$(dirname "$0")/../go.mod" 2>/dev/null || echo 1.26) or set GO"
	fi
}

# version_ldflags stamps the cri-tools version into the binaries, as upstream's
# Makefile does; the idempotence checks below read it back.
version_ldflags() {
	echo "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRI_TOOLS_VERSION"
}

# install_bin copies a freshly built binary into BIN_DIR (privileged).
install_bin() {
	as_root install -D -m 0755 "$1" "$BIN_DIR/$2"
}

install_crictl() {
	if [[ -x $BIN_DIR/crictl ]] && [[ $("$BIN_DIR/crictl" --version 2>/dev/null) == *"$CRI_TOOLS_VERSION"* ]]; then
		log "crictl: $CRI_TOOLS_VERSION present"
		return
	fi
	local gobin
	gobin=$(mktemp -d)
	CLEANUPS+=("rm -rf '$gobin'")
	log "crictl: go install sigs.k8s.io/cri-tools/cmd/crictl@$CRI_TOOLS_VERSION"
	GOBIN=$gobin GOFLAGS='' "$GO_CMD" install -ldflags "$(version_ldflags)" \
		"sigs.k8s.io/cri-tools/cmd/crictl@$CRI_TOOLS_VERSION"
	install_bin "$gobin/crictl" crictl
	log "crictl: installed $BIN_DIR/crictl"
}

# cri_tools_dir prints the module cache directory of cri-tools, downloading it
# if needed.
cri_tools_dir() {
	GOFLAGS='' "$GO_CMD" mod download -json "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

# The version checks capture the output instead of piping it into grep -q:
# under pipefail, grep quitting at its match makes a slow writer die of
# SIGPIPE, and a busy machine then rebuilt critest for nothing.
install_critest() {
	if [[ -x $BIN_DIR/critest ]] && [[ $("$BIN_DIR/critest" -version 2>/dev/null) == *"critest version: $CRI_TOOLS_VERSION"* ]]; then
		log "critest: $CRI_TOOLS_VERSION present"
		return
	fi
	local src work
	src=$(cri_tools_dir)
	[[ -d $src ]] || die "go mod download sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION gave no Dir"
	# critest is a test binary (`go test -c`), and the module cache is
	# read-only, so build from a writable copy.
	work=$(mktemp -d)
	CLEANUPS+=("chmod -R u+w '$work' 2>/dev/null; rm -rf '$work'")
	cp -r "$src/." "$work/"
	chmod -R u+w "$work"
	log "critest: go test -c ./cmd/critest (cri-tools $CRI_TOOLS_VERSION; takes a few minutes)"
	(cd "$work" && GOFLAGS='' GOWORK=off "$GO_CMD" test -c -ldflags "$(version_ldflags)" \
		-o "$work/critest.bin" ./cmd/critest)
	install_bin "$work/critest.bin" critest
	log "critest: installed $BIN_DIR/critest"
}

# install_ginkgo installs the ginkgo CLI that `critest -parallel N` shells out
# to; it must match the ginkgo library version critest was built with.
install_ginkgo() {
	local gomod ver
	gomod=$(cri_tools_dir)/go.mod
	ver=$(awk '$1 == "github.com/onsi/ginkgo/v2" { print $2; exit }' "$gomod")
	[[ -n $ver ]] || die "no github.com/onsi/ginkgo/v2 in $gomod"
	if [[ -x $BIN_DIR/ginkgo ]] && [[ $("$BIN_DIR/ginkgo" version 2>/dev/null) == *"${ver#v}"* ]]; then
		log "ginkgo: $ver present"
		return
	fi
	local gobin
	gobin=$(mktemp -d)
	CLEANUPS+=("rm -rf '$gobin'")
	log "ginkgo: go install github.com/onsi/ginkgo/v2/ginkgo@$ver"
	GOBIN=$gobin GOFLAGS='' "$GO_CMD" install "github.com/onsi/ginkgo/v2/ginkgo@$ver"
	install_bin "$gobin/ginkgo" ginkgo
	log "ginkgo: installed $BIN_DIR/ginkgo"
}

# install_containerd2 builds the containerd that `make bench` compares Berth
# with, and its runc shim, from the Go module (no release tarball can be
# fetched here), into CONTAINERD2_DIR. The version is stamped in as upstream's
# Makefile does, and the check reads it back from both binaries.
install_containerd2() {
	local mod=github.com/containerd/containerd/v2
	if [[ -x $CONTAINERD2_DIR/containerd && -x $CONTAINERD2_DIR/containerd-shim-runc-v2 ]] &&
		[[ $("$CONTAINERD2_DIR/containerd" --version 2>/dev/null) == *" $CONTAINERD2_VERSION "* ]] &&
		[[ $("$CONTAINERD2_DIR/containerd-shim-runc-v2" -v 2>/dev/null) == *"$CONTAINERD2_VERSION"* ]]; then
		log "containerd $CONTAINERD2_VERSION: present in $CONTAINERD2_DIR"
		return
	fi
	local gobin
	gobin=$(mktemp -d)
	CLEANUPS+=("rm -rf '$gobin'")
	log "containerd $CONTAINERD2_VERSION: go install $mod/cmd/{containerd,containerd-shim-runc-v2} (about a minute)"
	GOBIN=$gobin GOFLAGS='' CGO_ENABLED=0 "$GO_CMD" install -tags "no_btrfs no_devmapper no_zfs" \
		-ldflags "-X $mod/version.Version=$CONTAINERD2_VERSION -X $mod/version.Revision=module" \
		"$mod/cmd/containerd@$CONTAINERD2_VERSION" "$mod/cmd/containerd-shim-runc-v2@$CONTAINERD2_VERSION"
	as_root install -D -m 0755 "$gobin/containerd" "$CONTAINERD2_DIR/containerd"
	as_root install -D -m 0755 "$gobin/containerd-shim-runc-v2" "$CONTAINERD2_DIR/containerd-shim-runc-v2"
	log "containerd $CONTAINERD2_VERSION: installed in $CONTAINERD2_DIR"
}

# install_runc builds upstream runc from its Go module, with seccomp (cgo
# against libseccomp) as its release binaries have, into RUNC_PATH, where an
# admin would put an upstream runc; Debian's /usr/bin/runc is left as it is.
install_runc() {
	local want=${RUNC_VERSION#v}
	if [[ -x $RUNC_PATH && $("$RUNC_PATH" --version 2>/dev/null) == "runc version $want"* ]]; then
		log "runc $RUNC_VERSION: present at $RUNC_PATH"
		return
	fi
	local gobin
	gobin=$(mktemp -d)
	CLEANUPS+=("rm -rf '$gobin'")
	log "runc $RUNC_VERSION: go install github.com/opencontainers/runc@$RUNC_VERSION (cgo, seccomp)"
	GOBIN=$gobin GOFLAGS='' CGO_ENABLED=1 "$GO_CMD" install -tags seccomp \
		-ldflags "-X main.version=$want -X main.gitCommit=module" \
		"github.com/opencontainers/runc@$RUNC_VERSION"
	"$gobin/runc" features >/dev/null || die "the runc just built does not run"
	as_root install -D -m 0755 "$gobin/runc" "$RUNC_PATH"
	log "runc $RUNC_VERSION: installed $RUNC_PATH"
}

# fix_hybrid_cgroups makes crun usable on a cgroup v1 "hybrid" host. crun
# refuses to run ("cgroups in hybrid mode not supported, drop all controllers
# from cgroupv2") while any controller is attached to the cgroup2 mount at
# /sys/fs/cgroup/unified; on the build machines that is hugetlb, because no
# v1 hierarchy mounts it. Mounting such controllers on v1 detaches them from
# cgroup2. Not persistent across reboots, so it is re-checked on every run.
# Pure cgroup v2 (and pure v1) hosts are left alone.
fix_hybrid_cgroups() {
	local unified=/sys/fs/cgroup/unified
	if [[ $(stat -f -c %T /sys/fs/cgroup 2>/dev/null) == cgroup2fs ]]; then
		log "cgroups: unified (v2) host, nothing to do"
		return
	fi
	if [[ $(stat -f -c %T "$unified" 2>/dev/null) != cgroup2fs ]]; then
		log "cgroups: v1 without a cgroup2 mount, nothing to do"
		return
	fi
	local controllers c
	controllers=$(cat "$unified/cgroup.controllers" 2>/dev/null || true)
	if [[ -z $controllers ]]; then
		log "cgroups: hybrid host, no controllers on cgroup2, nothing to do"
		return
	fi
	for c in $controllers; do
		if mountpoint -q "/sys/fs/cgroup/$c"; then
			continue
		fi
		as_root mkdir -p "/sys/fs/cgroup/$c"
		as_root mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" ||
			die "mount cgroup v1 controller $c (crun needs it off cgroup2)"
		log "cgroups: hybrid host, mounted $c on cgroup v1 at /sys/fs/cgroup/$c so crun works"
	done
	controllers=$(cat "$unified/cgroup.controllers" 2>/dev/null || true)
	[[ -z $controllers ]] || die "controllers still on cgroup2 after mounting: $controllers"
}

main() {
	local start=$SECONDS
	install_apt_packages
	fetch_dynamic_busybox
	GO_CMD=$(find_go)
	log "using $("$GO_CMD" version)"
	install_crictl
	install_critest
	install_ginkgo
	install_containerd2
	install_runc
	fix_hybrid_cgroups
	log "done in $((SECONDS - start))s"
}

main "$@"
