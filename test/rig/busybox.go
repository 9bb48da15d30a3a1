package rig

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// DefaultDepsCache is where contrib/install-deps.sh leaves the dynamically
// linked Debian busybox (extracted, bin/busybox inside); BERTH_DEPS_CACHE
// overrides it for both.
const DefaultDepsCache = "/var/cache/berth-deps"

// busyboxSource is the busybox binary the images are built from, plus the
// shared libraries it needs at run time.
type busyboxSource struct {
	path    string
	dynamic bool
	libs    []string // absolute paths as the loader looks them up (ldd's view)
	applets []string // sorted
}

// busyboxCandidates lists where to look, best first: an explicit override,
// Debian's dynamic busybox from install-deps.sh, then busybox-static. The
// dynamic one comes first because the static build runs applets in-process,
// which defeats the masked-path checks of critest (see MACHINE.md).
func busyboxCandidates() []string {
	var c []string
	if p := os.Getenv("BERTH_RIG_BUSYBOX"); p != "" {
		c = append(c, p)
	}
	cache := os.Getenv("BERTH_DEPS_CACHE")
	if cache == "" {
		cache = DefaultDepsCache
	}
	return append(c, filepath.Join(cache, "busybox", "bin", "busybox"), "/bin/busybox", "/usr/bin/busybox")
}

// findBusybox picks the first usable candidate and inspects it.
func findBusybox(ctx context.Context) (*busyboxSource, error) {
	var tried []string
	for _, p := range busyboxCandidates() {
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			tried = append(tried, p)
			continue
		}
		src := &busyboxSource{path: p}
		var err error
		if src.dynamic, err = isDynamic(p); err != nil {
			return nil, err
		}
		if src.dynamic {
			if src.libs, err = sharedLibs(ctx, p); err != nil {
				return nil, err
			}
		}
		if src.applets, err = applets(ctx, p); err != nil {
			return nil, err
		}
		return src, nil
	}
	return nil, fmt.Errorf("find busybox: none of %s exists; run contrib/install-deps.sh", strings.Join(tried, ", "))
}

// isDynamic reports whether the ELF binary at p asks for a program
// interpreter, i.e. is dynamically linked.
func isDynamic(p string) (bool, error) {
	f, err := elf.Open(p)
	if err != nil {
		return false, fmt.Errorf("inspect %s: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return true, nil
		}
	}
	return false, nil
}

// sharedLibs asks ldd which libraries the loader would map for p, including
// the loader itself. The vdso has no path and is skipped.
func sharedLibs(ctx context.Context, p string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ldd", p).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", p, exitDetail(err))
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
		// "/lib64/ld-linux-x86-64.so.2 (0x...)".
		line := strings.TrimSpace(sc.Text())
		if _, after, ok := strings.Cut(line, "=>"); ok {
			line = strings.TrimSpace(after)
		}
		f := strings.Fields(line)
		if len(f) == 0 || !filepath.IsAbs(f[0]) {
			if strings.Contains(line, "not found") {
				return nil, fmt.Errorf("ldd %s: missing library: %s", p, sc.Text())
			}
			continue
		}
		libs = append(libs, f[0])
	}
	slices.Sort(libs)
	return slices.Compact(libs), nil
}

// applets lists the busybox's applet names.
func applets(ctx context.Context, p string) ([]string, error) {
	out, err := exec.CommandContext(ctx, p, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", p, exitDetail(err))
	}
	var names []string
	for _, n := range strings.Fields(string(out)) {
		if n != "busybox" && !strings.Contains(n, "/") {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s --list: no applets", p)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// pathEnv is the PATH of every rig image, Docker's default.
const pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

const (
	passwdBase = "root:x:0:0:root:/root:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	groupBase = "root:x:0:\n" +
		"nobody:x:65534:\n"
	// nsswitch.conf: glibc's defaults without one are close, but spelling
	// them out keeps lookups to files (no DNS stalls for user names).
	nsswitchConf = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"
)

// standIns are shell versions of tools critest runs inside containers that
// Debian's busybox does not build. They are used only when the busybox lacks
// the applet.
var standIns = map[string]string{
	// critest: `sh -c "pgrep sleep || true"`. Matches the process name
	// (comm) as an extended regex, or the command line with -f; -x anchors.
	"pgrep": `#!/bin/sh
# pgrep stand-in from berth-rig (this busybox has no pgrep applet).
full=0 exact=0
while [ $# -gt 0 ]; do
	case $1 in
	-f) full=1 ;;
	-x) exact=1 ;;
	-fx|-xf) full=1 exact=1 ;;
	--) shift; break ;;
	-*) ;;
	*) break ;;
	esac
	shift
done
[ $# -ge 1 ] || { echo "usage: pgrep [-f] [-x] PATTERN" >&2; exit 2; }
pat=$1
[ $exact = 1 ] && pat="^($pat)\$"
self=$(tr '\0' ' ' </proc/$$/cmdline)
rc=1
for d in /proc/[0-9]*; do
	pid=${d#/proc/}
	[ "$pid" = "$$" ] && continue
	cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
	# Skip our own subshells, which share our command line.
	[ "$cmd" = "$self" ] && continue
	if [ $full = 1 ]; then
		name=${cmd% }
	else
		name=$(cat "$d/comm" 2>/dev/null) || continue
	fi
	[ -n "$name" ] || continue
	if printf '%s\n' "$name" | grep -qE -- "$pat"; then
		echo "$pid"
		rc=0
	fi
done
exit $rc
`,
	// critest: `ipcs -m`, then looks for a segment id made by ipcmk on the
	// host. Reads the kernel's tables directly.
	"ipcs": `#!/bin/sh
# ipcs stand-in from berth-rig (this busybox has no ipcs applet).
show() {
	[ -r "$2" ] || return 0
	echo
	echo "------ $1 --------"
	# The kernel prints keys as signed decimals, ipcs as hex; busybox awk's
	# %x stops at 2^31, hence the two halves. Perms are already octal.
	case $1 in
	Shared*)
		echo "key        shmid      owner      perms      bytes      nattch"
		awk 'NR > 1 { k = $1 < 0 ? $1 + 4294967296 : $1; printf "0x%04x%04x %-10s %-10s %-10s %-10s %-10s\n", int(k / 65536), k % 65536, $2, $8, $3, $4, $7 }' "$2" ;;
	Semaphore*)
		echo "key        semid      owner      perms      nsems"
		awk 'NR > 1 { k = $1 < 0 ? $1 + 4294967296 : $1; printf "0x%04x%04x %-10s %-10s %-10s %-10s\n", int(k / 65536), k % 65536, $2, $5, $3, $4 }' "$2" ;;
	Message*)
		echo "key        msqid      owner      perms      used-bytes messages"
		awk 'NR > 1 { k = $1 < 0 ? $1 + 4294967296 : $1; printf "0x%04x%04x %-10s %-10s %-10s %-10s %-10s\n", int(k / 65536), k % 65536, $2, $8, $3, $4, $5 }' "$2" ;;
	esac
}
what=all
for a in "$@"; do
	case $a in
	-m) what=m ;;
	-s) what=s ;;
	-q) what=q ;;
	esac
done
[ $what = all ] || [ $what = q ] && show "Message Queues" /proc/sysvipc/msg
[ $what = all ] || [ $what = m ] && show "Shared Memory Segments" /proc/sysvipc/shm
[ $what = all ] || [ $what = s ] && show "Semaphore Arrays" /proc/sysvipc/sem
exit 0
`,
}

// busyboxLayer is the base filesystem of every shell image: busybox with its
// applets as hard links in /bin (a symlink would make masking /bin/ls mask
// busybox itself), the libraries it links, and a minimal /etc.
func busyboxLayer(src *busyboxSource) (*layer, error) {
	kind := "static"
	if src.dynamic {
		kind = "dynamic"
	}
	l := newLayer(fmt.Sprintf("berth-rig: %s busybox with hard-linked applets", kind))
	for _, d := range []string{"bin", "dev", "etc", "home", "proc", "sys", "usr", "usr/bin", "var"} {
		l.dir(d, 0o755, 0, 0)
	}
	l.dir("root", 0o700, 0, 0)
	l.dir("tmp", 0o1777, 0, 0)
	l.dir("var/tmp", 0o1777, 0, 0)

	bb, err := os.ReadFile(src.path)
	if err != nil {
		return nil, fmt.Errorf("read busybox %s: %w", src.path, err)
	}
	l.file("bin/busybox", 0o755, bb)
	for _, a := range src.applets {
		l.hardlink("bin/"+a, "bin/busybox")
	}
	// Scripts with "#!/usr/bin/env ..." are common enough to be worth one link.
	if slices.Contains(src.applets, "env") {
		l.hardlink("usr/bin/env", "bin/busybox")
	}
	for name, script := range standIns {
		if !slices.Contains(src.applets, name) {
			l.file("bin/"+name, 0o755, []byte(script))
		}
	}
	if err := addLibs(l, src.libs); err != nil {
		return nil, err
	}
	l.file("etc/passwd", 0o644, []byte(passwdBase))
	l.file("etc/group", 0o644, []byte(groupBase))
	l.file("etc/nsswitch.conf", 0o644, []byte(nsswitchConf))
	return l, nil
}

// addLibs puts each library where the loader looks for it (ldd's path), as a
// regular file with the content of the resolved host file, so the image
// needs none of the host's /lib -> usr/lib symlinks.
func addLibs(l *layer, libs []string) error {
	for _, lib := range libs {
		data, err := os.ReadFile(lib)
		if err != nil {
			return fmt.Errorf("read library %s: %w", lib, err)
		}
		l.file(lib, 0o755, data)
	}
	return nil
}

// exitDetail adds a failed command's stderr to its error.
func exitDetail(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}
