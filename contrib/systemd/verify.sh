#!/usr/bin/env bash
# verify.sh: `systemd-analyze verify` Berth's unit as it is installed.
#
#   contrib/systemd/verify.sh UNIT [ROOT]
#
# UNIT is an installed berth.service; ROOT is the DESTDIR it was installed
# into (default /). Works without systemd running as PID 1.
#
# `systemd-analyze verify` checks that every Exec command exists on this
# machine, so a unit staged in a DESTDIR names a binary that is not there
# yet; and `--root=DESTDIR` does not help, since it then looks for the rest
# of systemd (sysinit.target, /bin/kill) in DESTDIR too. So the unit is
# verified against this machine, from a copy whose Exec commands that exist
# under ROOT are rewritten to their ROOT path. The checked unit is otherwise
# byte for byte the installed one.
#
# verify exits 0 for bad values and unknown keys, which it only logs
# ("Unknown key ..., ignoring"); any output counts as a failure here.
set -euo pipefail

die() {
	printf 'verify.sh: %s\n' "$*" >&2
	exit 1
}

[[ $# -ge 1 && $# -le 2 ]] || die "usage: $0 UNIT [ROOT]"
unit=$1
root=${2:-/}
root=${root%/}
[[ -f $unit ]] || die "$unit does not exist"
command -v systemd-analyze >/dev/null ||
	die "systemd-analyze not found: apt-get install systemd"
if grep -q '@[A-Z_]*@' "$unit"; then
	die "$unit still holds @PLACEHOLDERS@: verify the unit make install wrote, not the template"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
copy=$tmp/$(basename "$unit")

# Rewrite Exec*=[prefixes]/abs/path ... to ROOT/abs/path when that exists.
while IFS= read -r line; do
	if [[ -n $root && $line =~ ^(Exec[A-Za-z]*=)([-@:+!]*)(/[^[:space:]]+)(.*)$ ]]; then
		cmd=${BASH_REMATCH[3]}
		if [[ -x $root$cmd ]]; then
			line=${BASH_REMATCH[1]}${BASH_REMATCH[2]}$root$cmd${BASH_REMATCH[4]}
		fi
	fi
	printf '%s\n' "$line"
done <"$unit" >"$copy"

out=$(systemd-analyze verify --man=no "$copy" 2>&1) || {
	printf '%s\n' "$out" >&2
	die "systemd-analyze verify failed on $unit"
}
if [[ -n $out ]]; then
	printf '%s\n' "$out" >&2
	die "systemd-analyze verify complained about $unit"
fi
echo "verify.sh: $unit passes systemd-analyze verify"
