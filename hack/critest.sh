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
source "$(dirname "$0")/lib/all.sh"
cd "$repo"
[ "$(id -u)" = 0 ] || die "needs root (berthd runs containers)"

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

# --- tools: crictl and critest as pinned in hack/tools/go.mod, cached by version.
cri_version=$(cri_tools_version)
if [ -n "${CRITEST_BIN:-}" ]; then
	crictl="$bin/crictl"
	critest="$bin/critest"
	berthd="${BERTHD:-$own/berthd}"
else
crictl=$(ensure_crictl "$bin")
critest=$(ensure_critest "$bin")
berthd="${BERTHD:-$own/berthd}"
if [ -z "${BERTHD:-}" ]; then
	log "building berthd"
	build "$berthd" ./cmd/berthd
fi
# berthd finds berth-monitor next to itself.
log "building berth-monitor"
build_monitor "$(dirname "$berthd")"
log "building testregistry, critestreport"
build "$own/testregistry" ./hack/cmd/testregistry
build "$own/critestreport" ./hack/cmd/critestreport
fi

# --- run directory and cleanup.
tmp=$(mktemp -d /tmp/berth-critest.XXXXXX)
# 0711, as berthd makes its root and state: the root of a user-namespaced pod (no one on
# the host) must pass through to its root filesystem.
chmod 0711 "$tmp"
registry_pid="" registry=""
berthd_pid=""

cleanup() {
	local rc=$?
	set +e
	stop_berthd "$berthd_pid" "${crictl:-}" "${sock:-}"
	stop_pid "$registry_pid" testregistry
	save_artifacts "$tmp" "$artifacts" junit.xml critest.log berthd.log registry.log berth.toml
	delete_bridge "${bridge:-}"
	[ -n "${ip_forward:-}" ] && echo "$ip_forward" >/proc/sys/net/ipv4/ip_forward
	[ -n "${portmap_preexisting+x}" ] && remove_portmap_chains "$portmap_preexisting"
	[ -n "${cgroup_parent_preexisting+x}" ] && remove_berth_parents "$cgroup_parent_preexisting"
	# Whatever berthd left mounted under the run directory.
	unmount_under "$tmp"
	remove_tree "$tmp"
	exit "$rc"
}
trap_exit cleanup

# --- test registry.
start_registry "$own/testregistry" "$tmp"

# --- pod network: critest's own, so that its pods stay off the node's networks
# and nothing is masqueraded: a bridge bc<hex> with a /24 of 10.196.0.0/16 no
# host interface uses, host-local records in the run directory, portmap (snat,
# so host ports answer on 127.0.0.1) and loopback.
bridge="bc$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
subnet=$(pick_subnet 10.196)
ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)
# critest's pods name no cgroup parent, so their processes go under berth's default
# /berth; the OCI runtime leaves that parent behind. Remove it afterwards (when empty)
# unless it was there before the run.
cgroup_parent_preexisting=$(berth_parents)
# portmap's shared nat chains that exist before the run are left alone afterwards.
portmap_preexisting=$(existing_portmap_chains)
write_bridge_conflist "$tmp/net.d/10-critest.conflist" critest "$bridge" "$subnet" "$tmp/ipam"

# --- berthd.
sock="$tmp/berth.sock"
nri_sock="$tmp/nri.sock"
write_berth_toml "$tmp/berth.toml" "$registry" "$tmp/net.d"
cat >>"$tmp/berth.toml" <<EOF

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
mapfile -t berthd_argv < <(berthd_args "$tmp")
"$berthd" "${berthd_argv[@]}" >"$tmp/berthd.log" 2>&1 &
berthd_pid=$!
wait_berthd "$berthd_pid" "$crictl" "$sock" "$tmp/berthd.log"

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
	log "last lines of berthd's log:"
	tail -n 60 "$tmp/berthd.log" >&2
	exit 1
fi
report_rc=0
"$own/critestreport" "${report_args[@]}" || report_rc=$?
if [ "$report_rc" != 0 ]; then
	log "berthd's log: $artifacts/berthd.log; last lines:"
	tail -n 30 "$tmp/berthd.log" >&2
fi
exit "$report_rc"
