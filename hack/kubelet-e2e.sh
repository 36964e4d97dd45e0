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
cd "$(dirname "$0")/.."
repo=$(pwd)
export PATH="/usr/local/go/bin:$PATH"

log() { printf 'kubelet-e2e: %s\n' "$*" >&2; }
if [ "$(id -u)" != 0 ]; then
	log "needs root (berthd and kubelet run containers)"
	exit 1
fi
for tool in jq curl ip iptables; do
	command -v "$tool" >/dev/null || { log "needs $tool (hack/install-deps.sh installs it)"; exit 1; }
done
started=$(date +%s)
own="$repo/_output/bin"
artifacts="${KUBELET_E2E_ARTIFACTS:-$repo/_output/kubelet-e2e}"
mkdir -p "$own" "$artifacts" "$repo/hack/.cache/bin"

# build OUT PKG [DIR]: go build into OUT atomically.
build() {
	local out="$1" pkg="$2" dir="${3:-$repo}"
	(cd "$dir" && go build -o "$out.tmp.$$" "$pkg") && mv -f "$out.tmp.$$" "$out"
}

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
cri_version=$(awk '{for (i = 1; i < NF; i++) if ($i == "sigs.k8s.io/cri-tools") {print $(i + 1); exit}}' hack/tools/go.mod)
crictl_bin="$repo/hack/.cache/bin/crictl-$cri_version"
if [ ! -x "$crictl_bin" ]; then
	log "building crictl $cri_version"
	build "$crictl_bin" sigs.k8s.io/cri-tools/cmd/crictl "$repo/hack/tools"
fi
log "building berthd, berth-monitor, testregistry"
build "$own/berthd" ./cmd/berthd
CGO_ENABLED=0 build "$own/berth-monitor" ./cmd/berth-monitor
build "$own/testregistry" ./hack/cmd/testregistry

# --- run directory and teardown.
tmp=$(mktemp -d /tmp/berth-kubelet.XXXXXX)
hex=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
registry_pid="" berthd_pid="" kubelet_pid=""
cgroot="berth-kubelet-$hex"
node="lane1-$hex"
ns=berth-lane1
passed=0 failed=0 failures=()

running() {
	local stat
	[ -n "${1:-}" ] || return 1
	stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $stat != Z* ]]
}

# stop PID NAME: SIGTERM, then SIGKILL after 30 s; only for processes started here.
stop() {
	local pid="$1" name="$2" i
	running "$pid" || { [ -z "$pid" ] || wait "$pid" 2>/dev/null || true; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		running "$pid" || break
		sleep 0.1
	done
	if running "$pid"; then
		log "$name (pid $pid) ignored SIGTERM for 30s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

crictl() { "$crictl_bin" --runtime-endpoint "unix://$tmp/berth.sock" --timeout 60s "$@"; }

# The sysctls kubelet's container manager rewrites (setupKernelTunables).
sysctls=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
	kernel/keys/root_maxkeys kernel/keys/root_maxbytes)
for s in "${sysctls[@]}"; do
	[ -r "/proc/sys/$s" ] && echo "$s=$(cat "/proc/sys/$s")" >>"$tmp/sysctls"
done

restore_sysctls() {
	local line s v
	while IFS= read -r line; do
		s=${line%%=*} v=${line#*=}
		[ "$(cat "/proc/sys/$s")" = "$v" ] && continue
		log "restoring sysctl ${s//\//.} = $v"
		echo "$v" >"/proc/sys/$s" || log "cannot restore $s"
	done <"$tmp/sysctls"
}

# cgroup_mounts: every cgroup hierarchy (v1 controllers and the unified tree).
cgroup_mounts() {
	awk '{for (i = 7; i < NF; i++) if ($i == "-") break; if ($(i + 1) ~ /^cgroup2?$/) print $5}' \
		/proc/self/mountinfo | sort -u
}

# remove_cgroot: the run's cgroup root in every hierarchy, deepest first; processes
# still in it are the run's own (kubelet's pods) and are reported, never moved.
remove_cgroot() {
	local m d
	for m in $(cgroup_mounts); do
		[ -d "$m/$cgroot" ] || continue
		find "$m/$cgroot" -depth -type d -exec rmdir {} \; 2>/dev/null ||
			log "cannot remove cgroup $m/$cgroot: $(find "$m/$cgroot" -name cgroup.procs -exec cat {} + 2>/dev/null | tr '\n' ' ')"
	done
}

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

portmap_chains="CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK"
portmap_preexisting=""
for c in $portmap_chains; do
	iptables -w -t nat -S "$c" >/dev/null 2>&1 && portmap_preexisting+=" $c"
done
remove_portmap_chains() {
	local c
	iptables -w -t nat -S CNI-HOSTPORT-DNAT 2>/dev/null | grep -q '^-A' && return 0
	for c in $portmap_chains; do
		[[ " $portmap_preexisting " == *" $c "* ]] && continue
		iptables -w -t nat -S "$c" >/dev/null 2>&1 || continue
		while iptables -w -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j "$c" 2>/dev/null; do :; done
		while iptables -w -t nat -D OUTPUT -m addrtype --dst-type LOCAL -j "$c" 2>/dev/null; do :; done
		while iptables -w -t nat -D POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j "$c" 2>/dev/null; do :; done
		iptables -w -t nat -F "$c" && iptables -w -t nat -X "$c" || log "cannot remove chain $c"
	done
}

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
	local rc=$? m
	set +e
	stop "$kubelet_pid" kubelet
	if running "$berthd_pid" && [ -n "$(crictl pods -q 2>/dev/null)" ]; then
		crictl rmp --all --force >/dev/null 2>&1 || log "could not remove the pods kubelet left"
	fi
	stop "$berthd_pid" berthd
	stop "$registry_pid" testregistry
	for f in kubelet.log berthd.log registry.log kubelet.yaml berth.toml; do
		[ -f "$tmp/$f" ] && cp -f "$tmp/$f" "$artifacts/$f"
	done
	[ -n "${bridge:-}" ] && ip link show "$bridge" >/dev/null 2>&1 && { ip link del "$bridge" || log "cannot delete bridge $bridge"; }
	[ -n "${ip_forward:-}" ] && echo "$ip_forward" >/proc/sys/net/ipv4/ip_forward
	remove_portmap_chains
	remove_kubelet_chains
	remove_cgroot
	remove_container_log_links
	restore_sysctls
	for m in $(awk -v d="$tmp/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
	done
	rm -rf --one-file-system "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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

start_registry
start_network
start_berthd
make_cgroot
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
