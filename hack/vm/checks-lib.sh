# shellcheck shell=bash
# shellcheck disable=SC2154 # $tmp is the caller's
# Shared by hack/vm/cgroup-checks.sh and hack/vm/kubelet-checks.sh, berth's own checks
# inside the VM lane's guest: one "ok"/"FAIL" line per check, and the private
# testregistry and berthd they run from the binaries in $bin (hack/vm/lane.sh's
# _output/vm/bin, or VM_LANE_BIN). Sources hack/lib, which the guest reads from the
# checkout shared read-only. The caller sets $tmp (its run directory) before using
# them. Sourced, not run.

# shellcheck source=../lib/all.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/all.sh"

# A setup step that fails (hack/lib's die) is one FAIL line on standard output, as a
# failed check is, and the end of the run.
die() { echo "FAIL  $*"; exit 1; }

bin="${VM_LANE_BIN:-$repo/_output/vm/bin}"
pass=0 fail=0
registry_pid="" registry="" berthd_pid=""

# check NAME COMMAND...: one line per check; the command's output goes to
# $tmp/checks.log under a line naming the check.
check() {
	local name="$1"
	shift
	echo "--- $name" >>"$tmp/checks.log"
	if "$@" >>"$tmp/checks.log" 2>&1; then
		echo "ok    $name"
		pass=$((pass + 1))
	else
		echo "FAIL  $name"
		fail=$((fail + 1))
	fi
}

# equals FILE WANT: FILE holds WANT; says what it got either way.
equals() {
	local got
	got=$(cat "$1" 2>&1)
	echo "$1: got '$got', want '$2'"
	[ "$got" = "$2" ]
}

# eventually SECONDS COMMAND...: COMMAND succeeds within SECONDS (tried every 2 s).
eventually() {
	local end=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 2
	done
}

# start_checks_berthd DRIVER: the loopback registry, then berthd with cgroup_driver
# DRIVER on $tmp/berth.sock, pulling only through that registry (hack/lib's
# berth.toml; CNI configuration from $tmp/net.d). Under emulation berthd may take
# minutes to answer.
start_checks_berthd() {
	local argv
	start_registry "$bin/testregistry" "$tmp"
	mkdir -p "$tmp/net.d"
	write_berth_toml "$tmp/berth.toml" "$registry" "$tmp/net.d"
	sed -i "1i cgroup_driver = \"$1\"" "$tmp/berth.toml"
	mapfile -t argv < <(berthd_args "$tmp")
	"$bin/berthd" "${argv[@]}" >"$tmp/berthd.log" 2>&1 &
	berthd_pid=$!
	wait_berthd "$berthd_pid" "$bin/crictl" "$tmp/berth.sock" "$tmp/berthd.log" 300
}

# cleanup_checks ARTIFACTS: the pods left removed through berthd, berthd and the
# registry stopped, the logs, YAML and JSON of the run copied to ARTIFACTS, what
# berthd left mounted unmounted, the run directory removed.
cleanup_checks() {
	remove_pods "$berthd_pid" "$bin/crictl" "$tmp/berth.sock"
	stop_pid "$berthd_pid" berthd
	stop_pid "$registry_pid" testregistry
	cp "$tmp"/*.log "$tmp"/*.yaml "$tmp"/*.json "$1/" 2>/dev/null
	unmount_under "$tmp"
	remove_tree "$tmp"
}
