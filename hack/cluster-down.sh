#!/usr/bin/env bash
# Stops the cluster hack/cluster-up.sh started and removes everything it made:
# its processes (by the PIDs it recorded), its pods (through its berthd), the
# mounts under its run directory, its cgroupRoot in every hierarchy, the
# KUBE-*/CNI-* iptables chains that did not exist before it, its bridge, and the
# sysctls kubelet and kube-proxy rewrote. Then it checks that nothing is left
# and fails if something is. Safe to run again after a partial failure.
set -euo pipefail
source "$(dirname "$0")/cluster/lib.sh"
[ "$(id -u)" = 0 ] || die "needs root"
if [ ! -f "$cluster_env" ]; then
	log "no cluster is up (no $cluster_env)"
	exit 0
fi
# shellcheck disable=SC1090
source "$cluster_env"
set +e
leftovers=0
left() { log "left behind: $*"; leftovers=$((leftovers + 1)); }

# kubelet first, so that nothing restarts what berthd is told to remove.
stop_pid "${kubelet_pid:-}" kubelet
remove_pods "${berthd_pid:-}" "$crictl" "${sock:-}" 120s
stop_pid "${berthd_pid:-}" berthd
for c in proxy scheduler controller_manager apiserver etcd registry; do
	pid_var="${c}_pid"
	stop_pid "${!pid_var:-}" "$c"
done

# Keep the logs of the last run (cluster-e2e prints from them on failure).
if [ -d "$run/logs" ]; then
	rm -rf "$repo/_output/cluster/logs"
	cp -r "$run/logs" "$repo/_output/cluster/logs"
fi

# iptables: the KUBE-* chains that were not there before the run. kubelet's
# canary chains are shared with any other kubelet on the machine: left alone
# while one runs (it would only make them again).
other_kubelet=""
pgrep -x kubelet >/dev/null 2>&1 && other_kubelet=1
# ours CMD BEFORE: "table chain" for each KUBE-*/CNI-* chain of CMD not listed in
# BEFORE.
ours() {
	local table chain
	list_chains "$1" | while read -r table chain; do
		grep -qx "$table $chain" "$2" 2>/dev/null && continue
		# CNI-* chains of pods are gone with the pods (CNI DEL); other runtimes'
		# pods on this machine have theirs, and portmap's shared ones are
		# handled below.
		[[ $chain == KUBE-* ]] || continue
		if [ -n "$other_kubelet" ] && [[ $chain == KUBE-KUBELET-CANARY || $chain == KUBE-IPTABLES-HINT ]]; then
			continue
		fi
		echo "$table $chain"
	done
}
remove_chains() {
	local cmd="$1" before="$2" table chain rule
	local -a mine
	mapfile -t mine < <(ours "$cmd" "$before")
	[ ${#mine[@]} -gt 0 ] || return 0
	# Every rule that jumps to one of them, in any chain; then flush them all
	# (they jump to one another), then delete them.
	for entry in "${mine[@]}"; do
		read -r table chain <<<"$entry"
		while read -r rule; do
			[ -n "$rule" ] || continue
			eval "$cmd -w -t $table -D ${rule#-A }" 2>/dev/null
		done < <("$cmd" -w -t "$table" -S | awk -v c="$chain" '$1 == "-A" {for (i = 3; i < NF; i++) if ($i == "-j" && $(i + 1) == c) {print; break}}')
	done
	for entry in "${mine[@]}"; do
		read -r table chain <<<"$entry"
		"$cmd" -w -t "$table" -F "$chain" 2>/dev/null
	done
	for entry in "${mine[@]}"; do
		read -r table chain <<<"$entry"
		"$cmd" -w -t "$table" -X "$chain" 2>/dev/null || left "$cmd -t $table chain $chain"
	done
}
remove_chains iptables "$run/chains4.before"
remove_chains ip6tables "$run/chains6.before"
# portmap's shared chains, if the run made them and no pod (of any runtime on
# this machine) forwards a port through them any more.
remove_portmap_chains "$(awk '$1 == "nat" {printf " %s", $2}' "$run/chains4.before" 2>/dev/null)" ||
	left "portmap's iptables nat chains"

# Mounts under the run directory (kubelet's volumes, berthd's rootfs and shm),
# deepest first.
unmount_under "$run" || left "mounts under $run"

# cgroups: the run's cgroupRoot in every hierarchy, and berth's default parent if
# the run made it.
remove_cgroup_root "$cgroup_root" || left "cgroup /$cgroup_root"
remove_berth_parents "$(cat "$run/cgroups.before" 2>/dev/null)"

restore_sysctls "$run/sysctls.before"
delete_bridge "$bridge" || left "bridge $bridge"
# kubelet's device manager makes /var/lib/kubelet/device-plugins whatever its
# root dir: removed when the run made it, it is empty and no other kubelet runs.
if [ ! -e "$run/var-lib-kubelet.before" ] && [ -e /var/lib/kubelet ] && [ -z "$other_kubelet" ]; then
	remove_kubelet_device_dir || left "/var/lib/kubelet (not there before the run, not empty now)"
fi

for c in kubelet berthd proxy scheduler controller_manager apiserver etcd registry; do
	pid_var="${c}_pid"
	running "${!pid_var:-}" && left "$c (pid ${!pid_var})"
done
if ((leftovers == 0)); then
	rm -rf --one-file-system "$run"
	rm -f "$cluster_env"
	log "cluster down; nothing left behind"
	exit 0
fi
log "$leftovers thing(s) left behind; $cluster_env and $run kept"
exit 1
