#!/usr/bin/env bash
# Berth's own checks of what critest does not cover, on the real kernel of the VM
# lane's guest (cgroup v2): a pod in a kubelet-style pod cgroup, a container with
# memory, CPU and unified (pids.max, memory.high) limits, the values in the
# container's cgroup files, UpdateContainerResources, container and pod stats, pod
# metrics, and nothing left in the cgroup tree after the pod is removed.
#
#   hack/vm/cgroup-checks.sh ARTIFACT_DIR      (VM_LANE_DRIVER=systemd|cgroupfs)
#
# Runs its own berthd and loopback registry from _output/vm/bin (hack/vm/lane.sh) and
# prints one "ok"/"FAIL" line per check and "checks: N passed, M failed"; a setup step
# that fails (registry, berthd) is one "FAIL" line and the end.
set -uo pipefail
# check, equals, the private registry and berthd (hack/vm/checks-lib.sh, on hack/lib).
source "$(dirname "$0")/checks-lib.sh"
cd "$repo" || exit 1
artifacts="${1:-/tmp/berth-checks}"
driver="${VM_LANE_DRIVER:-systemd}"
mkdir -p "$artifacts"
tmp=$(mktemp -d /tmp/berth-checks.XXXXXX)
sock="$tmp/berth.sock"
crictl=("$bin/crictl" --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" --timeout 60s)

cleanup() {
	set +e
	cleanup_checks "$artifacts"
}
trap cleanup EXIT

# No CNI configuration: the pod uses the node's network.
start_checks_berthd "$driver"

uid="c0ffee$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
if [ "$driver" = systemd ]; then
	parent="kubepods-burstable-pod$uid.slice"
	pod_dir="/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/$parent"
else
	parent="/kubepods/burstable/pod$uid"
	pod_dir="/sys/fs/cgroup$parent"
fi
image=registry.k8s.io/e2e-test-images/busybox:1.29-2
cat >"$tmp/pod.json" <<JSON
{"metadata": {"name": "checks", "namespace": "berth", "uid": "$uid"},
 "hostname": "checks", "log_directory": "$tmp/logs",
 "linux": {"cgroup_parent": "$parent", "security_context": {"namespace_options": {"network": 2}}}}
JSON
cat >"$tmp/ctr.json" <<JSON
{"metadata": {"name": "limited"}, "image": {"image": "$image"},
 "command": ["sh", "-c", "i=0; while true; do i=\$((i+1)); sleep 1; done"],
 "log_path": "limited.log",
 "linux": {"resources": {"memory_limit_in_bytes": 67108864, "cpu_period": 100000,
   "cpu_quota": 50000, "cpu_shares": 512,
   "unified": {"pids.max": "100", "memory.high": "50331648"}}}}
JSON
check "pull $image" "${crictl[@]}" pull "$image"
pod=$("${crictl[@]}" runp "$tmp/pod.json" 2>>"$tmp/checks.log")
check "run pod with cgroup_parent $parent" test -n "$pod"
ctr=$("${crictl[@]}" create "$pod" "$tmp/ctr.json" "$tmp/pod.json" 2>>"$tmp/checks.log")
check "create container with limits" test -n "$ctr"
check "start container" "${crictl[@]}" start "$ctr"
if [ "$driver" = systemd ]; then
	dir="$pod_dir/berth-$ctr.scope"
	check "the container runs in systemd scope berth-<id>.scope" \
		sh -c "systemctl show -p ActiveState berth-$ctr.scope | grep -qx ActiveState=active"
else
	dir="$pod_dir/$ctr"
fi
check "container cgroup at $dir" test -d "$dir"
check "memory.max from memory_limit_in_bytes" equals "$dir/memory.max" 67108864
check "cpu.max from cpu_quota/cpu_period" equals "$dir/cpu.max" "50000 100000"
check "unified pids.max (PID limit)" equals "$dir/pids.max" 100
check "unified memory.high" equals "$dir/memory.high" 50331648
# runc before 1.3 converts shares linearly (512 -> 20); later runc and crun use the
# quadratic mapping that keeps the default 1024 at 100 (512 -> 59).
check "cpu.weight from cpu_shares 512" sh -c "w=\$(cat $dir/cpu.weight); echo cpu.weight \$w; [ \$w = 20 ] || [ \$w = 59 ]"
check "UpdateContainerResources" "${crictl[@]}" update --memory 134217728 --cpu-quota 20000 --cpu-period 100000 "$ctr"
check "memory.max after update" equals "$dir/memory.max" 134217728
check "cpu.max after update" equals "$dir/cpu.max" "20000 100000"
check "pids.max kept by the update" equals "$dir/pids.max" 100
sleep 3
"${crictl[@]}" stats -o json "$ctr" >"$tmp/stats.json" 2>>"$tmp/checks.log"
check "container stats: memory working set > 0" \
	sh -c "grep -A3 '\"workingSetBytes\"' $tmp/stats.json | grep -q '\"value\": \"[1-9]'"
check "container stats: CPU usage > 0" \
	sh -c "grep -A3 '\"usageCoreNanoSeconds\"' $tmp/stats.json | grep -q '\"value\": \"[1-9]'"
"${crictl[@]}" statsp -o json "$pod" >"$tmp/statsp.json" 2>>"$tmp/checks.log"
check "pod stats: memory working set > 0" \
	sh -c "grep -A3 '\"workingSetBytes\"' $tmp/statsp.json | grep -q '\"value\": \"[1-9]'"
"${crictl[@]}" metricsp -o json >"$tmp/metricsp.json" 2>>"$tmp/checks.log"
check "pod metrics: container_memory_usage_bytes of the container" \
	grep -q container_memory_usage_bytes "$tmp/metricsp.json"
check "pod metrics: container_spec_memory_limit_bytes" \
	grep -q container_spec_memory_limit_bytes "$tmp/metricsp.json"
check "stop pod" "${crictl[@]}" stopp "$pod"
if [ "$driver" = systemd ]; then
	# systemd removes a scope as soon as its last process has exited.
	check "container scope gone after the stop" sh -c "! test -d $dir"
else
	# runc removes a cgroupfs cgroup at delete (RemoveContainer); until then it is empty.
	check "container cgroup empty after the stop" sh -c "! test -s $dir/cgroup.procs"
fi
check "remove pod" "${crictl[@]}" rmp "$pod"
pod=""
check "container cgroup gone after the removal" sh -c "! test -d $dir"
if [ "$driver" = cgroupfs ]; then
	check "pod cgroup removed" sh -c "! test -d $pod_dir"
fi
check "no berth scope left" sh -c "! find /sys/fs/cgroup -name 'berth-*.scope' | grep -q ."
echo "checks: $pass passed, $fail failed (log: $artifacts/checks.log)"
[ "$fail" = 0 ]
