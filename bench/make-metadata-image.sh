#!/usr/bin/env bash
# Builds a metadata-heavy kernel-written image: N small files (default
# 320,000) in nested directories, some larger files, two snapshots with changes
# after each. Usage: make-metadata-image.sh IMAGE [NFILES]. Needs root + loop.
set -euo pipefail
img=${1:?usage: make-metadata-image.sh IMAGE [NFILES]}
n=${2:-320000}
mnt=$(mktemp -d /tmp/btk-bench-mnt.XXXXXX)
cleanup() { mountpoint -q "$mnt" && umount "$mnt"; rmdir "$mnt"; }
trap cleanup EXIT
rm -f "$img"
truncate -s 8G "$img"
mkfs.btrfs -q -f "$img" >/dev/null
mount -o loop "$img" "$mnt"
btrfs -q subvolume create "$mnt/data"
python3 - "$mnt/data" "$n" <<'PY'
import os, random, sys
top, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1)
per_dir = 500
for i in range(n):
    d = os.path.join(top, f"d{i // (per_dir * 20):03d}", f"s{(i // per_dir) % 20:02d}")
    if i % per_dir == 0:
        os.makedirs(d, exist_ok=True)
    size = rnd.choice((0, 50, 200, 700, 1500, 3000, 5000, 9000, 20000)) if i % 50 else 70000
    with open(os.path.join(d, f"file-{i:07d}.txt"), "wb") as f:
        f.write((f"{i} " * (size // 8 + 1)).encode()[:size])
    if i % 1000 == 0:
        os.symlink(f"file-{i:07d}.txt", os.path.join(d, f"link-{i:07d}"))
PY
btrfs -q subvolume snapshot -r "$mnt/data" "$mnt/snap1"
# awk, not head: head exits early, find dies of SIGPIPE and pipefail stops
# the script before the second snapshot.
find "$mnt/data" -name 'file-*5.txt' | awk 'NR <= 20000' | xargs -r rm -f
btrfs -q subvolume snapshot "$mnt/data" "$mnt/snap2"
find "$mnt/snap2" -name 'file-*7.txt' | awk 'NR <= 20000' | while read -r f; do echo changed >>"$f"; done
umount "$mnt"
