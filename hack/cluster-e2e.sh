#!/usr/bin/env bash
# Checks a one-node cluster on Berth with kubectl: Deployments roll out and
# update, a ClusterIP Service reaches its pods, exec/attach/logs -f/
# port-forward/cp stream through kubelet to berthd, the kubelet summary API
# has figures, a Job completes, ConfigMap/Secret/projected token volumes are
# mounted, a pod over its memory limit is OOMKilled, deletion honours the
# grace period and preStop, and the node drains. Prints "N passed, M failed".
#
#   hack/cluster-e2e.sh            brings a cluster up, checks, tears it down
#                                  (and checks that nothing is left)
#   hack/cluster-e2e.sh --keep     uses (or leaves up) the cluster of this checkout
#   CLUSTER_E2E_FOCUS=regexp       only the checks whose name matches
set -uo pipefail
source "$(dirname "$0")/cluster/lib.sh"
[ "$(id -u)" = 0 ] || die "needs root"
keep=""
[ "${1:-}" = "--keep" ] && keep=1
started=""
t0=$(date +%s)
if [ ! -f "$cluster_env" ]; then
	"$repo/hack/cluster-up.sh" || die "cluster-up failed"
	started=1
fi
# shellcheck disable=SC1090
source "$cluster_env"
source "$repo/hack/cluster/checks.sh"

ns="e2e-$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')"
kubectl_ create namespace "$ns" >/dev/null || die "cannot create namespace $ns"
k() { kubectl_ -n "$ns" "$@"; }

passed=0 failed=0 failures=()
# run_check NAME FUNCTION: run one check, count it and print its line (and the end of
# its output when it fails).
run_check() {
	local name="$1" fn="$2" t out rc
	t=$(date +%s)
	out=$("$fn" 2>&1)
	rc=$?
	if [ "$rc" = 0 ]; then
		passed=$((passed + 1))
		printf 'PASS  %-58s %3ss\n' "$name" "$(($(date +%s) - t))"
	else
		failed=$((failed + 1))
		failures+=("$name")
		printf 'FAIL  %-58s %3ss\n' "$name" "$(($(date +%s) - t))"
		sed 's/^/      /' <<<"$out" | tail -n 25
	fi
}
# check NAME FUNCTION: run_check, unless CLUSTER_E2E_FOCUS leaves NAME out.
check() {
	if [ -n "${CLUSTER_E2E_FOCUS:-}" ] && ! [[ $1 =~ $CLUSTER_E2E_FOCUS ]]; then
		return
	fi
	run_check "$@"
}

check "Deployment of 3 replicas rolls out" deployment_rolls_out
check "ClusterIP Service reaches its pods" service_reaches_pods
check "Deployment rolls an update (and the Service follows)" deployment_rolls_update
check "kubectl exec" exec_plain
check "kubectl exec -i (stdin)" exec_stdin
check "kubectl exec -it (tty)" exec_tty
check "kubectl logs -f follows to the end" logs_follow
check "kubectl attach" attach
check "kubectl port-forward" port_forward
check "kubectl cp both ways" copy
check "kubelet summary API has container stats" summary_stats
check "Job completes" job_completes
check "ConfigMap, Secret and projected token volumes" volumes
check "pod over its memory limit is OOMKilled" oom_killed
check "deletion runs preStop, then TERM, within the grace period" graceful_delete
check "deletion kills after the grace period" grace_period_kill
check "kubectl drain evicts and uncordon restores" drain

kubectl_ delete namespace "$ns" --wait=true --timeout=120s >/dev/null 2>&1 ||
	log "namespace $ns not deleted in 120s"
cluster_down() { "$repo/hack/cluster-down.sh"; }
if [ -n "$started" ] && [ -z "$keep" ]; then
	run_check "cluster-down leaves nothing behind" cluster_down
fi
for f in "${failures[@]}"; do
	log "failed: $f"
done
echo "cluster-e2e: $passed passed, $failed failed in $(($(date +%s) - t0))s"
[ "$failed" = 0 ]
