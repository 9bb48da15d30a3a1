#!/usr/bin/env bash
# stress.sh CMD...: runs CMD while stress-ng keeps every core busy, and
# stops the hog however CMD ends. Exits with CMD's status.
set -uo pipefail
command -v stress-ng >/dev/null || { echo "stress: stress-ng is missing; run contrib/install-deps.sh" >&2; exit 1; }
stress-ng --cpu 0 --timeout 3h --quiet &
hog=$!
trap 'kill $hog 2>/dev/null; wait $hog 2>/dev/null' EXIT
echo "stress: stress-ng --cpu 0 (pid $hog) keeps all $(nproc) cores busy"
"$@"
