#!/usr/bin/env bash
# btk check verifies every copy of every tree block. When a leaf's first
# copy is good, its other copies are verified either by the walk or by the
# subvolume tree thread, whichever has time; the bad ones are reported
# after the walk in walk order, so the output must not depend on who did it.
# A kernel-written image (DUP metadata, 4 KiB nodes) gets copy 1 of several
# extent tree and fs tree leaves broken, copy 0 of one more fs tree leaf
# broken and a wrong nlink;
# the hidden --copies-by walk|worker|auto must give identical output that
# names each bad copy once, in walk order, and still checks the fs tree whole
# (a bad copy beside a good one loses no items: the nlink is reported); with
# worker, the thread must have taken every leaf below a node (extent tree
# leaves included) but the one with the bad first copy.
set -uo pipefail
bin=${1:?usage: test-check-copies.sh BIN_DIR}
top=$(cd "$(dirname "$0")/../.." && pwd)
corrupt=$top/tests/tools/btrfs_corrupt.py
. "$top/tests/lib/kernel_fs.sh"
kernel_fs_setup test-check-copies

img=$tmp/copies.img
truncate -s 256M "$img"
mkfs.btrfs -q -f -n 4096 -m dup "$img" >/dev/null
mount -o loop "$img" "$mnt"
python3 - "$mnt" <<'EOF'
import os, sys
for d in range(6):
    p = os.path.join(sys.argv[1], "d%d" % d)
    os.mkdir(p)
    for i in range(250):
        with open(os.path.join(p, "file-%04d" % i), "w") as f:
            f.write("x" * (i % 40))
EOF
victim=$(stat -c %i "$mnt/d3/file-0100")
umount "$mnt"

# The fs tree's leaves in key order (= walk order), from its inode items.
mapfile -t leaves < <(python3 "$corrupt" "$img" find 5 1 | awk '!seen[$3]++ {print $3}')
if [ "${#leaves[@]}" -lt 12 ]; then
    fail "copies: the fs tree has only ${#leaves[@]} leaves with inode items"
    exit 0
fi
# The extent tree's leaves (walked before the fs tree), from its items.
mapfile -t eleaves < <(python3 "$corrupt" "$img" find 2 169 | awk '!seen[$3]++ {print $3}')
if [ "${#eleaves[@]}" -lt 3 ]; then
    fail "copies: the extent tree has only ${#eleaves[@]} leaves with metadata items"
    exit 0
fi
# With --copies-by worker the subvolume tree thread verifies the other
# copies of every leaf read from a node (all leaves of trees with more than
# one), but the one whose first copy is bad.
expect_worker=$(btrfs inspect-internal dump-tree "$img" |
    awk '/^leaf [0-9]+ items/ {n[$NF]++} END {s = 0; for (t in n) if (n[t] > 1) s += n[t]; print s - 1}')
python3 "$corrupt" "$img" item-field 5 "$victim" 1 0 40 4 7 >/dev/null
# Copy 1 of every other extent tree leaf, of every third fs tree leaf from
# the second; copy 0 of the last fs tree leaf.
want=()
for ((i = 0; i < ${#eleaves[@]}; i += 2)); do
    python3 "$corrupt" "$img" block-csum "${eleaves[$i]}" 1 >/dev/null
    want+=("${eleaves[$i]}")
done
for ((i = 1; i < ${#leaves[@]} - 1; i += 3)); do
    python3 "$corrupt" "$img" block-csum "${leaves[$i]}" 1 >/dev/null
    want+=("${leaves[$i]}")
done
first_bad=${leaves[${#leaves[@]} - 1]}
python3 "$corrupt" "$img" block-csum "$first_bad" 0 >/dev/null

for by in walk worker auto; do
    rc=0
    BTK_CHECK_STATS=1 "$bin/btk-check" --copies-by $by "$img" >"$tmp/$by.out" 2>"$tmp/$by.err" || rc=$?
    echo "$rc" >"$tmp/$by.rc"
done
worker_blocks=$(sed -n "s/^btk check: \([0-9]*\) blocks' other copies verified by the subvolume tree thread/\1/p" "$tmp/worker.err")
walk_blocks=$(sed -n "s/^btk check: \([0-9]*\) blocks' other copies verified by the subvolume tree thread/\1/p" "$tmp/walk.err")
# The copy 1 findings after the walk, in walk order; the copy 0 one in it.
got=$(sed -n 's/^ERROR: tree [a-z]*: tree block \([0-9]*\) copy 1: checksum mismatch$/\1/p' "$tmp/auto.out" | tr '\n' ' ')
expect=$(printf '%s ' "${want[@]}")
after_walk=$(awk '/^\[4\/4\]/ {s = 1} s && /copy 1: checksum mismatch/' "$tmp/auto.out" | wc -l)
in_walk=$(awk '/^\[2\/4\]/ {s = 1} /^\[3\/4\]/ {s = 0} s' "$tmp/auto.out" | grep -c "tree block $first_bad copy 0: checksum mismatch")
if ! cmp -s "$tmp/walk.out" "$tmp/worker.out" || ! cmp -s "$tmp/walk.out" "$tmp/auto.out"; then
    fail "copies: the output depends on who verified the copies"
    diff "$tmp/walk.out" "$tmp/worker.out" | head -10
    diff "$tmp/walk.out" "$tmp/auto.out" | head -10
elif [ "$(cat "$tmp/walk.rc" "$tmp/worker.rc" "$tmp/auto.rc" | tr '\n' ' ')" != "1 1 1 " ]; then
    fail "copies: exit codes $(cat "$tmp"/*.rc | tr '\n' ' '), expected 1 each"
elif [ "$got" != "$expect" ]; then
    fail "copies: bad copy 1 reported for '$got', expected '$expect'"
elif [ "$after_walk" != "${#want[@]}" ] || [ "$in_walk" != 1 ]; then
    fail "copies: $after_walk copy 1 findings after the walk (expected ${#want[@]}), $in_walk copy 0 finding in it (expected 1)"
elif ! grep -q "inode $victim: nlink 7, but" "$tmp/auto.out"; then
    fail "copies: the wrong nlink was not reported (bad copies beside good ones skipped the fs tree checks)"
elif [ "${walk_blocks:-x}" != 0 ] || [ "${worker_blocks:-x}" != "$expect_worker" ]; then
    fail "copies: the subvolume tree thread verified copies of ${walk_blocks:-?} blocks with --copies-by walk (expected 0) and ${worker_blocks:-?} with worker (expected $expect_worker)"
else
    pass "copies: walk, worker ($worker_blocks blocks) and auto give the same output: ${#want[@]} bad copies after the walk in walk order, the bad first copy in it, the nlink found"
fi
