#!/usr/bin/env bash
# Installs what berthd needs to run (runc, crun, CNI plugins, iptables, and runc v1.5.2
# built once as /usr/local/sbin/runc for user-namespaced pods), builds it into
# bin/berthd and starts it in the foreground with its embedded defaults (plus
# /etc/berth/berth.toml if the node has one). Extra arguments go to berthd.
# A node on its own has no cluster network plugin to wait for: --default-network lets
# berth's embedded network serve pods while /etc/cni/net.d is empty (berthd's own
# default is off, for nodes that join a cluster).
set -euo pipefail
source "$(dirname "$0")/lib/all.sh"
cd "$repo"
hack/install-deps.sh --run
# /usr/local/sbin first: the runc v1.5.2 install-deps.sh puts there, whatever $PATH
# this shell started with (berthd looks runc up in $PATH).
export PATH="/usr/local/sbin:$PATH"
build bin/berthd ./cmd/berthd
build_monitor bin
exec bin/berthd --default-network "$@"
