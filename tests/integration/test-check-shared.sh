#!/usr/bin/env bash
# btk check takes the inodes wholly inside a subtree that a snapshot shares
# with an earlier clean tree from that tree's link log instead of reading
# their items again. This test compares it with --reread-shared (every item
# read again) on a kernel-written subvolume and its snapshot: clean, and with
# corruptions in the snapshot's own leaves whose links lead into shared ones.
# The outputs must be identical, the corruptions found, and the reuse must
# have happened (BTK_CHECK_STATS). Then two snapshots of one subvolume: the
# first one's log is kept only when the second can need it.
set -uo pipefail
bin=${1:?usage: test-check-shared.sh BIN_DIR}
top=$(cd "$(dirname "$0")/../.." && pwd)
corrupt=$top/tests/tools/btrfs_corrupt.py
. "$top/tests/lib/kernel_fs.sh"
kernel_fs_setup test-check-shared

# new_fs IMAGE SUBVOL DIRS FILES: a 256 MiB filesystem with 4 KiB nodes,
# mounted on $mnt, whose subvolume SUBVOL holds DIRS directories of FILES
# small files each.
new_fs() {
    truncate -s 256M "$1"
    mkfs.btrfs -q -f -n 4096 "$1" >/dev/null
    mount -o loop "$1" "$mnt"
    btrfs -q subvolume create "$mnt/$2"
    python3 - "$mnt/$2" "$3" "$4" <<'EOF'
import os, sys
root, dirs, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for d in range(dirs):
    p = os.path.join(root, "d%d" % d)
    os.mkdir(p)
    for i in range(files):
        with open(os.path.join(p, "file-%04d-with-a-longer-name" % i), "w") as f:
            f.write("x" * (i % 50))
EOF
}
name() { printf 'file-%04d-with-a-longer-name' "$1"; }

base=$tmp/base.img
new_fs "$base" data 10 300
for i in $(seq 0 30 299); do ln "$mnt/data/d2/$(name "$i")" "$mnt/data/d9/link-$(printf %04d "$i")"; done
btrfs -q subvolume snapshot "$mnt/data" "$mnt/snap"
# The snapshot changes a little: its own leaves among shared ones.
for i in 1 2 3; do echo new >"$mnt/snap/d3/new-file-$i"; done
rm -f "$mnt"/snap/d7/file-01[0-4]*
new_ino=$(stat -c %i "$mnt/snap/d3/new-file-1")
d3=$(stat -c %i "$mnt/snap/d3")
d5=$(stat -c %i "$mnt/snap/d5")
old_ino=$(stat -c %i "$mnt/snap/d8/file-0150-with-a-longer-name")
umount "$mnt"

data_id=256 snap_id=257
# Leaves of the source tree: the corruptions must stay out of them.
for t in 1 12 84 96 108; do python3 "$corrupt" "$base" find $data_id $t; done | awk '{print $3}' | sort -u >"$tmp/data-leaves"
own_leaf() {  # own_leaf TYPE OBJECTID OFFSET -> exit 0 if that snapshot item's leaf is not shared
    local leaf
    leaf=$(python3 "$corrupt" "$base" find $snap_id "$1" | awk -v o="$2" -v f="$3" '$1 == o && $2 == f {print $3}')
    [ -n "$leaf" ] && ! grep -qx "$leaf" "$tmp/data-leaves"
}

# compare NAME IMAGE EXPECTED_EXIT
compare() {
    local name=$1 img=$2 want=$3 rc1=0 rc2=0
    BTK_CHECK_STATS=1 "$bin/btk-check" "$img" >"$tmp/reuse.out" 2>"$tmp/reuse.err" || rc1=$?
    "$bin/btk-check" --reread-shared "$img" >"$tmp/reread.out" 2>&1 || rc2=$?
    local reused
    reused=$(sed -n 's/^btk check: \([0-9]*\) inodes taken.*/\1/p' "$tmp/reuse.err")
    if ! cmp -s "$tmp/reuse.out" "$tmp/reread.out"; then
        fail "$name: output differs from --reread-shared"
        diff "$tmp/reuse.out" "$tmp/reread.out" | head -20
    elif [ "$rc1" != "$want" ] || [ "$rc2" != "$want" ]; then
        fail "$name: exit $rc1 / $rc2, expected $want"
        tail -8 "$tmp/reuse.out"
    elif [ "${reused:-0}" -lt 100 ]; then
        fail "$name: only ${reused:-0} inodes were taken from shared subtrees (no reuse tested)"
    else
        pass "$name: same findings as --reread-shared, $reused inodes taken from the shared subtrees"
    fi
}

compare clean "$base" 0

# A: the new file's DIR_INDEX names an old inode that sits in a shared leaf.
idx=$(python3 "$corrupt" "$base" find $snap_id 96 | awk -v d="$d3" '$1 == d {print $2}' | sort -n | tail -1)
img=$tmp/a.img
cp --sparse=always "$base" "$img"
if ! own_leaf 96 "$d3" "$idx"; then
    fail "dir index into shared leaf: the snapshot's DIR_INDEX $d3/$idx is not in a leaf of its own"
else
    python3 "$corrupt" "$img" item-field $snap_id "$d3" 96 "$idx" 0 8 "$old_ino"
    compare "dir index into shared leaf" "$img" 1
fi

# B: the new file's inode ref names another directory (shared leaves).
img=$tmp/b.img
cp --sparse=always "$base" "$img"
if ! own_leaf 12 "$new_ino" "$d3"; then
    fail "inode ref to shared dir: the snapshot's INODE_REF $new_ino/$d3 is not in a leaf of its own"
else
    python3 "$corrupt" "$img" item-key $snap_id "$new_ino" 12 "$d3" "$new_ino" 12 "$d5"
    compare "inode ref to shared dir" "$img" 1
fi

# C: a DIR_INDEX of an old file (its inode in a shared leaf), in a leaf the
# snapshot rewrote, names an inode that does not exist.
d7_entry=$(python3 "$corrupt" "$base" find $snap_id 96 0 2>/dev/null | while read -r o f leaf loc; do
    grep -qx "$leaf" "$tmp/data-leaves" && continue
    [ "$loc" -lt "$new_ino" ] && [ "$o" != "$d3" ] && [ "$loc" != "$o" ] && { echo "$o $f"; break; }
done)
img=$tmp/c.img
cp --sparse=always "$base" "$img"
if [ -z "$d7_entry" ]; then
    fail "dir index to nowhere: no DIR_INDEX of an old file in a leaf of the snapshot's own"
else
    read -r o f <<<"$d7_entry"
    python3 "$corrupt" "$img" item-field $snap_id "$o" 96 "$f" 0 8 999999
    compare "dir index to nowhere" "$img" 1
fi

# D: a wrong nlink in the source tree. The source is not clean, so it keeps
# no log (the walk still reads the shared subtrees' edges for one) and the
# snapshot reads its shared subtrees whole: the same findings, in both trees.
img=$tmp/d.img
cp --sparse=always "$base" "$img"
python3 "$corrupt" "$img" item-field $data_id "$old_ino" 1 0 40 4 7
rc1=0 rc2=0
BTK_CHECK_STATS=1 "$bin/btk-check" "$img" >"$tmp/reuse.out" 2>"$tmp/reuse.err" || rc1=$?
"$bin/btk-check" --reread-shared "$img" >"$tmp/reread.out" 2>&1 || rc2=$?
logs=$(sed -n 's/^btk check: link logs kept for trees: //p' "$tmp/reuse.err")
nlink=$(grep -c "inode $old_ino: nlink 7, but" "$tmp/reuse.out")
if [ "$rc1" != 1 ] || [ "$rc2" != 1 ] || ! cmp -s "$tmp/reuse.out" "$tmp/reread.out"; then
    fail "unclean source: exit $rc1 / $rc2, or the output differs from --reread-shared"
    diff "$tmp/reuse.out" "$tmp/reread.out" | head -20
elif [ "$logs" != none ]; then
    fail "unclean source: link logs kept for trees '$logs', expected none"
elif [ "$nlink" -lt 2 ]; then
    fail "unclean source: the wrong nlink was not reported in both trees"
    cat "$tmp/reuse.out"
else
    pass "unclean source: no log kept, same output as --reread-shared, nlink reported $nlink times"
fi

# E: the first copy of every source leaf lost all items but one, and its
# checksum is bad; the second copies are good. The walk reads the shared
# subtrees' edges again without verifying only what it verified before: a
# bad first copy must not be taken. (A bad copy beside a good one no longer
# makes the tree unclean: the log is still kept and used.)
img=$tmp/e.img
cp --sparse=always "$base" "$img"
while read -r leaf; do
    python3 "$corrupt" "$img" header-field "$leaf" 96 4 1 0 >/dev/null
    python3 "$corrupt" "$img" block-csum "$leaf" 0 >/dev/null
done <"$tmp/data-leaves"
compare "first copies bad" "$img" 1
bad=$(grep -c "copy 0: checksum mismatch" "$tmp/reuse.out")
if [ "$bad" != "$(wc -l <"$tmp/data-leaves")" ]; then
    fail "first copies bad: $bad bad first copies reported, expected $(wc -l <"$tmp/data-leaves")"
elif [ "$(grep -c '^ERROR' "$tmp/reuse.out")" != "$bad" ]; then
    fail "first copies bad: findings besides the bad copies (a bad first copy was used)"
    grep '^ERROR' "$tmp/reuse.out" | grep -v "copy 0" | head -5
else
    pass "first copies bad: each reported once, nothing else found"
fi

# Two snapshots of one subvolume. The first snapshot's log is kept only when
# the second can share blocks that the source no longer holds: when the
# source changed after the second snapshot was taken. The kernel writes
# both images; the output must again match --reread-shared.
siblings() {  # siblings NAME CHANGE_AFTER(0|1) EXPECTED_LOGS
    local name=$1 after=$2 want=$3 img=$tmp/sib-$1.img
    new_fs "$img" src 8 200
    btrfs -q subvolume snapshot -r "$mnt/src" "$mnt/s1"
    for i in $(seq 0 20 199); do echo more >>"$mnt/src/d1/$(name "$i")"; done
    btrfs -q subvolume snapshot -r "$mnt/src" "$mnt/s2"
    if [ "$after" = 1 ]; then
        for d in 4 5 6 7; do for i in $(seq 0 20 199); do echo more >>"$mnt/src/d$d/$(name "$i")"; done; done
    fi
    umount "$mnt"
    local rc1=0 rc2=0 logs
    BTK_CHECK_STATS=1 "$bin/btk-check" "$img" >"$tmp/reuse.out" 2>"$tmp/reuse.err" || rc1=$?
    "$bin/btk-check" --reread-shared "$img" >"$tmp/reread.out" 2>&1 || rc2=$?
    logs=$(sed -n 's/^btk check: link logs kept for trees: //p' "$tmp/reuse.err")
    if [ "$rc1" != 0 ] || [ "$rc2" != 0 ] || ! cmp -s "$tmp/reuse.out" "$tmp/reread.out"; then
        fail "siblings $name: exit $rc1 / $rc2, or the output differs from --reread-shared"
        diff "$tmp/reuse.out" "$tmp/reread.out" | head -20
    elif [ "$logs" != "$want" ]; then
        fail "siblings $name: link logs kept for trees '$logs', expected '$want'"
    else
        pass "siblings $name: logs kept for trees $logs, same output as --reread-shared"
    fi
    rm -f "$img"
}
siblings "source unchanged since the second snapshot" 0 "256"
siblings "source changed after the second snapshot" 1 "256 257"
