#!/usr/bin/env bash
# Measures the image RPCs through a real berthd, as kubelet sees them: a testregistry
# process on 127.0.0.1 is berthd's mirror of docker.io (and of every other registry:
# hack/lib's berth.toml), crictl pulls (cold, then warm), inspects, lists and removes
# busybox N times, and the "cri call" durations berthd logs are summarised per RPC (a
# PullImage is cold when its "pulled image" line says layersFetched>0). Complements the
# in-process Go benchmark in this directory.
#
#	hack/bench/pull/berthd.sh [BERTHD_BINARY] [N]
#
# Default binary: built from this checkout into a temporary directory. Needs root, as
# berthd does; crictl as hack/critest.sh builds it (hack/.cache/bin, built if missing).
set -euo pipefail
# The lanes' shared shell (builds, registry, berthd's config and arguments).
source "$(dirname "$0")/../../lib/all.sh"
cd "$repo"
N=${2:-20}
W=$(mktemp -d /var/tmp/berth-bench-berthd-XXXX)
registry_pid="" registry="" berthd_pid=""
cleanup() {
	stop_pid "$berthd_pid" berthd
	stop_pid "$registry_pid" testregistry
	rm -rf "$W"
}
trap cleanup EXIT
BERTHD=${1:-}
if [ -z "$BERTHD" ]; then
	build "$W/berthd" ./cmd/berthd
	BERTHD=$W/berthd
fi
[ -x "$(dirname "$BERTHD")/berth-monitor" ] || build_monitor "$W"
export PATH="$W:$PATH" # berthd finds berth-monitor next to itself, else in $PATH
CRICTL=$(ensure_crictl "$repo/hack/.cache/bin")
build "$W/testregistry" ./hack/cmd/testregistry
start_registry "$W/testregistry" "$W"
write_berth_toml "$W/berth.toml" "$registry" "$W/net.d"
cat >>"$W/berth.toml" <<T

# NRI on this run's own socket (never the node's).
[nri]
socket_path = "$W/nri.sock"
plugin_path = "$W/nri-plugins"
T
# Debug: berthd logs the "cri call" of a read-only RPC (ImageStatus, ListImages) only
# at that level.
mapfile -t berthd_argv < <(berthd_args "$W" debug)
"$BERTHD" "${berthd_argv[@]}" >"$W/berthd.log" 2>&1 &
berthd_pid=$!
wait_berthd "$berthd_pid" "$CRICTL" "$W/berth.sock" "$W/berthd.log"
c() { "$CRICTL" -r "unix://$W/berth.sock" -i "unix://$W/berth.sock" "$@" >/dev/null 2>&1; }
c pull busybox && c rmi busybox # warm-up: first connections, page cache
MARK=$(wc -l <"$W/berthd.log")
for _ in $(seq "$N"); do
	c pull busybox; c pull busybox; c inspecti busybox; c images; c rmi busybox
done
tail -n +$((MARK + 1)) "$W/berthd.log" | grep -E 'msg="(cri call|pulled image)"' | python3 -c '
import re, statistics, sys
d, fetched = {}, None
for line in sys.stdin:
    f = re.search(r"msg=\"pulled image\".*layersFetched=(\d+)", line)
    if f:
        fetched = int(f.group(1))
        continue
    m = re.search(r"method=(\w+).*duration=([0-9.]+)(µs|ms|s)\b", line)
    if not m:
        continue
    meth, v, u = m.group(1), float(m.group(2)), m.group(3)
    v = v / 1000 if u == "µs" else v * 1000 if u == "s" else v
    if meth == "PullImage":
        meth += " (cold)" if fetched else " (warm)"
    d.setdefault(meth, []).append(v)
for k, v in sorted(d.items()):
    v.sort()
    print("%-18s n=%3d  mean %8.3f  p50 %8.3f  p95 %8.3f ms" % (k, len(v), statistics.mean(v), v[len(v) // 2], v[max(0, int(len(v) * 0.95) - 1)]))
'
