#!/usr/bin/env bash
# A real kubelet on berthd in the VM lane's guest, the node most users run: systemd as
# PID 1, cgroup v2 only, kubelet with its defaults (failCgroupV1 true, the cgroup driver
# berthd reports: systemd), standalone (no apiserver), running static pods:
#
#   limited: burstable, requests < limits, busybox httpd with an httpGet readiness and
#            a tcpSocket liveness probe (host network)
#   probes:  besteffort, an exec liveness probe that starts failing: restarted
#   crash:   besteffort, a container that prints a line and exits 3, again and again
#
# Checks: pod cgroups are systemd slices (kubepods-<qos>-pod<uid>.slice) and
# containers scopes (berth-<id>.scope), the limits are in the real cgroup v2 files of
# both, probes work, restart counts and exit codes, then teardown (manifests removed,
# kubelet stopped, pods removed) leaves no pod slice and no scope in the systemd tree.
#
#   hack/vm/kubelet-checks.sh ARTIFACT_DIR
#
# Runs its own berthd and loopback registry from VM_LANE_BIN (hack/vm/lane.sh's
# _output/vm/bin), kubelet from VM_LANE_KUBELET; prints one "ok"/"FAIL" line per check
# and "kubelet checks: N passed, M failed"; a setup step that fails (registry, berthd)
# is one "FAIL" line and the end.
set -uo pipefail
# check, equals, eventually, the private registry and berthd (hack/vm/checks-lib.sh,
# on hack/lib).
source "$(dirname "$0")/checks-lib.sh"
cd "$repo" || exit 1
kubelet="${VM_LANE_KUBELET:-$repo/_output/vm/k8s/kubelet}"
artifacts="${1:-/tmp/berth-kubelet-checks}"
busybox="${BERTH_BUSYBOX:-$repo/hack/.cache/busybox/busybox}"
mkdir -p "$artifacts"
tmp=$(mktemp -d /tmp/berth-kubelet.XXXXXX)
sock="$tmp/berth.sock"
: >"$tmp/crictl.yaml"
crictl=("$bin/crictl" --config "$tmp/crictl.yaml" --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" --timeout 60s)
kubelet_pid=""
node=berth-vm
roport=10255 hzport=10248

say() { printf 'kubelet-checks: %s\n' "$*"; }
cleanup() {
	set +e
	stop_pid "$kubelet_pid" kubelet
	cleanup_checks "$artifacts"
}
trap cleanup EXIT

[ -x "$kubelet" ] || die "no kubelet at $kubelet"
# A CNI network, so that berthd reports NetworkReady; the pods use the node's network.
mkdir -p "$tmp/net.d"
cat >"$tmp/net.d/10-vm.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "vm", "plugins": [
  {"type": "bridge", "bridge": "bkvm", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.196.0.0/24"}]], "dataDir": "$tmp/ipam"}},
  {"type": "loopback"}]}
EOF
start_checks_berthd systemd

# --- static pods. Probe timeouts are generous: under emulation an exec takes seconds.
image=registry.k8s.io/e2e-test-images/busybox:1.29-2
mkdir -p "$tmp/manifests"
cat >"$tmp/manifests/limited.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: limited, namespace: vm}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: $image
    command: [sh, -c, 'mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 127.0.0.1:18080 -h /www']
    resources:
      requests: {memory: 32Mi, cpu: 100m}
      limits: {memory: 64Mi, cpu: 250m}
    readinessProbe:
      httpGet: {host: 127.0.0.1, path: /, port: 18080}
      periodSeconds: 3
      timeoutSeconds: 10
    livenessProbe:
      tcpSocket: {host: 127.0.0.1, port: 18080}
      periodSeconds: 3
      timeoutSeconds: 10
EOF
cat >"$tmp/manifests/probes.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: probes, namespace: vm}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 2
  containers:
  - name: probed
    image: $image
    command: [sh, -c, 'touch /tmp/healthy; sleep 10; rm /tmp/healthy; sleep 3600']
    livenessProbe:
      exec: {command: [cat, /tmp/healthy]}
      periodSeconds: 3
      timeoutSeconds: 20
      failureThreshold: 1
EOF
cat >"$tmp/manifests/crash.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: crash, namespace: vm}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 2
  containers:
  - name: crasher
    image: $image
    command: [sh, -c, 'echo crashing now; exit 3']
EOF
# Defaults everywhere but what a node without an apiserver needs: failCgroupV1 and
# cgroupsPerQOS as they come, no cgroupDriver (kubelet takes berthd's).
cat >"$tmp/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$sock
staticPodPath: $tmp/manifests
fileCheckFrequency: 2s
address: 127.0.0.1
readOnlyPort: $roport
healthzBindAddress: 127.0.0.1
healthzPort: $hzport
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
registerNode: false
resolvConf: ""
EOF
"${crictl[@]}" pull "$image" >>"$tmp/checks.log" 2>&1
start=$(date +%s)
"$kubelet" --config "$tmp/kubelet.yaml" --root-dir "$tmp/kubelet" --cert-dir "$tmp/kubelet/pki" \
	--hostname-override "$node" --v=2 >"$tmp/kubelet.log" 2>&1 &
kubelet_pid=$!
get() { "$busybox" wget -q -O - "http://127.0.0.1:$1" 2>/dev/null; }
healthy() { [ "$(get "$hzport/healthz")" = ok ] || ! running "$kubelet_pid"; }
check "kubelet healthy with failCgroupV1 (default) on cgroup v2" eventually 180 healthy
if ! running "$kubelet_pid" || [ "$(get "$hzport/healthz")" != ok ]; then
	echo "FAIL  kubelet did not come up; its log ends with:"
	tail -n 30 "$tmp/kubelet.log"
	echo "kubelet checks: $pass passed, $((fail + 1)) failed (log: $artifacts/checks.log)"
	exit 1
fi
say "kubelet healthy after $(($(date +%s) - start))s"
check "kubelet uses the systemd cgroup driver berthd reports" \
	grep -qE 'cgroupDriver="systemd"|"CgroupDriver":"systemd"' "$tmp/kubelet.log"

# pods_json: kubelet's own view (the read-only port's /pods) on one line.
pods_json() { get "$roport/pods"; }
# pod_matches POD PERL-REGEXP: the JSON of static pod POD in /pods matches.
pod_matches() {
	pods_json | perl -0777 -e '($pod, $re) = @ARGV; $_ = <STDIN>;
		for (split /\{"metadata":\{"name":"/) { $ok = 1 if /^\Q$pod\E-/ && /$re/s } exit !$ok' "$1" "$2"
}
ready() { pod_matches "$1" '"type":"Ready",(?:"observedGeneration":\d+,)?"status":"True"'; }
sandbox_uid() { "${crictl[@]}" pods --name "^$1-" --state ready -o json | grep -o '"io.kubernetes.pod.uid": "[^"]*"' | head -1 | cut -d'"' -f4; }
ctr_id() { "${crictl[@]}" ps --name "^$1\$" -q | head -1; }
attempts() { "${crictl[@]}" ps -a --name "^$1\$" -q | wc -l; }

check "pod limited Ready (httpGet readiness, tcpSocket liveness)" eventually 240 ready limited
uid=$(sandbox_uid limited)
slice="/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid//-/_}.slice"
check "pod limited in systemd slice kubepods-burstable-pod<uid>.slice" test -n "$uid" -a -d "$slice"
check "pod slice is a systemd unit" systemctl is-active "$(basename "$slice")"
web=$(ctr_id web)
scope="$slice/berth-$web.scope"
check "container web in scope berth-<id>.scope of the pod slice" test -n "$web" -a -d "$scope"
check "container scope is a systemd unit" systemctl is-active "berth-$web.scope"
check "pod slice memory.max (sum of limits)" equals "$slice/memory.max" 67108864
check "pod slice cpu.max (sum of limits)" equals "$slice/cpu.max" "25000 100000"
check "container memory.max from limits" equals "$scope/memory.max" 67108864
check "container cpu.max from limits" equals "$scope/cpu.max" "25000 100000"
check "container memory.min stays 0 (no memory QoS)" equals "$scope/memory.min" 0
check "httpd answers in the pod" sh -c "[ \"\$('$busybox' wget -q -O - http://127.0.0.1:18080/)\" = hello ]"

restarted() { [ "$(attempts probed)" -ge 2 ]; }
check "exec liveness probe failure restarts the container" eventually 180 restarted
puid=$(sandbox_uid probes)
check "besteffort pod in kubepods-besteffort-pod<uid>.slice" \
	test -n "$puid" -a -d "/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${puid//-/_}.slice"

crashed() { pod_matches crash '"name":"crasher","state":.*?"lastState":\{"terminated":\{"exitCode":3,.*?"restartCount":[1-9]'; }
check "crashing container: restartCount >= 1, last exit code 3" eventually 180 crashed
exit_code_3() {
	local id
	id=$("${crictl[@]}" ps -a --name '^crasher$' --state exited -q | head -1)
	"${crictl[@]}" inspect "$id" | grep '"exitCode"'
	"${crictl[@]}" inspect "$id" | grep -q '"exitCode": 3'
}
check "crashing container's exit code in the CRI status" exit_code_3
pods_json >"$tmp/pods.json"
say "pods checked after $(($(date +%s) - start))s"

# --- teardown: the manifests go, kubelet stops the pods and removes their slices.
rm -f "$tmp"/manifests/*.yaml
gone() { ! "${crictl[@]}" pods --state ready -q | grep -q . && ! find /sys/fs/cgroup -name 'berth-*.scope' | grep -q .; }
check "pods stopped once their manifests are removed" eventually 180 gone
slices_gone() { ! find /sys/fs/cgroup/kubepods.slice -name 'kubepods-*-pod*.slice' | grep -q .; }
check "kubelet removed the pod slices" eventually 120 slices_gone
stop_pid "$kubelet_pid" kubelet
kubelet_pid=""
check "remove the pods" "${crictl[@]}" rmp -a -f
# Units that are gone but still referenced stay listed "inactive dead" until systemd's
# garbage collection: only those count as gone.
no_units() {
	local u
	u=$(systemctl list-units --all --plain --no-legend 'berth-*.scope' 'kubepods-*-pod*.slice')
	echo "$u"
	[ -z "$(awk '$3 != "inactive"' <<<"$u")" ]
}
check "no berth scope nor pod slice left among systemd's units (active or failed)" no_units
check "no berth scope nor pod slice left in /sys/fs/cgroup" \
	sh -c "! find /sys/fs/cgroup -name 'berth-*.scope' -o -name 'kubepods-*-pod*.slice' | grep ."
say "kubelet checks took $(($(date +%s) - start))s"
echo "kubelet checks: $pass passed, $fail failed (log: $artifacts/checks.log)"
[ "$fail" = 0 ]
