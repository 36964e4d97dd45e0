#!/usr/bin/env bash
# Density of any CRI runtime: N pods, each with one busybox `sleep 1000`, made one after
# the other through crictl as kubelet would (RunPodSandbox, CreateContainer,
# StartContainer), then memory from /proc/<pid>/smaps_rollup of the runtime's daemon and
# of the processes it keeps per pod, then every pod removed.
#
#	hack/bench/density.sh KIND ENDPOINT DAEMON_PID N OUT_FILE
#
# KIND is berth or containerd: it says which processes are per pod. Berth: each
# container's berth-monitor (the monitorPid of `crictl inspect`) and the pod's pause if
# it has one (the pid of `crictl inspectp`; none with a PID namespace per container).
# containerd: the pod's pause (the pid of `crictl inspectp`) and its shim, the pause's
# parent. The pods ask for a PID namespace per container, kubelet's default. The
# containers' own processes (sleep) are the same under any runtime and not counted.
#
# OUT_FILE gets "key value" lines (read by hack/cmd/benchcompare): up_seconds,
# daemon_{rss,pss}_kb before and with the pods, pods_{rss,pss}_kb (the per-pod
# processes summed), total_{rss,pss}_kb, per_pod_pss_kb (per-pod processes plus the
# daemon's growth, per pod). RSS sums count shared pages once per process; PSS splits
# them.
#
# Environment: CRICTL (the crictl binary; required), DENSITY_IMAGE (default the e2e
# busybox, which the runtime must be able to pull), DENSITY_CGROUP_PARENT (the pods'
# cgroup parent prefix; default /berth-density-$$: each pod gets <prefix>/pod-<i>; the
# caller removes the empty tree), DENSITY_SETTLE (seconds before measuring; default 5).
# Needs root, jq. Removes its pods also when it fails.
set -euo pipefail

if [ $# -ne 5 ]; then
	echo "usage: $0 berth|containerd ENDPOINT DAEMON_PID N OUT_FILE" >&2
	exit 2
fi
kind=$1 endpoint=$2 daemon=$3 n=$4 out=$5
case "$kind" in berth | containerd) ;; *) echo "density.sh: unknown kind $kind" >&2; exit 2 ;; esac
: "${CRICTL:?CRICTL must name the crictl binary}"
image=${DENSITY_IMAGE:-registry.k8s.io/e2e-test-images/busybox:1.29-2}
cgparent=${DENSITY_CGROUP_PARENT:-/berth-density-$$}

log() { printf 'density.sh (%s): %s\n' "$kind" "$*" >&2; }
cri() { "$CRICTL" --config /dev/null --runtime-endpoint "$endpoint" --image-endpoint "$endpoint" "$@"; }
# shellcheck source=hack/bench/lib.sh
. "$(dirname "$0")/lib.sh"

work=$(mktemp -d /tmp/berth-density.XXXXXX)
cleanup() {
	local rc=$? left
	set +e
	left=$(cri --timeout 10s pods -q 2>/dev/null | wc -l)
	if [ "$left" -gt 0 ] && [ -s "$work/ids" ]; then
		log "removing the $left pod(s)"
		while read -r pod _; do
			cri --timeout 60s stopp "$pod" >/dev/null 2>&1
			cri --timeout 60s rmp "$pod" >/dev/null 2>&1 || log "cannot remove pod $pod"
		done <"$work/ids"
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cri --timeout 120s pull "$image" >/dev/null
sleep 1
read -r before_rss before_pss < <(bench_smaps "$daemon")
: >"$work/ids"
log "$n pods, each one busybox sleep"
t0=$(date +%s.%N)
bench_pods_up "$n" "$image" 1 "$cgparent" berth-density "$work/pods" "$work/ids"
t1=$(date +%s.%N)
log "up in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s; settling ${DENSITY_SETTLE:-5} s"
sleep "${DENSITY_SETTLE:-5}"

# The per-pod processes' pids first, then every smaps_rollup in one go.
bench_per_pod_pids "$kind" "$work/ids" "$work/monitors" "$work/pauses"
sort -un "$work/monitors" "$work/pauses" -o "$work/pids"
bench_smaps_of "$work/pids" "$work/smaps"
read -r pods_rss pods_pss < <(bench_sum "$work/smaps")
read -r with_rss with_pss < <(bench_smaps "$daemon")
{
	echo "up_seconds $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')"
	echo "daemon_before_rss_kb $before_rss"
	echo "daemon_before_pss_kb $before_pss"
	echo "daemon_rss_kb $with_rss"
	echo "daemon_pss_kb $with_pss"
	echo "pods_processes $(wc -l <"$work/pids")"
	echo "pods_rss_kb $pods_rss"
	echo "pods_pss_kb $pods_pss"
	echo "total_rss_kb $((with_rss + pods_rss))"
	echo "total_pss_kb $((with_pss + pods_pss))"
	echo "per_pod_pss_kb $(((pods_pss + with_pss - before_pss) / n))"
} >"$out"
log "$(tr '\n' ' ' <"$out")"

log "removing the $n pods"
while read -r pod _; do
	cri --timeout 60s stopp "$pod" >/dev/null
	cri --timeout 60s rmp "$pod" >/dev/null
done <"$work/ids"
: >"$work/ids"
