# Shared by hack/cluster-up.sh, hack/cluster-down.sh and hack/cluster-e2e.sh:
# where a cluster's state lives and how its pieces are started, stopped and
# found again. Sourced, not run.

# shellcheck shell=bash
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PATH="/usr/local/go/bin:$PATH"
# One cluster per checkout: cluster-up writes the shell variables that describe
# it here; cluster-down and cluster-e2e read them.
cluster_env="$repo/_output/cluster/env"

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "$*"; exit 1; }

# running PID: the process exists and is not a zombie.
running() {
	local stat
	[ -n "${1:-}" ] || return 1
	stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $stat != Z* ]]
}

# stop PID NAME [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 30).
# Only ever called with PIDs this lane started (recorded in the env file).
stop_pid() {
	local pid="$1" name="$2" secs="${3:-30}" i
	running "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < secs * 10; i++)); do
		running "$pid" || return 0
		sleep 0.1
	done
	log "$name (pid $pid) ignored SIGTERM for ${secs}s; killing it"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		running "$pid" || return 0
		sleep 0.1
	done
}

# free_port: a TCP port nothing listens on, from a range no default port of
# Kubernetes, etcd or the loopback registry uses. Others may race for it; the
# caller's process fails to bind in that rare case and cluster-up says so.
free_port() {
	local p used
	used=$(ss -Htan | awk '{n = split($4, a, ":"); print a[n]}' | sort -u)
	for ((;;)); do
		p=$((20000 + RANDOM % 12000))
		grep -qx "$p" <<<"$used" && continue
		[[ " ${taken_ports:-} " == *" $p "* ]] && continue
		taken_ports="${taken_ports:-} $p"
		echo "$p"
		return
	done
}

# The host sysctls kubelet (setupKernelTunables) and kube-proxy may rewrite.
# cluster-up records them; cluster-down writes back each one that changed.
tracked_sysctls=(
	vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
	kernel/keys/root_maxkeys kernel/keys/root_maxbytes
	net/ipv4/ip_forward net/ipv4/conf/all/route_localnet
	net/bridge/bridge-nf-call-iptables net/netfilter/nf_conntrack_max
	net/netfilter/nf_conntrack_tcp_timeout_established
	net/netfilter/nf_conntrack_tcp_timeout_close_wait
)

# record_sysctls: "path=value" per line for every tracked sysctl that exists.
record_sysctls() {
	local s
	for s in "${tracked_sysctls[@]}"; do
		[ -r "/proc/sys/$s" ] && printf '%s=%s\n' "$s" "$(cat "/proc/sys/$s")"
	done
}

# restore_sysctls FILE: write back each recorded value that differs now.
restore_sysctls() {
	local line s v
	[ -f "$1" ] || return 0
	while IFS= read -r line; do
		s=${line%%=*} v=${line#*=}
		[ "$(cat "/proc/sys/$s" 2>/dev/null)" = "$v" ] && continue
		log "restoring sysctl ${s//\//.} = $v"
		echo "$v" >"/proc/sys/$s" || log "cannot restore $s"
	done <"$1"
}

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

# cgroup_mounts: the mount point of every cgroup hierarchy (v1 and v2).
cgroup_mounts() {
	awk '{for (i = 7; i < NF; i++) if ($i == "-") break; if ($(i + 1) ~ /^cgroup2?$/) print $5}' \
		/proc/self/mountinfo | sort -u
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
