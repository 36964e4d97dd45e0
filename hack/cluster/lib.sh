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

# The chains a node's kubelet and CNI make whatever the settings: kubelet's
# canaries and iptables-mode hint in every table it watches (v4 and v6), and
# portmap's hostPort chains. (KUBE-FIREWALL is not among them: a kubelet with
# makeIPTablesUtilChains off makes none, and one that appears is another
# node's.)
node_chains=(KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT
	CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK)

# record_node_chains: "cmd table chain" for each of node_chains that exists.
record_node_chains() {
	local ipt t c
	for ipt in iptables ip6tables; do
		for t in "${iptables_tables[@]}"; do
			for c in "${node_chains[@]}"; do
				"$ipt" -w -t "$t" -S "$c" >/dev/null 2>&1 && echo "$ipt $t $c"
			done
		done
	done
	return 0
}

# remove_node_chains FILE: remove each of node_chains that exists now and FILE
# (record_node_chains before the run) does not list, with the rules that jump
# to it. Portmap's stay while CNI-HOSTPORT-DNAT holds a rule: another run's
# hostPort still needs them.
remove_node_chains() {
	local ipt t c rule
	for ipt in iptables ip6tables; do
		for t in "${iptables_tables[@]}"; do
			for c in "${node_chains[@]}"; do
				grep -qx "$ipt $t $c" "$1" 2>/dev/null && continue
				"$ipt" -w -t "$t" -S "$c" >/dev/null 2>&1 || continue
				if [[ $c == CNI-HOSTPORT-* ]] && "$ipt" -w -t "$t" -S CNI-HOSTPORT-DNAT 2>/dev/null | grep -q '^-A'; then
					continue
				fi
				"$ipt" -w -t "$t" -S | awk -v c="$c" '$1 == "-A" {for (i = 2; i < NF; i++) if ($i == "-j" && $(i + 1) == c) {print; next}}' |
					while IFS= read -r rule; do
						eval "\"$ipt\" -w -t \"$t\" -D ${rule#-A }" || log "cannot delete $ipt $t rule: $rule"
					done
				"$ipt" -w -t "$t" -F "$c" && "$ipt" -w -t "$t" -X "$c" || log "cannot remove chain $ipt $t $c"
			done
		done
	done
}
