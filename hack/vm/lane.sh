#!/usr/bin/env bash
# The VM lane: a focused critest run against berthd with cgroup_driver = "systemd" on a
# systemd node with the unified cgroup hierarchy, inside the guest of hack/vm/run.sh,
# followed by berth's own cgroup checks there (hack/vm/cgroup-checks.sh: resource
# updates, PID limits, unified keys, stats read from the real kernel).
#
#   hack/vm/lane.sh                 the lane (pods, containers, OOM, stats, metrics, sysctls)
#   VM_LANE_FOCUS=REGEXP hack/vm/lane.sh   another critest focus ('' runs the whole critest)
#   VM_LANE_DRIVER=cgroupfs hack/vm/lane.sh   the cgroupfs driver on cgroup v2 instead
#   VM_LANE_SKIP_CRITEST=1, VM_LANE_SKIP_CHECKS=1, VM_LANE_SKIP_KUBELET=1   leave a part out
#
# Builds berthd and the test tools on the host (Go is not in the guest) into
# _output/vm/bin, which the guest sees through run.sh's read-only share of the checkout.
# Results: _output/vm/lane/ (log, console.log, artifacts/). Needs root.
set -euo pipefail
# The lanes' shared shell (log, die, builds).
source "$(dirname "$0")/../lib/all.sh"
cd "$repo"
# shellcheck disable=SC2034 # read by hack/lib's log
log_prefix=vm/lane.sh
[ "$(id -u)" = 0 ] || die "needs root"

stage="$repo/_output/vm"
bin="$stage/bin"
cache="$repo/hack/.cache"
mkdir -p "$bin" "$stage/cache"

started=$(date +%s)
log "building berthd, berth-monitor, testregistry, critestreport for the guest"
build "$bin/berthd" ./cmd/berthd
build_monitor "$bin"
build "$bin/testregistry" ./hack/cmd/testregistry
build "$bin/critestreport" ./hack/cmd/critestreport

# crictl and critest as pinned in hack/tools/go.mod, cached as hack/critest.sh does.
crictl=$(ensure_crictl "$cache/bin")
critest=$(ensure_critest "$cache/bin")
cp -f "$crictl" "$bin/crictl"
cp -f "$critest" "$bin/critest"

# runc >= 1.2 (Debian 12's is 1.1): the one hack/install-deps.sh installs, else one
# built here from the Go module proxy with seccomp, cached machine-wide.
runc_version=v1.5.2
runc=""
v=$(/usr/local/sbin/runc --version 2>/dev/null | awk '/^runc version/ {print $3; exit}') || v=""
if [ -n "$v" ] && [ "$(printf '1.2.0\n%s\n' "$v" | sort -V | head -1)" = 1.2.0 ]; then
	runc=/usr/local/sbin/runc
fi
if [ -z "$runc" ]; then
	runc="$cache/vm/runc-$runc_version"
	if [ ! -x "$runc" ]; then
		log "building runc $runc_version (cgo, seccomp) from the module proxy"
		mkdir -p "$cache/vm"
		gobin=$(mktemp -d "$cache/vm/runc-build.XXXXXX")
		GOBIN="$gobin" CGO_ENABLED=1 go install -tags seccomp "github.com/opencontainers/runc@$runc_version"
		mv -f "$gobin/runc" "$runc"
		rmdir "$gobin"
	fi
fi
cp -f "$runc" "$bin/runc"

# kubelet for hack/vm/kubelet-checks.sh: hack/k8s/build.sh's (machine-wide cache; a cold
# build takes 20-40 minutes, as for kubelet lane 1), or KUBELET. The guest runs it from
# the share, linked here when the cache is on the same filesystem.
if [ "${VM_LANE_DRIVER:-systemd}" = systemd ] && [ -z "${VM_LANE_SKIP_KUBELET:-}" ]; then
	kubelet="${KUBELET:-}"
	if [ -z "$kubelet" ]; then
		hack/k8s/build.sh kubelet
		kubelet="$(hack/k8s/build.sh --bin-dir)/kubelet"
	fi
	[ -x "$kubelet" ] || die "no kubelet at $kubelet"
	mkdir -p "$stage/k8s"
	rm -f "$stage/k8s/kubelet"
	ln "$kubelet" "$stage/k8s/kubelet" 2>/dev/null || cp "$kubelet" "$stage/k8s/kubelet"
fi

# The test images: the static busybox and the helpers testregistry compiles with gcc
# (the guest has no compiler), built once on the host and copied into the share.
"$bin/testregistry" -list >/dev/null
rm -rf "$stage/cache"
mkdir -p "$stage/cache/busybox"
cp "$cache/busybox/busybox" "$stage/cache/busybox/busybox"
cp -r "$cache/testimages" "$stage/cache/testimages"
log "host side ready in $(($(date +%s) - started))s"

export VM_OUT="${VM_OUT:-$stage/lane}"
export VM_TIMEOUT="${VM_TIMEOUT:-2400}"
guest_env="$stage/lane.env"
{
	printf 'VM_LANE_DRIVER=%q\n' "${VM_LANE_DRIVER:-systemd}"
	if [ -n "${VM_LANE_FOCUS+x}" ]; then
		printf 'VM_LANE_FOCUS=%q\n' "$VM_LANE_FOCUS"
	fi
	for v in VM_LANE_SKIP_CRITEST VM_LANE_SKIP_CHECKS VM_LANE_SKIP_KUBELET; do
		printf '%s=%q\n' "$v" "${!v:-}"
	done
} >"$guest_env"
rc=0
hack/vm/run.sh hack/vm/lane-guest.sh || rc=$?
log "lane finished with $rc in $(($(date +%s) - started))s; results in $VM_OUT"
exit "$rc"
