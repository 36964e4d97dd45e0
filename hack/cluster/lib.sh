# Shared by hack/cluster-up.sh, hack/cluster-down.sh and hack/cluster-e2e.sh
# (and hack/node-e2e.sh): where a cluster's state lives and how its pieces are
# found again. The generic helpers (log, die, running, stop_pid, free_port,
# cgroup_mounts, record_sysctls, restore_sysctls, ...) come from hack/lib.
# Sourced, not run.

# shellcheck shell=bash
# shellcheck disable=SC1091
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib/all.sh"
# One cluster per checkout: cluster-up writes the shell variables that describe
# it here; cluster-down and cluster-e2e read them.
cluster_env="$repo/_output/cluster/env"

# The iptables chains this lane may create: kube-proxy's and kubelet's KUBE-*
# and portmap's CNI-*. cluster-up records those that exist already; only the
# others are removed.
iptables_tables=(filter nat mangle)

# list_chains CMD: "table chain" for every KUBE-*/CNI-* chain of CMD
# (iptables or ip6tables).
list_chains() {
	local t
	for t in "${iptables_tables[@]}"; do
		"$1" -w -t "$t" -S 2>/dev/null | awk -v t="$t" '$1 == "-N" && $2 ~ /^(KUBE|CNI)-/ {print t, $2}'
	done
}

# kubectl_ ARGS: kubectl on the lane's cluster.
kubectl_() { "$k8s_bin/kubectl" --kubeconfig "$run/admin.kubeconfig" "$@"; }
