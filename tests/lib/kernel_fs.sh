# Sourced by integration tests that build images with the kernel:
#   kernel_fs_setup NAME  prints a SKIP line and exits 0 without root, loop
#                         devices or mkfs.btrfs; else sets $tmp (a scratch
#                         directory, removed at exit unless KEEP is set) and
#                         $mnt (a mount point in it, unmounted at exit), and
#                         defines pass and fail (print PASS/FAIL lines).
kernel_fs_setup() {
    if [ "$(id -u)" != 0 ] || [ ! -e /dev/loop-control ] || ! command -v mkfs.btrfs >/dev/null; then
        echo "SKIP: *** $1: needs root, loop devices and btrfs-progs ***"
        exit 0
    fi
    tmp=$(mktemp -d "/tmp/btk-$1.XXXXXX")
    mnt=$tmp/mnt
    mkdir -p "$mnt"
    trap kernel_fs_cleanup EXIT
    [ -n "${KEEP:-}" ] && trap - EXIT
    return 0
}
kernel_fs_cleanup() {
    mountpoint -q "$mnt" && umount "$mnt"
    rm -rf "$tmp"
}
fail() { echo "FAIL $*"; }
pass() { echo "PASS $*"; }
