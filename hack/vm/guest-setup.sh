#!/usr/bin/env bash
# Configures the guest root filesystem ROOTFS (hack/vm/build-image.sh): a quiet systemd
# node on the unified hierarchy that mounts the shares of hack/vm/run.sh, runs the
# script it was given and powers off. Nothing in the guest reaches a network.
set -euo pipefail
rootfs="$1"

echo berth-vm >"$rootfs/etc/hostname"
printf '127.0.0.1 localhost\n::1 localhost\n127.0.1.1 berth-vm\n' >"$rootfs/etc/hosts"
: >"$rootfs/etc/resolv.conf"
echo '/dev/vda / ext4 rw,noatime 0 1' >"$rootfs/etc/fstab"
: >"$rootfs/etc/machine-id" # systemd makes a fresh one at boot

# Modules runc, berthd, CNI and the shares need, loaded early by systemd-modules-load.
printf '%s\n' overlay br_netfilter bridge veth 9p 9pnet_virtio >"$rootfs/etc/modules-load.d/berth.conf"
mkdir -p "$rootfs/etc/sysctl.d"
echo 'net.ipv4.ip_forward = 1' >"$rootfs/etc/sysctl.d/90-berth.conf"

# Units that only cost boot time under emulation, or wait for things the guest lacks.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
	fstrim.timer getty@tty1.service serial-getty@ttyS0.service systemd-timesyncd.service \
	man-db.timer dpkg-db-backup.timer systemd-networkd-wait-online.service \
	systemd-pstore.service; do
	ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
ln -sf /lib/systemd/system/multi-user.target "$rootfs/etc/systemd/system/default.target"
mkdir -p "$rootfs/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' >"$rootfs/etc/systemd/journald.conf.d/berth.conf"

# The unit's program only mounts run.sh's run share and hands over to the guest-run
# there (hack/vm/guest-run), which can change without rebuilding the image.
cat >"$rootfs/usr/local/sbin/berth-vm-run" <<'STUB'
#!/bin/sh
modprobe 9pnet_virtio 2>/dev/null
mkdir -p /mnt/run
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=none run /mnt/run &&
	[ -x /mnt/run/guest-run ]; then
	exec /mnt/run/guest-run
fi
echo "berth-vm-run: no run share from hack/vm/run.sh; powering off"
systemctl poweroff --force
STUB
chmod 755 "$rootfs/usr/local/sbin/berth-vm-run"
cat >"$rootfs/etc/systemd/system/berth-vm-run.service" <<'UNIT'
[Unit]
Description=Run the script hack/vm/run.sh shared with this guest, then power off
After=multi-user.target dbus.service systemd-modules-load.service
Wants=dbus.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/berth-vm-run
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/berth-vm-run.service "$rootfs/etc/systemd/system/multi-user.target.wants/berth-vm-run.service"
