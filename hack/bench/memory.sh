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
# berthd's and the registry's logs there at the end).
# Needs root, runc and the CNI plugins (bridge, host-local, loopback). Never talks to
# anything but 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

shared_pid=0
n=30
for a in "$@"; do
	case "$a" in
	--shared-pid) shared_pid=1 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*[!0-9]* | "") echo "memory.sh: usage: $0 [--shared-pid] [N]" >&2; exit 2 ;;
	*) n=$a ;;
	esac
done
((n > 0)) || { echo "memory.sh: N must be > 0" >&2; exit 2; }

if [ "$(id -u)" != 0 ]; then
	echo "memory.sh: needs root (berthd runs containers)" >&2
	exit 1
fi
export PATH="/usr/local/go/bin:$PATH"

log() { printf 'memory.sh: %s\n' "$*" >&2; }

cache="$repo/hack/.cache"
mkdir -p "$cache/bin"

# build OUT PKG [DIR]: go build into OUT atomically (other checkouts may build too).
build() {
	local out="$1" pkg="$2" dir="${3:-$repo}"
	(cd "$dir" && go build -o "$out.tmp.$$" "$pkg") && mv -f "$out.tmp.$$" "$out"
}

# --- crictl, as hack/critest.sh builds it (pinned in hack/tools/go.mod).
cri_version=$(awk '{for (i = 1; i < NF; i++) if ($i == "sigs.k8s.io/cri-tools") {print $(i + 1); exit}}' hack/tools/go.mod)
[ -n "$cri_version" ] || { log "no sigs.k8s.io/cri-tools requirement in hack/tools/go.mod"; exit 1; }
crictl="$cache/bin/crictl-$cri_version"
if [ ! -x "$crictl" ]; then
	log "building crictl $cri_version"
	build "$crictl" sigs.k8s.io/cri-tools/cmd/crictl "$repo/hack/tools"
fi

# --- run directory and cleanup (set up before anything is started).
tmp=$(mktemp -d /tmp/berth-memory.XXXXXX)
registry_pid=""
berthd_pid=""
bridge=""
ip_forward=""
cgparent="/berth-bench-mem-${tmp##*.}"
sock="$tmp/berth.sock"
printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\n' "$sock" "$sock" >"$tmp/crictl.yaml"

running() {
	local stat
	stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $stat != Z* ]]
}

# stop PID NAME: SIGTERM, then SIGKILL after 30 s. Only for processes started here.
stop() {
	local pid="$1" name="$2" i
	[ -n "$pid" ] || return 0
	running "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
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

cri() { "$crictl" --config "$tmp/crictl.yaml" "$@"; }
# shellcheck source=hack/bench/lib.sh
. hack/bench/lib.sh

# remove_pods removes every pod of this run through berthd (stop leaves pods running,
# as it must).
remove_pods() {
	local left
	[ -n "$berthd_pid" ] && running "$berthd_pid" && [ -S "$sock" ] || return 0
	left=$(cri --timeout 10s pods -q 2>/dev/null | wc -l)
	[ "$left" -gt 0 ] || return 0
	log "removing $left pod(s)"
	cri --timeout 120s rmp --all --force >/dev/null 2>&1 || log "could not remove every pod"
}

# monitors_of_run: pids of berth-monitor processes of this run (their command line or
# working directory names the run directory). One grep and one find over /proc, not a
# few processes per pid (the machine may have thousands); the pattern is read from a
# file, so that grep's own command line does not match it.
monitors_of_run() {
	local pid
	printf '%s/\n' "$tmp" >"$tmp/monitors_of_run.pattern"
	for pid in $({
		grep -lsF -f "$tmp/monitors_of_run.pattern" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3
		find /proc -mindepth 2 -maxdepth 2 -name cwd -lname "$tmp/*" 2>/dev/null | cut -d/ -f3
	} | sort -un); do
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = berth-monitor ] && echo "$pid"
	done
	return 0
}

# remove_leftovers: what berthd could not remove (only if it failed): the OCI
# runtime's containers in this run's --root, then this run's monitors.
remove_leftovers() {
	local r id pid
	for r in "$tmp"/state/runtime/*; do
		[ -d "$r" ] || continue
		for id in $(runc --root "$r" list -q 2>/dev/null); do
			log "leftover container $id: runc delete --force"
			runc --root "$r" delete --force "$id" >/dev/null 2>&1 || log "cannot delete container $id"
		done
	done
	for pid in $(monitors_of_run); do
		log "leftover berth-monitor $pid: killing it"
		kill -KILL "$pid" 2>/dev/null || true
	done
}

cleanup() {
	local rc=$? m d f
	set +e
	remove_pods
	stop "$berthd_pid" berthd
	stop "$registry_pid" testregistry
	remove_leftovers
	if [ -n "${MEMORY_KEEP_LOGS:-}" ]; then
		mkdir -p "$MEMORY_KEEP_LOGS"
		for f in berthd.log registry.log berth.toml; do
			[ -f "$tmp/$f" ] && cp -f "$tmp/$f" "$MEMORY_KEEP_LOGS/$f"
		done
	fi
	if [ -n "$bridge" ] && ip link show "$bridge" >/dev/null 2>&1; then
		ip link del "$bridge" || log "cannot delete bridge $bridge"
	fi
	[ -n "$ip_forward" ] && echo "$ip_forward" >/proc/sys/net/ipv4/ip_forward
	# The pods' cgroup parent, in every hierarchy, deepest first.
	for d in /sys/fs/cgroup/*"$cgparent" /sys/fs/cgroup"$cgparent"; do
		[ -d "$d" ] || continue
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || log "cannot remove cgroup $d"
	done
	# Whatever berthd left mounted under the run directory, deepest first.
	for m in $(awk -v d="$tmp/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
	done
	rm -rf --one-file-system "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- binaries: berthd, and berth-monitor next to it (berthd finds it there), static
# and stripped as hack/start-berthd.sh builds it for a node.
mkdir -p "$tmp/bin"
if [ -n "${BERTHD:-}" ]; then
	cp "$BERTHD" "$tmp/bin/berthd"
else
	log "building berthd"
	go build -o "$tmp/bin/berthd" ./cmd/berthd
fi
log "building berth-monitor, testregistry"
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp/bin/berth-monitor" ./cmd/berth-monitor
build "$cache/bin/testregistry" ./hack/cmd/testregistry

# --- test registry.
: >"$tmp/registry.out"
"$cache/bin/testregistry" -addr 127.0.0.1:0 >"$tmp/registry.out" 2>"$tmp/registry.log" &
registry_pid=$!
registry=""
for ((i = 0; i < 3000; i++)); do # building busybox the first time takes a minute or two
	registry=$(awk '$1 == "ready" {print $2; exit}' "$tmp/registry.out")
	[ -n "$registry" ] && break
	running "$registry_pid" || { log "testregistry exited:"; tail -n 40 "$tmp/registry.log" >&2; exit 1; }
	sleep 0.1
done
[ -n "$registry" ] || { log "testregistry not ready after 5 minutes"; exit 1; }
log "test registry on $registry"

# --- pod network: a bridge bm<hex> with a /24 of 10.197.0.0/16 no host interface
# uses, host-local records in the run directory, no masquerading, no portmap (so no
# iptables rule at all).
bridge="bm$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
subnet=""
for ((i = 0; i < 256; i++)); do
	candidate="10.197.$(((RANDOM + i) % 256))"
	if ! ip -4 -o addr show | grep -q " $candidate\."; then
		subnet="$candidate.0/24"
		break
	fi
done
[ -n "$subnet" ] || { log "no free subnet in 10.197.0.0/16"; exit 1; }
((n <= 250)) || { log "N must be ≤ 250 (one /24 of addresses)"; exit 2; }
ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)
mkdir -p "$tmp/net.d"
cat >"$tmp/net.d/10-memory.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "berth-memory", "plugins": [
  {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$subnet"}]], "dataDir": "$tmp/ipam"}},
  {"type": "loopback"}]}
EOF

# --- berthd.
cat >"$tmp/berth.toml" <<EOF
# Written by hack/bench/memory.sh: images come from the loopback test registry only.
[image.registry]
mirrors_only = true

[image.registry.mirrors]
"docker.io" = ["http://$registry"]
"registry.k8s.io" = ["http://$registry"]

[image.registry.hosts."$registry"]
plain_http = true

[network]
conf_dir = "$tmp/net.d"

# NRI on, as by default, on this run's own socket (never the node's).
[nri]
socket_path = "$tmp/nri.sock"
plugin_path = "$tmp/nri-plugins"
EOF
"$tmp/bin/berthd" --config "$tmp/berth.toml" --config-dir "$tmp/berth.d" \
	--root "$tmp/root" --state "$tmp/state" --listen "unix://$sock" --log-level info \
	>"$tmp/berthd.log" 2>&1 &
berthd_pid=$!
berthd_failed() {
	log "$1; last lines of berthd's log:"
	tail -n 60 "$tmp/berthd.log" >&2
	exit 1
}
for ((i = 0; ; i++)); do
	cri --timeout 2s version >/dev/null 2>&1 && break
	running "$berthd_pid" || berthd_failed "berthd exited"
	((i < 300)) || berthd_failed "berthd not answering on $sock after 30s"
	sleep 0.1
done
log "berthd (pid $berthd_pid) serving on $sock"

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
