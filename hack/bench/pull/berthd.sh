#!/usr/bin/env bash
# Measures the image RPCs through a real berthd, as kubelet sees them: a testregistry
# process on 127.0.0.1 is berthd's docker.io mirror, crictl pulls (cold, then warm),
# inspects, lists and removes busybox N times, and the "cri call" durations berthd logs
# are summarised per RPC (a PullImage is cold when its "pulled image" line says
# layersFetched>0). Complements the in-process Go benchmark in this directory.
#
#	hack/bench/pull/berthd.sh [BERTHD_BINARY] [N]
#
# Default binary: built from this checkout into a temporary directory. Needs crictl at
# hack/.cache/bin/crictl-v1.37.0 (hack/critest.sh fetches it) and root, as berthd does.
set -euo pipefail
cd "$(dirname "$0")/../../.."
N=${2:-20}
W=$(mktemp -d /var/tmp/berth-bench-berthd-XXXX)
REG= BD=
cleanup() {
	[ -n "$BD" ] && kill "$BD" 2>/dev/null && wait "$BD" 2>/dev/null || true
	[ -n "$REG" ] && kill "$REG" 2>/dev/null && wait "$REG" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT
BERTHD=${1:-}
if [ -z "$BERTHD" ]; then
	go build -o "$W/berthd" ./cmd/berthd
	BERTHD=$W/berthd
fi
[ -x "$(dirname "$BERTHD")/berth-monitor" ] || CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$W/berth-monitor" ./cmd/berth-monitor
export PATH="$W:$PATH" # berthd finds berth-monitor next to itself, else in $PATH
CRICTL=hack/.cache/bin/crictl-v1.37.0
go build -o "$W/testregistry" ./hack/cmd/testregistry
"$W/testregistry" -addr 127.0.0.1:0 >"$W/reg.out" 2>"$W/reg.err" &
REG=$!
for _ in $(seq 600); do grep -q ready "$W/reg.out" && break; sleep 0.1; done
ADDR=$(awk '/ready/{print $2}' "$W/reg.out")
[ -n "$ADDR" ] || { cat "$W/reg.err"; exit 1; }
mkdir -p "$W/conf.d" "$W/root" "$W/state"
cat >"$W/berth.toml" <<T
[image.registry]
mirrors_only = true
[image.registry.mirrors]
"docker.io" = ["http://$ADDR"]
[image.registry.hosts."$ADDR"]
plain_http = true
[nri]
socket_path = "$W/nri.sock"
plugin_path = "$W/nri-plugins"
T
"$BERTHD" --config "$W/berth.toml" --config-dir "$W/conf.d" --root "$W/root" --state "$W/state" \
	--listen "unix://$W/b.sock" --log-level debug >"$W/berthd.log" 2>&1 &
BD=$!
for _ in $(seq 100); do [ -S "$W/b.sock" ] && break; sleep 0.1; done
c() { "$CRICTL" -r "unix://$W/b.sock" -i "unix://$W/b.sock" "$@" >/dev/null 2>&1; }
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
