#!/usr/bin/env bash
# Lane 1 of issue 8: a real kubelet, standalone (no apiserver), on a private berthd.
# kubelet runs static pods from a manifest directory; the checks read kubelet's own
# view (its read-only port: /pods, /stats/summary, /healthz), crictl on berthd's socket,
# the pod log directory and the cgroup filesystem:
#
#   pods Running and Ready; readiness (httpGet) and liveness (exec, tcpSocket) probes;
#   a liveness failure restarts its container; restart counts and exit codes of a
#   crashing container; CRI logs under kubelet's pod log directory; crictl logs and
#   exec; env and emptyDir; memory and CPU limits in the cgroup; hostPort on
#   127.0.0.1; kubelet's summary API (rootfs usage of a container that wrote 10 MB);
#   graceful termination with a preStop hook; teardown that leaves nothing behind.
#
#   hack/kubelet-e2e.sh            run the lane (needs root)
#   KUBELET=/path/kubelet ...      use this kubelet instead of hack/k8s/build.sh's
#   KUBELET_E2E_ARTIFACTS=dir      where logs are kept (default _output/kubelet-e2e)
#
# The node is left as it was found: kubelet runs without system, kubelet or runtime
# cgroups (no process of the node is moved), under a cgroup root of its own
# (/berth-kubelet-<hex>, so no /kubepods appears), with a private --root-dir and pod log
# directory, ports picked free at run time, makeIPTablesUtilChains off (no KUBE-* chain),
# and the sysctls it rewrites (vm.overcommit_memory, vm.panic_on_oom, kernel.panic,
# kernel.panic_on_oops, kernel.keys.root_max*) recorded first and written back after.
# Only what this run made is removed. Nothing talks to anything but 127.0.0.1 and the
# run's own bridge.
set -euo pipefail
source "$(dirname "$0")/lib/all.sh"
cd "$repo"
log_prefix="kubelet-e2e"
[ "$(id -u)" = 0 ] || die "needs root (berthd and kubelet run containers)"
for tool in jq curl ip iptables; do
	command -v "$tool" >/dev/null || { log "needs $tool (hack/install-deps.sh installs it)"; exit 1; }
done
started=$(date +%s)
own="$repo/_output/bin"
artifacts="${KUBELET_E2E_ARTIFACTS:-$repo/_output/kubelet-e2e}"
mkdir -p "$own" "$artifacts" "$repo/hack/.cache/bin"

# --- binaries: kubelet from hack/k8s/build.sh (machine-wide cache), crictl as
# critest.sh builds it, berthd and its helpers per checkout.
kubelet="${KUBELET:-}"
if [ -z "$kubelet" ]; then
	if [ ! -x hack/k8s/build.sh ]; then
		log "no hack/k8s/build.sh to build kubelet with, and KUBELET is not set"
		exit 1
	fi
	hack/k8s/build.sh kubelet
	kubelet="$(hack/k8s/build.sh --bin-dir)/kubelet"
fi
[ -x "$kubelet" ] || { log "no kubelet at $kubelet"; exit 1; }
crictl_bin=$(ensure_crictl "$repo/hack/.cache/bin")
log "building berthd, berth-monitor, testregistry"
build "$own/berthd" ./cmd/berthd
build_monitor "$own"
build "$own/testregistry" ./hack/cmd/testregistry

# --- run directory and teardown.
tmp=$(mktemp -d /tmp/berth-kubelet.XXXXXX)
hex=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
registry_pid="" berthd_pid="" kubelet_pid=""
cgroot="berth-kubelet-$hex"
node="lane1-$hex"
ns=berth-lane1
passed=0 failed=0 failures=()

crictl() { "$crictl_bin" --runtime-endpoint "unix://$tmp/berth.sock" --timeout 60s "$@"; }

# The sysctls kubelet's container manager rewrites (setupKernelTunables), written
# back afterwards.
record_sysctls "${kubelet_sysctls[@]}" >"$tmp/sysctls"

# Symlinks kubelet makes in /var/log/containers point into the run's pod log dir.
containers_log_dir_preexisting=0
[ -d /var/log/containers ] && containers_log_dir_preexisting=1
remove_container_log_links() {
	local l
	[ -d /var/log/containers ] || return 0
	for l in /var/log/containers/*; do
		[ -L "$l" ] && [[ $(readlink "$l") == "$tmp/"* ]] && rm -f "$l"
	done
	[ "$containers_log_dir_preexisting" = 1 ] || rmdir /var/log/containers 2>/dev/null || true
}

portmap_preexisting=$(existing_portmap_chains)
# kubelet's device manager makes /var/lib/kubelet/device-plugins whatever its root dir.
var_lib_kubelet_preexisting=0
[ -e /var/lib/kubelet ] && var_lib_kubelet_preexisting=1

# kubelet makes its canary chains (and the iptables-mode hint) in every table it
# watches, whatever makeIPTablesUtilChains says; those the lane's kubelet made go with it.
kubelet_chains="KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT"
kubelet_chains_preexisting=""
for ipt in iptables ip6tables; do
	for t in filter nat mangle; do
		for c in $kubelet_chains; do
			"$ipt" -w -t "$t" -S "$c" >/dev/null 2>&1 && kubelet_chains_preexisting+=" $ipt/$t/$c"
		done
	done
done
remove_kubelet_chains() {
	local ipt t c
	for ipt in iptables ip6tables; do
		for t in filter nat mangle; do
			for c in $kubelet_chains; do
				[[ " $kubelet_chains_preexisting " == *" $ipt/$t/$c "* ]] && continue
				"$ipt" -w -t "$t" -S "$c" >/dev/null 2>&1 || continue
				"$ipt" -w -t "$t" -F "$c" && "$ipt" -w -t "$t" -X "$c" || log "cannot remove chain $ipt $t $c"
			done
		done
	done
}

cleanup() {
	local rc=$?
	set +e
	stop_pid "$kubelet_pid" kubelet
	stop_berthd "$berthd_pid" "$crictl_bin" "$tmp/berth.sock"
	stop_pid "$registry_pid" testregistry
	save_artifacts "$tmp" "$artifacts" kubelet.log berthd.log registry.log kubelet.yaml berth.toml
	delete_bridge "${bridge:-}"
	[ -n "${ip_forward:-}" ] && echo "$ip_forward" >/proc/sys/net/ipv4/ip_forward
	remove_portmap_chains "$portmap_preexisting"
	remove_kubelet_chains
	# The run's cgroup root; processes still in it are the run's own (kubelet's
	# pods) and are reported, never moved.
	remove_cgroup_root "$cgroot"
	remove_container_log_links
	if [ "$var_lib_kubelet_preexisting" = 0 ] && [ -e /var/lib/kubelet ]; then
		remove_kubelet_device_dir || log "/var/lib/kubelet (not there before the run) is not empty; left for a look"
	fi
	restore_sysctls "$tmp/sysctls"
	unmount_under "$tmp"
	remove_tree "$tmp"
	exit "$rc"
}
trap_exit cleanup

# check NAME COMMAND...: one numbered check; its output is kept when it fails.
check() {
	local name="$1" out
	shift
	if out=$("$@" 2>&1); then
		passed=$((passed + 1))
		log "ok   $name"
	else
		failed=$((failed + 1))
		failures+=("$name")
		log "FAIL $name"
		[ -z "$out" ] || printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /' >&2
	fi
}

# eventually SECONDS COMMAND...: COMMAND succeeds within SECONDS (its last output shown).
eventually() {
	local secs="$1" end out
	shift
	end=$(($(date +%s) + secs))
	while :; do
		out=$("$@" 2>&1) && { [ -z "$out" ] || printf '%s\n' "$out"; return 0; }
		[ "$(date +%s)" -lt "$end" ] || { printf '%s\n' "$out"; return 1; }
		sleep 1
	done
}

source "$repo/hack/kubelet-e2e/setup.sh"
source "$repo/hack/kubelet-e2e/checks.sh"

start_registry "$own/testregistry" "$tmp"
start_network
start_berthd
make_cgroup_root "$cgroot"
log "cgroup root /$cgroot"
write_manifests
start_kubelet
run_checks
teardown_checks

log "lane 1: $passed/$((passed + failed)) checks passed in $(($(date +%s) - started))s"
if [ "$failed" -gt 0 ]; then
	log "failed: ${failures[*]}"
	log "logs: $artifacts"
	exit 1
fi
