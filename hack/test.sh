#!/usr/bin/env bash
# Runs every test berth has, as CI does: format, vet, unit and integration tests with the
# race detector, short fuzzing of every parser and the unpacker, a one-node Kubernetes
# cluster on berthd checked with kubectl, then critest against a real berthd. Installs
# what is missing first. Needs root (runc, mounts, namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
hack/install-deps.sh
export PATH="/usr/local/go/bin:$PATH"
: "${FUZZTIME:=10s}"

step() { printf '\n=== %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
	echo "not gofmt'ed:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "go test -race (unit and integration)"
# -p 1: the network, sandbox and integration tests share the host's iptables nat table
# (portmap's shared chains) and cgroup roots; packages run one at a time so that one
# package's cleanup never pulls a chain from under another's pod.
go test -race -count=1 -p 1 -timeout 25m ./...

step "fuzz ($FUZZTIME each)"
for target in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do
	for fn in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$target"/*_test.go | awk '{print $2}'); do
		echo "--- $fn in $target"
		go test -run='^$' -fuzz="^$fn\$" -fuzztime="$FUZZTIME" "$target"
	done
done

step "one-node cluster (hack/cluster-e2e.sh)"
# kubectl checks against etcd, the control plane, kube-proxy and a kubelet on a private
# berthd: ~2.5 minutes with the Kubernetes binaries cached in hack/.cache/k8s; a cold
# machine first builds them (hack/k8s/build.sh: ~20 minutes on 2 idle cores).
hack/cluster-e2e.sh

step "critest"
critest_out=$(mktemp)
trap 'rm -f "$critest_out"' EXIT
hack/critest.sh 2>&1 | tee "$critest_out"
# Last, the plain summary line: the ratchet's critest specs, passed and failed.
grep -E '^ratchet: [0-9]+ passed, [0-9]+ failed$' "$critest_out" | tail -n 1
