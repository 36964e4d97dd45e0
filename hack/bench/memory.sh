#!/usr/bin/env bash
# Measures berth's memory with N pods, each with one busybox `sleep 1000` container,
# the way ../shared/guides/targets.md states it for containerd (daemon RSS; per pod
# shim + pause; all of it, RSS and PSS) and where berth must land:
#
#   daemon ≤ 40 MiB RSS, per pod ≤ 1 MiB PSS, all of it (N=30) ≤ 45 MiB PSS.
#
#	hack/bench/memory.sh [--shared-pid] [N]        (default N=30)
#
# It runs a private berthd (root, state, socket, CNI network and cgroup parent of its
# own, in a run directory under /tmp) that pulls from the loopback test registry
# (hack/cmd/testregistry), as hack/critest.sh does, and drives it with crictl as
# kubelet would: RunPodSandbox, CreateContainer, StartContainer per pod, one pod after
# the other. The pods ask for a PID namespace per container (namespace_options pid
# CONTAINER), kubelet's default, so that they have no pause process; with --shared-pid
# a second pass follows in which pods and containers share the pod's PID namespace
# (pid POD) and each pod has berth's pause.
#
# Numbers come from /proc/<pid>/smaps_rollup: berthd fresh, after the image pull and
# with the N pods running (a few seconds after the last start); each container's
# berth-monitor (the monitorPid of `crictl inspect`) and each pod's pause (the pid of
# `crictl inspectp`): mean, min, max; the totals (berthd + monitors + pauses) and per
# pod. RSS sums count shared pages once per process, as containerd's figures do; PSS
# splits them, so per-process PSS falls as processes sharing the same binary are
# added. The containers' own processes (sleep) are not counted: they are the same
# under any runtime.
#
# Knobs: BERTHD (a berthd binary to measure instead of building ./cmd/berthd; its
# berth-monitor is built next to it in the run directory), SETTLE (seconds to wait
# after the last start before measuring; default 5), MEMORY_KEEP_LOGS=DIR (copy
# berthd's and the registry's logs and berth.toml there at the end).
# Needs root, runc and the CNI plugins (bridge, host-local, loopback). Never talks to
# anything but 127.0.0.1.
set -euo pipefail
# The lanes' shared shell (log, die, builds, registry, berthd, cleanup).
source "$(dirname "$0")/../lib/all.sh"
cd "$repo"

shared_pid=0
n=30
for a in "$@"; do
	case "$a" in
	--shared-pid) shared_pid=1 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*[!0-9]* | "") log "usage: $0 [--shared-pid] [N]"; exit 2 ;;
	*) n=$a ;;
	esac
done
((n > 0)) || { log "N must be > 0"; exit 2; }

[ "$(id -u)" = 0 ] || die "needs root (berthd runs containers)"

cache="$repo/hack/.cache"
mkdir -p "$cache/bin"

# --- crictl, as hack/critest.sh builds it (pinned in hack/tools/go.mod).
crictl=$(ensure_crictl "$cache/bin")

# --- run directory and cleanup (set up before anything is started).
tmp=$(mktemp -d /tmp/berth-memory.XXXXXX)
registry_pid="" registry=""
berthd_pid=""
bridge=""
ip_forward=""
cgparent="/berth-bench-mem-${tmp##*.}"
sock="$tmp/berth.sock"
printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\n' "$sock" "$sock" >"$tmp/crictl.yaml"

cri() { "$crictl" --config "$tmp/crictl.yaml" "$@"; }
# shellcheck source=hack/bench/lib.sh
. hack/bench/lib.sh

# monitors_of_run: pids of berth-monitor processes of this run (their command line or
# working directory names the run directory).
monitors_of_run() {
	local pid
	for pid in $(processes_under "$tmp"); do
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = berth-monitor ] && echo "$pid"
	done
	return 0
}

# remove_leftovers: what berthd could not remove (only if it failed): the OCI
# runtime's containers in this run's --root, then this run's monitors.
remove_leftovers() {
	local pid
	delete_runc_containers runc "$tmp"/state/runtime/*
	for pid in $(monitors_of_run); do
		log "leftover berth-monitor $pid: killing it"
		kill -KILL "$pid" 2>/dev/null || true
	done
}

cleanup() {
	local rc=$?
	set +e
	# Every pod of this run removed through berthd (its stop leaves pods running, as
	# it must), then berthd stopped.
	remove_pods "$berthd_pid" "$crictl" "$sock" 120s
	stop_pid "$berthd_pid" berthd
	stop_pid "$registry_pid" testregistry
	remove_leftovers
	if [ -n "${MEMORY_KEEP_LOGS:-}" ]; then
		mkdir -p "$MEMORY_KEEP_LOGS"
		save_artifacts "$tmp" "$MEMORY_KEEP_LOGS" berthd.log registry.log berth.toml
	fi
	delete_bridge "$bridge"
	[ -n "$ip_forward" ] && echo "$ip_forward" >/proc/sys/net/ipv4/ip_forward
	# The pods' cgroup parent, in every hierarchy, deepest first.
	remove_cgroup_root "${cgparent#/}"
	# Whatever berthd left mounted under the run directory, deepest first.
	unmount_under "$tmp"
	remove_tree "$tmp"
	exit "$rc"
}
trap_exit cleanup

# --- binaries: berthd, and berth-monitor next to it (berthd finds it there), static
# and stripped as hack/start-berthd.sh builds it for a node.
mkdir -p "$tmp/bin"
if [ -n "${BERTHD:-}" ]; then
	cp "$BERTHD" "$tmp/bin/berthd"
else
	log "building berthd"
	build "$tmp/bin/berthd" ./cmd/berthd
fi
log "building berth-monitor, testregistry"
build_monitor "$tmp/bin"
build "$cache/bin/testregistry" ./hack/cmd/testregistry

# --- test registry (building busybox the first time takes a minute or two).
start_registry "$cache/bin/testregistry" "$tmp"

# --- pod network: a bridge bm<hex> with a /24 of 10.197.0.0/16 no host interface
# uses, host-local records in the run directory, no masquerading, no portmap (so no
# iptables rule at all).
bridge="bm$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
subnet="$(pick_subnet 10.197).0/24"
((n <= 250)) || { log "N must be ≤ 250 (one /24 of addresses)"; exit 2; }
ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)
mkdir -p "$tmp/net.d"
cat >"$tmp/net.d/10-memory.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "berth-memory", "plugins": [
  {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$subnet"}]], "dataDir": "$tmp/ipam"}},
  {"type": "loopback"}]}
EOF

# --- berthd: images from the loopback test registry only (hack/lib's berth.toml).
write_berth_toml "$tmp/berth.toml" "$registry" "$tmp/net.d"
cat >>"$tmp/berth.toml" <<EOF

# NRI on, as by default, on this run's own socket (never the node's).
[nri]
socket_path = "$tmp/nri.sock"
plugin_path = "$tmp/nri-plugins"
EOF
mapfile -t berthd_argv < <(berthd_args "$tmp")
"$tmp/bin/berthd" "${berthd_argv[@]}" >"$tmp/berthd.log" 2>&1 &
berthd_pid=$!
berthd_failed() {
	log "$1; last lines of berthd's log:"
	tail -n 60 "$tmp/berthd.log" >&2
	exit 1
}
wait_berthd "$berthd_pid" "$crictl" "$sock" "$tmp/berthd.log"

# --- measuring.
# mib KB
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
row() { printf '  %-46s %9s %9s\n' "$1" "$2" "$3"; }
# stats LABEL FILE: mean, min, max rows of a file of "RSS PSS" lines.
stats_rows() {
	local label="$1" file="$2"
	if [ ! -s "$file" ]; then
		row "$label: none" - -
		return
	fi
	awk -v label="$label" '
		{ r += $1; p += $2; c++
		  if (c == 1 || $1 < rmin) rmin = $1; if (c == 1 || $1 > rmax) rmax = $1
		  if (c == 1 || $2 < pmin) pmin = $2; if (c == 1 || $2 > pmax) pmax = $2 }
		END {
			printf "  %-46s %9.2f %9.2f\n", label " (" c "), mean", r / c / 1024, p / c / 1024
			printf "  %-46s %9.2f %9.2f\n", "  min", rmin / 1024, pmin / 1024
			printf "  %-46s %9.2f %9.2f\n", "  max", rmax / 1024, pmax / 1024
		}' "$file"
}

image=registry.k8s.io/e2e-test-images/busybox:1.29-2
sleep 2
read -r fresh_rss fresh_pss < <(bench_smaps "$berthd_pid")
log "pulling $image"
cri --timeout 60s pull "$image" >/dev/null
sleep 2
read -r pulled_rss pulled_pss < <(bench_smaps "$berthd_pid")

# pass MODE: MODE 1 = PID namespace per container (no pause), 0 = shared by the pod.
pass() {
	local pidmode="$1" t0 t1
	local what="PID namespace per container (pid CONTAINER): no pause"
	[ "$pidmode" = 0 ] && what="PID namespace shared by the pod (pid POD): one pause each"
	read -r before_rss before_pss < <(bench_smaps "$berthd_pid")
	: >"$tmp/ids"
	log "pass: $n pods, $what"
	t0=$(date +%s.%N)
	bench_pods_up "$n" "$image" "$pidmode" "$cgparent/p$pidmode" "mem-$pidmode" "$tmp/pods" "$tmp/ids" ||
		berthd_failed "making the pods failed"
	t1=$(date +%s.%N)
	log "$n pods up in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s; settling ${SETTLE:-5} s"
	sleep "${SETTLE:-5}"

	# Pids first, then every smaps_rollup in one go, berthd last.
	bench_per_pod_pids berth "$tmp/ids" "$tmp/monitor-pids" "$tmp/pause-pids" || berthd_failed "crictl inspect"
	if [ "$pidmode" = 0 ] && [ "$(wc -l <"$tmp/pause-pids")" != "$n" ]; then
		berthd_failed "not every pod has a pause pid in crictl inspectp"
	fi
	bench_smaps_of "$tmp/monitor-pids" "$tmp/monitors" || berthd_failed "a monitor is gone"
	bench_smaps_of "$tmp/pause-pids" "$tmp/pauses" || berthd_failed "a pause is gone"
	read -r with_rss with_pss < <(bench_smaps "$berthd_pid")
	# Cross-check: the monitors of this run as seen in /proc are the ones berthd reported.
	local seen
	seen=$(monitors_of_run | sort -n | tr '\n' ' ')
	[ "$seen" = "$(sort -n "$tmp/monitor-pids" | tr '\n' ' ')" ] ||
		log "note: berth-monitor processes in /proc ($seen) differ from crictl's monitorPids"

	read -r mon_rss mon_pss < <(bench_sum "$tmp/monitors")
	read -r pau_rss pau_pss < <(bench_sum "$tmp/pauses")
	local tot_rss=$((with_rss + mon_rss + pau_rss)) tot_pss=$((with_pss + mon_pss + pau_pss))
	local npause
	npause=$(wc -l <"$tmp/pauses")

	echo
	echo "berth memory: $n pods, each one busybox 'sleep 1000'; $what"
	echo "(from /proc/<pid>/smaps_rollup; MiB; berthd $berthd_pid, $(nproc) CPUs, $(uname -r))"
	printf '  %-46s %9s %9s\n' "" RSS PSS
	if [ "$pidmode" = 1 ]; then
		row "berthd idle, fresh" "$(mib "$fresh_rss")" "$(mib "$fresh_pss")"
		row "berthd idle, after pulling busybox" "$(mib "$pulled_rss")" "$(mib "$pulled_pss")"
	else
		row "berthd before this pass" "$(mib "$before_rss")" "$(mib "$before_pss")"
	fi
	row "berthd with $n pods" "$(mib "$with_rss")" "$(mib "$with_pss")"
	row "  growth per pod (vs. before the pods)" \
		"$(awk -v a="$before_rss" -v b="$with_rss" -v n="$n" 'BEGIN {printf "%.3f", (b - a) / n / 1024}')" \
		"$(awk -v a="$before_pss" -v b="$with_pss" -v n="$n" 'BEGIN {printf "%.3f", (b - a) / n / 1024}')"
	stats_rows "berth-monitor" "$tmp/monitors"
	# What one monitor's RSS is made of (the first one; they are all alike).
	awk '$1 == "Rss:" {r = $2} $1 == "Anonymous:" {a = $2} $1 == "Shared_Clean:" {sc = $2}
		$1 == "Private_Clean:" {pc = $2} $1 == "Private_Dirty:" {pd = $2}
		END {printf "    one monitor, kB: anonymous %d, file %d (shared clean %d, private clean %d, private dirty %d)\n", a, r - a, sc, pc, pd}' \
		"/proc/$(head -n 1 "$tmp/monitor-pids")/smaps_rollup" || true
	stats_rows "pause" "$tmp/pauses"
	row "all monitors + pauses" "$(mib $((mon_rss + pau_rss)))" "$(mib $((mon_pss + pau_pss)))"
	row "total: berthd + $n monitors + $npause pauses" "$(mib "$tot_rss")" "$(mib "$tot_pss")"
	row "per pod: monitor + pause" \
		"$(awk -v k=$((mon_rss + pau_rss)) -v n="$n" 'BEGIN {printf "%.2f", k / n / 1024}')" \
		"$(awk -v k=$((mon_pss + pau_pss)) -v n="$n" 'BEGIN {printf "%.2f", k / n / 1024}')"
	row "per pod: monitor + pause + berthd growth" \
		"$(awk -v k=$((mon_rss + pau_rss + with_rss - before_rss)) -v n="$n" 'BEGIN {printf "%.2f", k / n / 1024}')" \
		"$(awk -v k=$((mon_pss + pau_pss + with_pss - before_pss)) -v n="$n" 'BEGIN {printf "%.2f", k / n / 1024}')"
	echo "  targets (targets.md, 30 pods): berthd ≤ 40 RSS; per pod ≤ 1 PSS; total ≤ 45 PSS"
	echo "  containerd: daemon 69 RSS; per pod 18.5 RSS / 5.3 PSS shim + 0.6 pause; total 620 RSS / 225 PSS"

	log "removing the $n pods"
	cri --timeout 300s rmp --all --force >/dev/null || berthd_failed "rmp --all failed"
	rm -rf "$tmp/pods"
}

pass 1
if [ "$shared_pid" = 1 ]; then
	pass 0
fi
