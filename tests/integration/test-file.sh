#!/usr/bin/env bash
# btk file ls / cat against the kernel: for corpus images, `ls -R` must list
# exactly the paths `find` sees on a read-only mount (nested subvolumes
# included), `ls -l` must show the sizes and modes stat shows, and `cat` of
# every regular file must equal the mounted file's content. Also --subvol,
# and one-line errors for bad paths.
set -uo pipefail
bin=${1:?usage: test-file.sh CMDS_DIR}
corpus=${CORPUS_DIR:-}
if [ "$(id -u)" != 0 ] || [ ! -e /dev/loop-control ]; then
    echo "SKIP: *** file tests need root and loop devices ***"; exit 0
fi
if [ -z "$corpus" ] || ! ls "$corpus"/*.img >/dev/null 2>&1; then
    echo "SKIP: *** no corpus images in '${corpus}' ***"; exit 0
fi
tmp=$(mktemp -d /tmp/btk-file.XXXXXX)
mnt=$tmp/mnt && mkdir -p "$mnt"
trap 'mountpoint -q "$mnt" && umount "$mnt"; rm -rf "$tmp"' EXIT
# Relative paths under a directory, escaped as btk escapes names (\ooo for
# control characters, DEL and backslash).
listing() {
    python3 - "$1" <<'PY'
import os, sys
top = sys.argv[1].encode()
out = []
for root, dirs, files in os.walk(top):
    for n in dirs + files:
        out.append(os.path.relpath(os.path.join(root, n), top))
def esc(rel):
    r = []
    for b in rel:
        r.append("\\%03o" % b if (b < 0x20 or b == 0x7f or b == 0x5c) else bytes([b]).decode("latin-1"))
    return "".join(r)
res = sorted(esc(x) for x in out)
sys.stdout.buffer.write(("\n".join(res) + "\n").encode("latin-1") if res else b"")
PY
}
plain() { grep -a -v -P '[\x00-\x1f\x7f\\]' ; }  # ls -l and stat lines without escapes

for name in csum-crc32c compress-zstd compress-lzo subvols reflink prealloc-holes special-files hardlinks bigdir mixed; do
    img=$corpus/$name.img
    [ -f "$img" ] || { echo "SKIP file-$name: no image"; continue; }
    mount -o loop,ro "$img" "$mnt" || { echo "FAIL file-$name: cannot mount"; continue; }
    listing "$mnt" | LC_ALL=C sort >"$tmp/find.txt"
    "$bin/btk-file" ls -R "$img" / 2>"$tmp/err" | python3 -c "import sys; sys.stdout.buffer.write(b''.join(sorted(sys.stdin.buffer.readlines())))" >"$tmp/ls.txt"
    LC_ALL=C sort -o "$tmp/ls.txt" "$tmp/ls.txt"
    bad=""
    if ! diff -q "$tmp/find.txt" "$tmp/ls.txt" >/dev/null; then
        bad="ls -R differs: $(diff "$tmp/find.txt" "$tmp/ls.txt" | head -3 | tr '\n' ' ')"
    fi
    # ls -l of the top directory: mode string and size per name.
    if [ -z "$bad" ]; then
        (cd "$mnt" && for f in *; do [ -e "$f" ] || [ -L "$f" ] || continue
            stat -c '%A %s %n' -- "$f"; done) | plain | LC_ALL=C sort >"$tmp/stat.txt"
        "$bin/btk-file" ls -l "$img" / | awk '{ if ($1 ~ /^[bc]/) next; n=$8; for(i=9;i<=NF;i++) n=n" "$i; sub(/ -> .*/, "", n); print $1, $5, n }' |
            plain | LC_ALL=C sort >"$tmp/l.txt"
        grep -v '^[bc]' "$tmp/stat.txt" | awk '$1 !~ /^d/' >"$tmp/stat2.txt"
        awk '$1 !~ /^d/' "$tmp/l.txt" >"$tmp/l2.txt"
        diff -q "$tmp/stat2.txt" "$tmp/l2.txt" >/dev/null || bad="ls -l differs: $(diff "$tmp/stat2.txt" "$tmp/l2.txt" | head -3 | tr '\n' ' ')"
    fi
    # cat every regular file (up to 400 per image).
    n=0
    if [ -z "$bad" ]; then
        while IFS= read -r -d '' f; do
            rel=${f#"$mnt"}
            case "$rel" in *[[:cntrl:]]*) continue ;; esac
            if ! "$bin/btk-file" cat "$img" "$rel" 2>"$tmp/err" | cmp -s - "$f"; then
                bad="cat $rel differs: $(head -1 "$tmp/err")"; break
            fi
            n=$((n + 1))
            [ $n -ge 400 ] && break
        done < <(find "$mnt" -type f -print0)
    fi
    umount "$mnt" 2>/dev/null || { sleep 1; umount "$mnt"; }
    if [ -n "$bad" ]; then echo "FAIL file-$name: $bad"; else echo "PASS file-$name ($n files read)"; fi
done

# --subvol by path and id, and errors.
img=$corpus/subvols.img
if [ -f "$img" ]; then
    mount -o loop,ro "$img" "$mnt"
    (cd "$mnt/sv1" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort) >"$tmp/find.txt"
    id=$(btrfs inspect-internal rootid "$mnt/sv1")
    umount "$mnt"
    "$bin/btk-file" ls -R --subvol /sv1 "$img" / | LC_ALL=C sort >"$tmp/a.txt"
    "$bin/btk-file" ls -R --subvol "$id" "$img" / | LC_ALL=C sort >"$tmp/b.txt"
    if cmp -s "$tmp/find.txt" "$tmp/a.txt" && cmp -s "$tmp/find.txt" "$tmp/b.txt"; then
        echo "PASS file-subvol (path and id $id)"
    else
        echo "FAIL file-subvol: $(diff "$tmp/find.txt" "$tmp/a.txt" | head -3 | tr '\n' ' ')"
    fi
    "$bin/btk-file" cat "$img" /no/such/file >/dev/null 2>"$tmp/err"; rc=$?
    if [ $rc -ne 0 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q "no such file" "$tmp/err"; then
        echo "PASS file-missing-path (exit $rc, one error line)"
    else
        echo "FAIL file-missing-path: exit $rc: $(cat "$tmp/err")"
    fi
    "$bin/btk-file" cat "$img" / >/dev/null 2>"$tmp/err"; rc=$?
    if [ $rc -ne 0 ] && grep -q "Is a directory" "$tmp/err"; then echo "PASS file-cat-dir"; else echo "FAIL file-cat-dir: $rc $(cat "$tmp/err")"; fi
    "$bin/btk-file" ls "$tmp/nonexistent.img" / >/dev/null 2>"$tmp/err"; rc=$?
    if [ $rc = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ]; then echo "PASS file-bad-image"; else echo "FAIL file-bad-image: $rc $(cat "$tmp/err")"; fi
fi
