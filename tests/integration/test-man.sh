#!/usr/bin/env bash
# Every binary has a man page, and every page renders without groff warnings.
set -uo pipefail
bin=${1:?usage: test-man.sh CMDS_DIR}
mandir=$(cd "$(dirname "$0")/../../man" && pwd)
if ! command -v man >/dev/null; then echo "SKIP: *** man not installed ***"; exit 0; fi
for b in "$bin"/btk "$bin"/btk-*; do
    [ -x "$b" ] && [ -f "$b" ] || continue
    name=$(basename "$b")
    page=$mandir/$name.1
    if [ ! -f "$page" ]; then echo "FAIL man-$name: no man/$name.1"; continue; fi
    warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
    text=$(LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$page" 2>/dev/null | wc -l)
    if [ -n "$warn" ]; then echo "FAIL man-$name: $warn"
    elif [ "$text" -lt 10 ]; then echo "FAIL man-$name: renders only $text lines"
    else echo "PASS man-$name"; fi
done
