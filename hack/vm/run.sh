#!/usr/bin/env bash
# Boots the VM lane's guest (hack/vm/build-image.sh), runs one script inside it as root
# and copies the results out:
#
#   hack/vm/run.sh SCRIPT
#
# The guest sees this checkout read-only at /mnt/repo (its working directory) and a run
# directory at /mnt/run, where SCRIPT may leave artifacts under /mnt/run/artifacts. The
# guest has no network device: nothing it runs reaches the host's or any other network.
# After the guest powers off, the script's output (log), the serial console
# (console.log), the boot time (boot) and the artifacts are in $VM_OUT (default
# _output/vm/<script name>), and run.sh exits with the script's status; 124 when the
# hard timeout hit (qemu is killed by its PID), 125 when the guest never ran the script.
#
# A guest that has not reached the script VM_BOOT_TIMEOUT seconds (default 420) after
# power-on fails the run at once (125), loudly: a machine that cannot boot the guest,
# neither under KVM nor TCG, fails the lane rather than skipping it.
#
# Knobs: VM_TIMEOUT (seconds, default 1800), VM_MEMORY (MiB, default 2048), VM_CPUS
# (default 2), VM_ACCEL (kvm, tcg or auto: KVM when a 20 s probe boots, else TCG; the
# probe's verdict is kept in /run/berth-vm until the host reboots), VM_OUT.
# qemu runs under nice -n 10: the lane shares its host with other work.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

log() { printf 'vm/run.sh: %s\n' "$*" >&2; }
[ $# -eq 1 ] && [ -f "$1" ] || { echo "usage: hack/vm/run.sh SCRIPT" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { log "needs root"; exit 1; }
script=$(realpath "$1")
name=$(basename "$script" .sh)
timeout_s="${VM_TIMEOUT:-1800}"
boot_timeout_s="${VM_BOOT_TIMEOUT:-420}"
memory="${VM_MEMORY:-2048}"
cpus="${VM_CPUS:-2}"
accel="${VM_ACCEL:-auto}"
out="${VM_OUT:-$repo/_output/vm/$name}"
qemu=qemu-system-x86_64
command -v "$qemu" >/dev/null || { log "missing $qemu (run hack/install-deps.sh --vm)"; exit 1; }

image=$(hack/vm/build-image.sh | tail -n 1)
run=$(mktemp -d /tmp/berth-vm.XXXXXX)
qemu_pid=""

running() {
	local stat
	stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $stat != Z* ]]
}
# kill_qemu: SIGTERM, then SIGKILL after 10 s; only the qemu started here.
kill_qemu() {
	local i
	[ -n "$qemu_pid" ] && running "$qemu_pid" || return 0
	kill -TERM "$qemu_pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		running "$qemu_pid" || break
		sleep 0.1
	done
	running "$qemu_pid" && kill -KILL "$qemu_pid" 2>/dev/null
	wait "$qemu_pid" 2>/dev/null || true
	qemu_pid=""
}
cleanup() {
	local rc=$?
	set +e
	kill_qemu
	rm -rf --one-file-system "$run"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# boot_args ACCEL: qemu's arguments for the guest under ACCEL, without the shares.
boot_args() {
	local cpu=max
	[ "$1" = kvm ] && cpu=host
	printf '%s\n' -accel "$1" -machine q35 -cpu "$cpu" -smp "$cpus" -m "$memory" \
		-display none -monitor none -no-reboot -nic none \
		-kernel "$image/vmlinuz" -initrd "$image/initrd.img"
}

# probe_kvm: does a guest run under KVM here? Nested virtualisation may expose /dev/kvm
# and still hang the guest, so boot the initramfs in probe mode for at most 20 s.
probe_kvm() {
	local verdict=/run/berth-vm/kvm-probe pid i args
	[ -r "$verdict" ] && { [ "$(cat "$verdict")" = ok ]; return; }
	mkdir -p /run/berth-vm
	[ -w /dev/kvm ] || { echo none >"$verdict"; return 1; }
	mapfile -t args < <(boot_args kvm)
	nice -n 10 "$qemu" "${args[@]}" -append "console=ttyS0 berth.probe" \
		-serial "file:$run/probe.log" >/dev/null 2>&1 &
	pid=$!
	for ((i = 0; i < 200; i++)); do
		grep -q BERTH-PROBE-OK "$run/probe.log" 2>/dev/null && break
		running "$pid" || break
		sleep 0.1
	done
	running "$pid" && { kill -KILL "$pid"; }
	wait "$pid" 2>/dev/null || true
	if grep -q BERTH-PROBE-OK "$run/probe.log" 2>/dev/null; then
		echo ok >"$verdict"
	else
		echo hangs >"$verdict"
		return 1
	fi
}
if [ "$accel" = auto ]; then
	accel=tcg
	probe_kvm && accel=kvm
	log "accelerator: $accel (KVM probe: $(cat /run/berth-vm/kvm-probe))"
fi

cp "$script" "$run/script"
install -m 755 hack/vm/guest-run "$run/guest-run"
mkdir -p "$run/artifacts"
mapfile -t args < <(boot_args "$accel")
cmdline="console=ttyS0 root=/dev/vda rw systemd.unified_cgroup_hierarchy=1 panic=5 mitigations=off loglevel=4 systemd.show_status=auto"
started=$(date +%s)
log "booting $(basename "$image") under $accel with $cpus CPUs, ${memory}M; timeout ${timeout_s}s; console: $out/console.log"
nice -n 10 "$qemu" "${args[@]}" -append "$cmdline" \
	-drive "file=$image/rootfs.ext4,format=raw,if=virtio,snapshot=on" \
	-virtfs "local,path=$repo,mount_tag=repo,security_model=none,readonly=on" \
	-virtfs "local,path=$run,mount_tag=run,security_model=none" \
	-serial "file:$run/console.log" >"$run/qemu.log" 2>&1 &
qemu_pid=$!
timed_out="" boot_failed=""
while running "$qemu_pid"; do
	now=$(date +%s)
	if ((now - started >= timeout_s)); then
		log "timeout after ${timeout_s}s: killing qemu (pid $qemu_pid)"
		timed_out=1
		kill_qemu
		break
	fi
	if [ ! -s "$run/boot" ] && ((now - started >= boot_timeout_s)); then
		log "FAIL: the guest did not boot under $accel within ${boot_timeout_s}s: killing qemu (pid $qemu_pid)"
		boot_failed=1
		kill_qemu
		break
	fi
	sleep 1
done
[ -n "$qemu_pid" ] && { wait "$qemu_pid" 2>/dev/null || true; qemu_pid=""; }
elapsed=$(($(date +%s) - started))

rm -rf "$out"
mkdir -p "$out"
for f in console.log qemu.log log boot rc; do
	[ -f "$run/$f" ] && cp "$run/$f" "$out/$f"
done
cp -a "$run/artifacts" "$out/" 2>/dev/null || true
[ -s "$run/boot" ] && log "$(cat "$run/boot")"
if [ -n "$boot_failed" ]; then
	log "last lines of the console:"; tail -n 40 "$run/console.log" >&2 || true
	cat "$run/qemu.log" >&2 || true
	exit 125
fi
if [ -n "$timed_out" ]; then
	log "last lines of the console:"; tail -n 30 "$run/console.log" >&2 || true
	exit 124
fi
if [ ! -s "$run/rc" ]; then
	log "the guest powered off without running the script (after ${elapsed}s); last lines of the console:"
	tail -n 40 "$run/console.log" >&2 || true
	cat "$run/qemu.log" >&2 || true
	exit 125
fi
rc=$(cat "$run/rc")
log "script exited with $rc; guest ran ${elapsed}s in all; results in $out"
exit "$rc"
