#!/usr/bin/env bash
# Builds the guest of the VM lane from Debian's apt mirror only, once per machine, and
# prints the directory that holds it:
#
#   vmlinuz      Debian 12's kernel (linux-image-amd64, unpacked with dpkg-deb -x)
#   initrd.img   a busybox initramfs that loads virtio and ext4 and switches to /dev/vda,
#                or, with berth.probe on the command line, prints BERTH-PROBE-OK and
#                powers off (run.sh's KVM probe)
#   rootfs.ext4  Debian 12 (mmdebstrap minbase) with systemd as init, dbus, iptables,
#                iproute2, containernetworking-plugins, libseccomp2, and a unit that runs
#                the script run.sh shares with the guest, then powers off
#
# The result is cached under hack/.cache/vm/<key> (hack/.cache may be the machine-wide
# /var/cache/berth-ci), keyed by a hash of the guest's files in hack/vm and the kernel
# version apt offers; concurrent builds serialise on a lock. Needs root, mmdebstrap and e2fsprogs
# (hack/install-deps.sh --vm installs them). No loop mounts: mkfs.ext4 -d fills the image.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

log() { printf 'build-image: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { log "needs root"; exit 1; }
for tool in mmdebstrap mkfs.ext4 apt-get dpkg-deb cpio; do
	command -v "$tool" >/dev/null || { log "missing $tool (run hack/install-deps.sh --vm)"; exit 1; }
done

suite=bookworm
# What the guest needs beyond minbase: systemd as PID 1 with D-Bus (the systemd cgroup
# driver talks to it), what runc and berthd run (iptables, iproute2, the CNI plugins,
# libseccomp for a runc built with seccomp), kmod for modprobe, procps for debugging.
packages=systemd,systemd-sysv,dbus,libpam-systemd,iptables,iproute2,containernetworking-plugins,libseccomp2,kmod,procps,util-linux,mount
image_size=4G

kernel_pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$kernel_pkg" ]; then
	log "apt knows no linux-image-amd64 (apt-get update?)"
	exit 1
fi
kernel_version=$(apt-cache policy "$kernel_pkg" | awk '/Candidate:/ {print $2}')
key=$( (cat hack/vm/build-image.sh hack/vm/guest-setup.sh hack/vm/initramfs-init
	echo "$packages $kernel_pkg $kernel_version") | sha256sum | cut -c1-16)
# The Debian base (mmdebstrap's tarball, the slow part) has a key of its own, so that a
# change to the guest's configuration does not fetch and unpack Debian again.
base_key=$(echo "$suite $packages" | sha256sum | cut -c1-16)
cache="$repo/hack/.cache/vm"
out="$cache/$suite-$key"
mkdir -p "$cache"
if [ -s "$out/rootfs.ext4" ] && [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.img" ]; then
	echo "$out"
	exit 0
fi

exec 9>"$cache/.lock"
flock 9
if [ -s "$out/rootfs.ext4" ]; then # another build finished while we waited
	echo "$out"
	exit 0
fi

work=$(mktemp -d "$cache/build.XXXXXX")
cleanup() {
	local rc=$?
	rm -rf --one-file-system "$work"
	exit "$rc"
}
trap cleanup EXIT
started=$(date +%s)

# --- kernel and busybox, from apt.
log "downloading $kernel_pkg $kernel_version and busybox-static"
(cd "$work" && chmod 777 . && apt-get download -q "$kernel_pkg" busybox-static >/dev/null)
mkdir "$work/kernel" "$work/busybox"
dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
dpkg-deb -x "$work"/busybox-static_*.deb "$work/busybox"
kver=$(ls "$work/kernel/lib/modules")

# --- root filesystem.
base="$cache/base-$suite-$base_key.tar"
if [ ! -s "$base" ]; then
	sources=/etc/apt/sources.list.d/debian.sources
	[ -f "$sources" ] || sources=/etc/apt/sources.list
	[ -f "$sources" ] || sources="http://deb.debian.org/debian"
	log "mmdebstrap $suite (minbase + $packages) from $sources"
	mmdebstrap --quiet --mode=root --variant=minbase --include="$packages" \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		"$suite" "$work/base.tar" "$sources" >&2
	mv "$work/base.tar" "$base"
fi
rootfs="$work/rootfs"
mkdir "$rootfs"
tar -C "$rootfs" --numeric-owner -xpf "$base"
cp -a "$work/kernel/lib/modules" "$rootfs/lib/"
chroot "$rootfs" depmod -a "$kver"
bash "$repo/hack/vm/guest-setup.sh" "$rootfs"

# --- initramfs: busybox, the modules that reach the root disk, and an init that
# switches to it.
initrd="$work/initrd"
mkdir -p "$initrd"/{bin,dev,proc,sys,root,lib/modules}
cp "$work/busybox/bin/busybox" "$initrd/bin/busybox"
modules_dir="$rootfs/lib/modules/$kver"
declare -A seen=()
order=()
# add MODULE: MODULE's dependencies first, then MODULE (paths relative to modules_dir).
add() {
	local mod="$1" deps d
	[ -n "${seen[$mod]:-}" ] && return 0
	seen[$mod]=1
	deps=$(awk -v m="$mod:" '$1 == m {$1 = ""; print; exit}' "$modules_dir/modules.dep")
	for d in $deps; do add "$d"; done
	order+=("$mod")
}
for name in virtio_pci virtio_blk crc32c_generic ext4; do
	path=$(awk -F: -v n="/$name.ko" 'index($1, n) == length($1) - length(n) + 1 {print $1; exit}' "$modules_dir/modules.dep")
	[ -n "$path" ] || { log "module $name not in $kver"; exit 1; }
	add "$path"
done
for mod in "${order[@]}"; do
	cp "$modules_dir/$mod" "$initrd/lib/modules/"
	echo "$(basename "$mod")" >>"$initrd/lib/modules/order"
done
cp "$repo/hack/vm/initramfs-init" "$initrd/init"
chmod 755 "$initrd/init"
(cd "$initrd" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.img"

# --- the disk image, filled from the directory.
log "mkfs.ext4 -d ($image_size, sparse)"
truncate -s "$image_size" "$work/rootfs.ext4"
mkfs.ext4 -q -F -L berth-root -d "$rootfs" "$work/rootfs.ext4"

mkdir "$work/out"
mv "$work/rootfs.ext4" "$work/initrd.img" "$work/out/"
cp "$work/kernel/boot/vmlinuz-$kver" "$work/out/vmlinuz"
echo "$kver" >"$work/out/kernel-version"
rm -rf "$out"
mv "$work/out" "$out"
# Older guests and bases go (a running guest keeps its open image until it ends).
for old in "$cache/$suite"-* "$cache"/base-*.tar; do
	[ "$old" = "$out" ] || [ "$old" = "$base" ] || rm -rf "$old"
done
log "guest built in $(($(date +%s) - started))s: $out"
echo "$out"
