#!/usr/bin/env bash
# test-corpus-smoke.sh: build a few corpus cases into a temp dir, run
# `btrfs check --readonly` on each, mount each read-only and run manifest.py.
# Also checks that file data is deterministic: csum-crc32c and csum-xxhash are
# written with the same generator, so their manifests must be identical.
# Prints PASS/FAIL lines; exits non-zero on any failure.  Needs root.
set -euo pipefail
export LC_ALL=C

HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
ROOT=$(readlink -f "$HERE/../..")
MAKE=$ROOT/tests/corpus/make-corpus.sh
MANIFEST=$ROOT/tests/tools/manifest.py
CASES=(csum-crc32c csum-xxhash special-files)

TMP=$(mktemp -d /tmp/btk-smoke.XXXXXX)
MNT=$TMP/mnt
mkdir -p "$MNT"
cleanup() {
    set +e
    mountpoint -q "$MNT" && umount "$MNT"
    rm -rf "$TMP"
}
trap cleanup EXIT

fails=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

if "$MAKE" "$TMP/corpus" "${CASES[@]}" 2>"$TMP/make.log"; then
    pass "make-corpus ${CASES[*]}"
else
    fail "make-corpus ${CASES[*]}"; sed 's/^/    /' "$TMP/make.log"
fi

for c in "${CASES[@]}"; do
    img=$TMP/corpus/$c.img
    if [[ ! -f $img ]]; then fail "$c: image missing"; continue; fi
    if btrfs check --readonly "$img" >"$TMP/$c.check" 2>&1; then
        pass "$c: btrfs check"
    else
        fail "$c: btrfs check"; sed 's/^/    /' "$TMP/$c.check" | tail -n 20
    fi
    if mount -o ro,loop "$img" "$MNT"; then
        if python3 "$MANIFEST" "$MNT" >"$TMP/$c.manifest" 2>"$TMP/$c.manifest.err" \
            && [[ $(wc -l <"$TMP/$c.manifest") -gt 1 ]]; then
            pass "$c: manifest ($(wc -l <"$TMP/$c.manifest") entries)"
        else
            fail "$c: manifest"; sed 's/^/    /' "$TMP/$c.manifest.err"
        fi
        python3 "$MANIFEST" "$MNT" | cmp -s - "$TMP/$c.manifest" \
            && pass "$c: manifest is stable" || fail "$c: manifest differs between runs"
        umount "$MNT"
    else
        fail "$c: ro mount"
    fi
done

if cmp -s "$TMP/csum-crc32c.manifest" "$TMP/csum-xxhash.manifest"; then
    pass "deterministic content (csum-crc32c == csum-xxhash manifests)"
else
    fail "deterministic content"; diff "$TMP/csum-crc32c.manifest" "$TMP/csum-xxhash.manifest" | head -n 20
fi

m=$TMP/special-files.manifest
for pat in $'^s/new%0Aline\treg\t' $'^s/socket\tsock\t' $'^s/fifo\tfifo\t0644\t42\t43\t' \
           $'^s/big-devnum\tchr\t.*\t4095:1048575\t' $'^s/setuid\treg\t4755\t' $'^s/long-link\tlnk\t.*\t4000\t'; do
    if grep -q "$pat" "$m" 2>/dev/null; then pass "special-files: /$pat/"; else fail "special-files: missing /$pat/"; fi
done

if [[ $fails -ne 0 ]]; then echo "$fails failure(s)"; exit 1; fi
echo "all passed"
