#!/usr/bin/env bash
# Runs every test berth has, as CI does: format, vet, unit and integration tests with the
# race detector, short fuzzing of every parser and the unpacker, a real kubelet's static
# pods on berthd (lane 1), a one-node Kubernetes cluster on berthd checked with kubectl
# (lane 2), the VM lane (cgroup v2 and the systemd driver in a guest), then critest
# against a real berthd. Installs what is missing first. Needs root
# (runc, mounts, namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
hack/install-deps.sh
# /usr/local/sbin first: the runc v1.5.2 install-deps.sh puts there, whatever $PATH
# this shell started with (berthd looks runc up in $PATH).
export PATH="/usr/local/go/bin:/usr/local/sbin:$PATH"
# A count, not a duration: Go 1.26's fuzz coordinator can fail a target with "context
# deadline exceeded" when a duration runs out while a starved worker is mid-call
# (go.dev/issue/75804, fixed in Go 1.27); a count has no deadline to race.
: "${FUZZTIME:=50000x}"

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

# hack/install-deps.sh put runc v1.5.2 first in $PATH; the distribution's older runc
# (Debian 12: 1.1.5, no idmapped mounts) must keep working too, with its features probed:
# the integration tests that run containers go once more with it as berthd's "runc".
# A focused set (about 4 minutes): what a runtime runs (pods, pause, container
# lifecycle, mounts, security options, exec, OOM, updates, restarts, events, user
# namespaces refused and not advertised), not what berth decides alone (input
# validation, users, leak bookkeeping, attach and port-forward plumbing).
runc_tests='PodLifecycle|HostNetworkPod|PodIdentity|PodSysctls|PodCgroupAndResources'
runc_tests+='|ContainerLifecycle|ContainerMounts|ContainerSecurity|ContainerExecSync|ContainerOOMKilled'
runc_tests+='|ContainerUpdateResources|ContainerStopSignal|ContainerStartError|ContainerPodStopAndRemove'
runc_tests+='|ContainersSurviveRestart|CreatedContainersSurviveRestart|ContainerEvents|StreamingExec|UserNamespace.*'
distro_runc=/usr/sbin/runc
if [ -x "$distro_runc" ] && ! cmp -s "$distro_runc" "$(command -v runc)"; then
	step "integration tests with $("$distro_runc" --version | head -n 1) ($distro_runc)"
	BERTH_TEST_RUNC="$distro_runc" go test -race -count=1 -p 1 -timeout 20m \
		-run "^Test($runc_tests)\$" \
		./integration/
fi

step "fuzz ($FUZZTIME each)"
for target in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do
	for fn in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$target"/*_test.go | awk '{print $2}'); do
		echo "--- $fn in $target"
		go test -run='^$' -fuzz="^$fn\$" -fuzztime="$FUZZTIME" "$target"
	done
done

step "kubelet lane 1 (hack/kubelet-e2e.sh: a real kubelet, static pods, on berthd)"
# Builds kubelet with hack/k8s/build.sh into the machine-wide cache when it is missing
# (20-40 minutes cold; a cached kubelet costs nothing); the lane itself takes ~3 minutes.
hack/kubelet-e2e.sh

step "one-node cluster (hack/cluster-e2e.sh)"
# kubectl checks against etcd, the control plane, kube-proxy and a kubelet on a private
# berthd: ~2.5 minutes with the Kubernetes binaries cached in hack/.cache/k8s; a cold
# machine first builds them (hack/k8s/build.sh: ~20 minutes on 2 idle cores).
hack/cluster-e2e.sh

step "node conformance slice (hack/node-e2e.sh: e2e_node [NodeConformance] on berthd)"
# Kubernetes' node e2e suite (its own etcd, apiserver, kubelet) on a private berthd: the
# CI slice of the ratchet hack/node-e2e-pass.txt (81 specs, 3 ginkgo processes), ~7
# minutes here with the binaries cached (hack/k8s/build.sh builds e2e_node.test with
# them: cold, ~20 minutes more). `hack/node-e2e.sh --all` runs all 432 on demand.
NODE_E2E_PARALLEL=3 hack/node-e2e.sh

step "VM lane (hack/vm/lane.sh: cgroup v2 and the systemd driver, in a guest)"
# A Debian 12 guest with systemd as PID 1 on the unified hierarchy, booted under KVM when
# a 20 s probe boots, else TCG: focused critest, berth's cgroup checks and a kubelet with
# its defaults, with cgroup_driver = "systemd". Under TCG on the shared 2-core machine:
# the guest boots in 13-163 s and the lane took 569-1165 s wall (load average 8-29). A
# fresh machine first installs qemu and mmdebstrap (~20 s) and builds the guest from
# Debian's mirror into hack/.cache/vm (~15 minutes, once). A guest that
# cannot boot fails this step (run.sh exits 125); it is never skipped.
hack/install-deps.sh --vm
hack/vm/lane.sh

step "critest"
critest_out=$(mktemp)
trap 'rm -f "$critest_out"' EXIT
hack/critest.sh 2>&1 | tee "$critest_out"
# Last, the plain summary line: the ratchet's critest specs, passed and failed.
grep -E '^ratchet: [0-9]+ passed, [0-9]+ failed$' "$critest_out" | tail -n 1
