#!/usr/bin/env bash
# Runs cri-tools' critest against a private berthd that pulls every image from
# an in-process loopback registry (hack/cmd/testregistry), then compares the
# specs that passed with the ratchet hack/critest-pass.txt.
#
#   hack/critest.sh                          full run; fails if a listed spec did not pass
#   CRITEST_FOCUS='Image Manager' hack/critest.sh   only specs matching the regexp
#   CRITEST_UPDATE=1 hack/critest.sh         rewrite the ratchet with the passing set
#
# Other knobs: BERTHD (a berthd binary to test instead of building
# ./cmd/berthd), CRITEST_BIN (a directory holding crictl, critest, berthd,
# berth-monitor, testregistry and critestreport, already built: nothing is built and
# no Go is needed; the VM lane uses it), CRITEST_RUNC (the runc berthd's "runc"
# handler runs, e.g. /usr/sbin/runc for the distribution's; default: the first runc in
# $PATH), CRITEST_CGROUP_DRIVER (berthd's cgroup_driver, default berthd's own),
# CRITEST_RATCHET (default hack/critest-pass.txt), CRITEST_PARALLEL (default 1; more
# needs the ginkgo CLI in PATH), CRITEST_VERBOSE=1 (all of critest's output),
# CRITEST_ARTIFACTS (where the JUnit report and the logs of the last run are kept;
# default _output/critest).
# Needs root. Never talks to anything but 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

if [ "$(id -u)" != 0 ]; then
	echo "critest.sh: needs root (berthd runs containers)" >&2
	exit 1
fi
export PATH="/usr/local/go/bin:$PATH"

cache="$repo/hack/.cache"
bin="$cache/bin"
# berthd and the project's own helpers are built per checkout: hack/.cache may be a
# machine-wide cache shared by several checkouts (CI links it), and one checkout's berthd
# must never be tested by another's run.
own="$repo/_output/bin"
artifacts="${CRITEST_ARTIFACTS:-$repo/_output/critest}"
ratchet="$repo/hack/critest-pass.txt"
images_file="$repo/hack/critest-images.yaml"
parallel="${CRITEST_PARALLEL:-1}"
ratchet="${CRITEST_RATCHET:-$ratchet}"
if [ -n "${CRITEST_BIN:-}" ]; then
	own="$CRITEST_BIN"
	bin="$CRITEST_BIN"
fi
mkdir -p "$bin" "$own" "$artifacts"

log() { printf 'critest.sh: %s\n' "$*" >&2; }

# build OUT PKG [DIR]: go build into OUT atomically (other checkouts may build too).
build() {
	local out="$1" pkg="$2" dir="${3:-$repo}"
	(cd "$dir" && go build -o "$out.tmp.$$" "$pkg") && mv -f "$out.tmp.$$" "$out"
}

# --- tools: crictl and critest as pinned in hack/tools/go.mod, cached by version.
cri_version=$(awk '{for (i = 1; i < NF; i++) if ($i == "sigs.k8s.io/cri-tools") {print $(i + 1); exit}}' hack/tools/go.mod)
if [ -z "$cri_version" ]; then
	log "no sigs.k8s.io/cri-tools requirement in hack/tools/go.mod"
	exit 1
fi
crictl="$bin/crictl-$cri_version"
critest="$bin/critest-$cri_version"
if [ -n "${CRITEST_BIN:-}" ]; then
	crictl="$bin/crictl"
	critest="$bin/critest"
	berthd="${BERTHD:-$own/berthd}"
else
if [ ! -x "$crictl" ]; then
	log "building crictl $cri_version"
	build "$crictl" sigs.k8s.io/cri-tools/cmd/crictl "$repo/hack/tools"
fi
if [ ! -x "$critest" ]; then
	log "building critest $cri_version"
	(cd hack/tools && go test -c -o "$critest.tmp.$$" sigs.k8s.io/cri-tools/cmd/critest) && mv -f "$critest.tmp.$$" "$critest"
fi
berthd="${BERTHD:-$own/berthd}"
if [ -z "${BERTHD:-}" ]; then
	log "building berthd"
	build "$berthd" ./cmd/berthd
fi
# berthd finds berth-monitor next to itself.
log "building berth-monitor"
CGO_ENABLED=0 build "$(dirname "$berthd")/berth-monitor" ./cmd/berth-monitor
log "building testregistry, critestreport"
build "$own/testregistry" ./hack/cmd/testregistry
build "$own/critestreport" ./hack/cmd/critestreport
fi

# --- run directory and cleanup.
tmp=$(mktemp -d /tmp/berth-critest.XXXXXX)
# 0711, as berthd makes its root and state: the root of a user-namespaced pod (no one on
# the host) must pass through to its root filesystem.
chmod 0711 "$tmp"
registry_pid=""
berthd_pid=""

# running PID: the process exists and is not a zombie waiting to be reaped.
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

# remove_portmap_chains removes the shared chains portmap made during the run,
# unless a pod (of another runtime on this host) still forwards ports.
remove_portmap_chains() {
	local c
	[ -n "${portmap_chains:-}" ] || return 0
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

# remove_pods removes the pods critest left (some specs do not clean up when they
# fail), through berthd, so that no pause, namespace or cgroup outlives the run:
# berthd's stop leaves pods running, as it must.
remove_pods() {
	local n
	[ -n "$berthd_pid" ] && running "$berthd_pid" && [ -S "${sock:-}" ] || return 0
	n=$("$crictl" --runtime-endpoint "unix://$sock" --timeout 10s pods -q 2>/dev/null | wc -l)
	[ "$n" -gt 0 ] || return 0
	log "removing the $n pod(s) critest left"
	"$crictl" --runtime-endpoint "unix://$sock" --timeout 60s rmp --all --force >/dev/null 2>&1 ||
		log "could not remove every pod critest left"
}

# remove_default_cgroup_parent removes the empty /berth cgroups the run created.
remove_default_cgroup_parent() {
	local d
	[ -z "${cgroup_parent_preexisting+x}" ] && return 0
	for d in /sys/fs/cgroup/*/berth /sys/fs/cgroup/berth; do
		[ -d "$d" ] || continue
		[[ $'\n'"$cgroup_parent_preexisting"$'\n' == *$'\n'"$d"$'\n'* ]] && continue
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || log "cannot remove cgroup $d"
	done
}

cleanup() {
	local rc=$? m
	set +e
	remove_pods
	stop "$berthd_pid" berthd
	stop "$registry_pid" testregistry
	for f in junit.xml critest.log berthd.log registry.log berth.toml; do
		[ -f "$tmp/$f" ] && cp -f "$tmp/$f" "$artifacts/$f"
	done
	if [ -n "${bridge:-}" ] && ip link show "$bridge" >/dev/null 2>&1; then
		ip link del "$bridge" || log "cannot delete bridge $bridge"
	fi
	[ -n "${ip_forward:-}" ] && echo "$ip_forward" >/proc/sys/net/ipv4/ip_forward
	remove_portmap_chains
	remove_default_cgroup_parent
	# Unmount whatever berthd left mounted under the run directory, deepest first.
	for m in $(awk -v d="$tmp/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
	done
	rm -rf --one-file-system "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- test registry.
: >"$tmp/registry.out"
"$own/testregistry" -addr 127.0.0.1:0 >"$tmp/registry.out" 2>"$tmp/registry.log" &
registry_pid=$!
registry=""
for ((i = 0; i < 3000; i++)); do # building busybox the first time takes a minute or two
	registry=$(awk '$1 == "ready" {print $2; exit}' "$tmp/registry.out")
	[ -n "$registry" ] && break
	if ! running "$registry_pid"; then
		log "testregistry exited:"; tail -n 40 "$tmp/registry.log" >&2; exit 1
	fi
	sleep 0.1
done
if [ -z "$registry" ]; then
	log "testregistry not ready after 5 minutes:"; tail -n 40 "$tmp/registry.log" >&2; exit 1
fi
log "test registry on $registry"

# --- pod network: critest's own, so that its pods stay off the node's networks
# and nothing is masqueraded: a bridge bc<hex> with a /24 of 10.196.0.0/16 no
# host interface uses, host-local records in the run directory, portmap (snat,
# so host ports answer on 127.0.0.1) and loopback.
bridge="bc$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
subnet=""
for ((i = 0; i < 256; i++)); do
	candidate="10.196.$(((RANDOM + i) % 256))"
	if ! ip -4 -o addr show | grep -q " $candidate\."; then
		subnet="$candidate.0/24"
		break
	fi
done
[ -n "$subnet" ] || { log "no free subnet in 10.196.0.0/16"; exit 1; }
ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)
# critest's pods name no cgroup parent, so their processes go under berth's default
# /berth; the OCI runtime leaves that parent behind. Remove it afterwards (when empty)
# unless it was there before the run.
cgroup_parent_preexisting=$(ls -d /sys/fs/cgroup/*/berth /sys/fs/cgroup/berth 2>/dev/null || true)
# portmap's shared nat chains that exist before the run are left alone afterwards.
portmap_chains="CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK"
portmap_preexisting=""
for c in $portmap_chains; do
	iptables -w -t nat -S "$c" >/dev/null 2>&1 && portmap_preexisting+=" $c"
done
mkdir -p "$tmp/net.d"
cat >"$tmp/net.d/10-critest.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "critest", "plugins": [
  {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$subnet"}]], "dataDir": "$tmp/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
  {"type": "loopback"}]}
EOF

# --- berthd.
sock="$tmp/berth.sock"
nri_sock="$tmp/nri.sock"
cat >"$tmp/berth.toml" <<EOF
# Written by hack/critest.sh: every registry critest pulls from is mirrored by
# the loopback test registry, and no pull ever reaches a real registry.
[image.registry]
mirrors_only = true

[image.registry.mirrors]
"docker.io" = ["http://$registry"]
"gcr.io" = ["http://$registry"]
"registry.k8s.io" = ["http://$registry"]
"k8s.gcr.io" = ["http://$registry"]

[image.registry.hosts."$registry"]
plain_http = true

[network]
conf_dir = "$tmp/net.d"

# NRI on this run's own socket (never the node's /var/run/nri: other berthds may run),
# passed to critest with -nri-socket. No launched plugins. critest's plugins hold some
# hooks open on purpose (a Synchronize for 2 s, to create containers meanwhile): a
# request timeout of 10 s lets them, and still bounds a hung plugin.
[nri]
socket_path = "$nri_sock"
plugin_path = "$tmp/nri-plugins"
plugin_config_path = "$tmp/nri-conf.d"
plugin_request_timeout = "10s"
EOF
if [ -n "${CRITEST_RUNC:-}" ]; then
	printf '\n[runtimes.runc]\npath = "%s"\n' "$CRITEST_RUNC" >>"$tmp/berth.toml"
fi
if [ -n "${CRITEST_CGROUP_DRIVER:-}" ]; then
	sed -i "1i cgroup_driver = \"$CRITEST_CGROUP_DRIVER\"" "$tmp/berth.toml"
fi
"$berthd" --config "$tmp/berth.toml" --config-dir "$tmp/berth.d" \
	--root "$tmp/root" --state "$tmp/state" --listen "unix://$sock" --log-level info \
	>"$tmp/berthd.log" 2>&1 &
berthd_pid=$!
berthd_failed() {
	log "$1; last lines of berthd's log:"
	tail -n 60 "$tmp/berthd.log" >&2
	exit 1
}
for ((i = 0; ; i++)); do
	"$crictl" --runtime-endpoint "unix://$sock" --timeout 2s version >/dev/null 2>&1 && break
	running "$berthd_pid" || berthd_failed "berthd exited"
	((i < 300)) || berthd_failed "berthd not answering on $sock after 30s"
	sleep 0.1
done
log "berthd (pid $berthd_pid) serving on $sock"

# --- critest.
# Nothing is skipped by name. Expected to fail: "public image with digest"
# pulls test-image-digest@sha256:9700f9a2..., which cannot be rebuilt with
# that digest; the mirror misses and mirrors_only keeps berthd from asking
# gcr.io itself. What this host cannot run skips itself: AppArmor is off here,
# SELinux specs are not registered without SELinux, and critest skips its
# own benchmarks. The NRI specs connect their plugins to berthd's NRI socket.
args=(
	-runtime-endpoint "unix://$sock"
	-image-endpoint "unix://$sock"
	-nri-socket "$nri_sock"
	-test-images-file "$images_file"
	-ginkgo.junit-report "$tmp/junit.xml"
	-ginkgo.no-color
	-ginkgo.timeout 80m
)
# ginkgo refuses -parallel unless critest hands the run to the ginkgo CLI (> 1).
if [ "$parallel" -gt 1 ]; then
	args+=(-parallel "$parallel")
fi
report_args=(-junit "$tmp/junit.xml" -ratchet "$ratchet" -log "$tmp/critest.log")
if [ -n "${CRITEST_FOCUS:-}" ]; then
	args+=(-ginkgo.focus "$CRITEST_FOCUS")
	report_args+=(-focus "$CRITEST_FOCUS")
fi
if [ "${CRITEST_UPDATE:-}" = 1 ]; then
	report_args+=(-update)
fi

# condense: critest's output without klog noise and with each inline failure
# report cut to its first two lines (outcome and spec name): the summary at
# the end lists the failures again, and critest.log has everything.
# CRITEST_VERBOSE=1 shows everything.
condense() {
	if [ "${CRITEST_VERBOSE:-}" = 1 ]; then
		cat
		return
	fi
	awk '
		/[EWI][0-9][0-9][0-9][0-9] [0-9:.]+ +[0-9]+ [A-Za-z0-9_.-]+:[0-9]+\] / {
			sub(/[EWI][0-9][0-9][0-9][0-9] [0-9:.]+ +[0-9]+ [A-Za-z0-9_.-]+:[0-9]+\] .*/, "")
			if ($0 == "") next
		}
		/^-+$/ { inblock = 0; next }
		/^• \[[A-Z]+/ { inblock = 1; n = 0 }
		inblock { if (++n <= 2) { print; fflush() } next }
		{ print; fflush() }'
}
log "running critest $cri_version (full output: $artifacts/critest.log)"
set +e
(cd "$tmp" && "$critest" "${args[@]}") 2>&1 | tee "$tmp/critest.log" | condense
critest_rc=${PIPESTATUS[0]}
set -e
log "critest exited with $critest_rc"

if [ ! -s "$tmp/junit.xml" ]; then
	log "critest wrote no JUnit report; last lines of its output:"
	tail -n 60 "$tmp/critest.log" >&2
	berthd_failed "no report"
fi
report_rc=0
"$own/critestreport" "${report_args[@]}" || report_rc=$?
if [ "$report_rc" != 0 ]; then
	log "berthd's log: $artifacts/berthd.log; last lines:"
	tail -n 30 "$tmp/berthd.log" >&2
fi
exit "$report_rc"
