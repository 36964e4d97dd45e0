#!/usr/bin/env bash
# Runs inside the VM lane's guest (hack/vm/lane.sh starts it through hack/vm/run.sh),
# from the read-only checkout at /mnt/repo with the binaries lane.sh staged in
# _output/vm/bin: checks that the node is what the lane promises (systemd as PID 1,
# cgroup v2 only), then runs hack/critest.sh focused on what touches cgroups with
# berthd's cgroup_driver from lane.env, then hack/vm/cgroup-checks.sh.
set -uo pipefail
repo=/mnt/repo
cd "$repo"
stage="$repo/_output/vm"
artifacts=/mnt/run/artifacts
VM_LANE_DRIVER=systemd
# shellcheck source=/dev/null
[ -f "$stage/lane.env" ] && . "$stage/lane.env"
# Eight specs, one per thing the lane promises: pod and container lifecycle, the
# exec deadline (a slow runtime once left a process that kept pause from dying), stats,
# pod metrics, OOM through memory.events, sysctls. Resource updates, unified keys and
# the PID limit are hack/vm/cgroup-checks.sh's; probes, restarts and QoS slices
# hack/vm/kubelet-checks.sh's. Each spec costs 30-90 s under TCG on a loaded host.
focus_default='support stopping PodSandbox|listing pod sandbox metrics|support safe sysctls|execSync with timeout|listing container stats|support stopping container|removing running container|Container OOM'
focus="${VM_LANE_FOCUS-$focus_default}"
# The binaries run from the guest's disk: berthd executes runc and the monitor for every
# container, and each exec over 9p under emulation costs seconds.
bin=/opt/berth/bin
mkdir -p "$bin" /opt/berth/cache
cp "$stage"/bin/* "$bin/"
cp -r "$stage"/cache/. /opt/berth/cache/
export PATH="$bin:$PATH"

say() { printf 'lane-guest: %s\n' "$*"; }
fs=$(stat -f -c %T /sys/fs/cgroup)
say "kernel $(uname -r), init $(ps -o comm= -p 1), /sys/fs/cgroup is $fs, controllers: $(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)"
say "runc: $(runc --version | head -1); systemd: $(systemctl --version | head -1)"
if [ "$fs" != cgroup2fs ] || [ "$(ps -o comm= -p 1)" != systemd ]; then
	say "FAIL: the guest is not a systemd node on the unified hierarchy"
	exit 1
fi
export BERTH_BUSYBOX=/opt/berth/cache/busybox/busybox BERTH_CACHE_DIR=/opt/berth/cache

rc=0
start=$(date +%s)
if [ -z "${VM_LANE_SKIP_CRITEST:-}" ]; then
	say "critest with cgroup_driver=$VM_LANE_DRIVER, focus: ${focus:-(everything)}"
	CRITEST_BIN="$bin" CRITEST_CGROUP_DRIVER="$VM_LANE_DRIVER" CRITEST_FOCUS="$focus" \
		CRITEST_ARTIFACTS="$artifacts/critest-$VM_LANE_DRIVER" hack/critest.sh || rc=$?
	say "critest.sh exited with $rc after $(($(date +%s) - start))s"
fi
if [ -x hack/vm/cgroup-checks.sh ] && [ -z "${VM_LANE_SKIP_CHECKS:-}" ]; then
	start=$(date +%s)
	crc=0
	VM_LANE_BIN="$bin" VM_LANE_DRIVER="$VM_LANE_DRIVER" hack/vm/cgroup-checks.sh "$artifacts/checks-$VM_LANE_DRIVER" || crc=$?
	say "cgroup-checks.sh exited with $crc after $(($(date +%s) - start))s"
	[ "$rc" = 0 ] && rc=$crc
fi
kubelet="$stage/k8s/kubelet"
if [ "$VM_LANE_DRIVER" = systemd ] && [ -z "${VM_LANE_SKIP_KUBELET:-}" ]; then
	start=$(date +%s)
	krc=0
	VM_LANE_BIN="$bin" VM_LANE_KUBELET="$kubelet" hack/vm/kubelet-checks.sh "$artifacts/kubelet-checks" || krc=$?
	say "kubelet-checks.sh exited with $krc after $(($(date +%s) - start))s"
	[ "$rc" = 0 ] && rc=$krc
fi
left=$(find /sys/fs/cgroup -name 'berth-*.scope' 2>/dev/null)
if [ -n "$left" ]; then
	say "FAIL: container scopes left behind:"; echo "$left"
	[ "$rc" = 0 ] && rc=1
fi
exit "$rc"
