#!/usr/bin/env bash
# Installs what berthd needs to run (runc, crun, CNI plugins, iptables, and runc v1.5.2
# built once as /usr/local/sbin/runc for user-namespaced pods), builds it into
# bin/berthd and starts it in the foreground with its embedded defaults (plus
# /etc/berth/berth.toml if the node has one). Extra arguments go to berthd.
# A node on its own has no cluster network plugin to wait for: --default-network lets
# berth's embedded network serve pods while /etc/cni/net.d is empty (berthd's own
# default is off, for nodes that join a cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
hack/install-deps.sh --run
# /usr/local/sbin first: the runc v1.5.2 install-deps.sh puts there, whatever $PATH
# this shell started with (berthd looks runc up in $PATH).
export PATH="/usr/local/go/bin:/usr/local/sbin:$PATH"
go build -o bin/berthd ./cmd/berthd
# Static and stripped: one runs per container, and without libc it needs one thread
# and ~120 kB less each.
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o bin/berth-monitor ./cmd/berth-monitor
exec bin/berthd --default-network "$@"
