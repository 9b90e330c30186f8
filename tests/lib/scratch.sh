# Sourced by integration tests: a scratch btrfs filesystem to restore into, so
# that xattrs of any size, device nodes and owners fit (the host's /tmp may be
# ext4 or overlayfs, which limit xattrs). Needs root and loop devices.
#   scratch_mount DIR   creates DIR/scratch.img, mounts it on DIR/scratch, prints the mount point
#   scratch_umount DIR  unmounts it (call from the EXIT trap)
scratch_mount() {
    local d=$1
    mkdir -p "$d/scratch"
    truncate -s 4G "$d/scratch.img" && mkfs.btrfs -q -f "$d/scratch.img" >/dev/null &&
        mount -o loop "$d/scratch.img" "$d/scratch" && echo "$d/scratch"
}
scratch_umount() {
    local d=$1
    mountpoint -q "$d/scratch" 2>/dev/null && umount "$d/scratch"
    rm -f "$d/scratch.img"
}
