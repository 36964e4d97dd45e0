#!/usr/bin/env bash
# Berth against containerd on this node, in one sitting: critest's benchmarks and a
# density run for each, interleaved berth / containerd / berth, printed as one markdown
# table with the ratio Berth / containerd per row (hack/cmd/benchcompare).
#
#	hack/bench/compare.sh
#
# Both runtimes get the same runc (the first in PATH), the same CNI configuration (a
# private bridge bk<hex> with a /24 of 10.199.0.0/16 no host interface uses, host-local,
# portmap, loopback; no masquerading) and the same loopback registry
# (hack/cmd/testregistry) as their only source of images: berthd through its mirrors
# with mirrors_only, containerd through hosts.toml files (config_path) that make the
# loopback registry the server of every registry, _default included, so neither ever
# reaches the network. containerd's sandbox (pause) image is the catalogue's
# registry.k8s.io/pause:3.9, served by that registry.
#
# containerd and its runc shim are v2.4.2, built from the Go module proxy once and
# cached in hack/.cache/bin (containerd-v2.4.2, containerd-shim-runc-v2-v2.4.2); crictl
# and critest as hack/critest.sh builds them (hack/lib). Each run has a root, state,
# sockets and runc root of its own in a run directory under /tmp.
#
# Per run: critest -benchmark with a params file (COMPARE_PODS=50 pods,
# COMPARE_CONTAINERS=50 containers, COMPARE_IMAGES=20 image pulls; critest's pods share
# their PID namespace, so pause runs under both), its JSON results kept; then
# hack/bench/density.sh with COMPARE_DENSITY=30 pods, each one busybox `sleep`.
# COMPARE_KEEP=DIR keeps every run's results and logs there.
#
# Needs root, runc, the CNI plugins in /usr/lib/cni, jq, iptables. Cleans up whatever it
# started, also when it fails: processes by pid, mounts under the run directory, the
# bridge, portmap's chains (when it made them), the cgroups it made, containerd's shim
# sockets. Never talks to anything but 127.0.0.1.
set -euo pipefail
# The lanes' shared shell (log, die, builds, registry, CNI network, berthd, cleanup).
source "$(dirname "$0")/../lib/all.sh"
cd "$repo"

[ "$(id -u)" = 0 ] || die "needs root (both runtimes run containers)"
for tool in jq iptables; do
	command -v "$tool" >/dev/null || die "needs $tool"
done

ctrd_version=v2.4.2
pods=${COMPARE_PODS:-50}
containers=${COMPARE_CONTAINERS:-50}
images=${COMPARE_IMAGES:-20}
density=${COMPARE_DENSITY:-30}
cache="$repo/hack/.cache"
bin="$cache/bin"
own="$repo/_output/bin"
mkdir -p "$bin" "$own"

# --- tools.
cri_version=$(cri_tools_version)
crictl=$(ensure_crictl "$bin")
critest=$(ensure_critest "$bin")
containerd="$bin/containerd-$ctrd_version"
shim="$bin/containerd-shim-runc-v2-$ctrd_version"
if [ ! -x "$containerd" ] || [ ! -x "$shim" ]; then
	log "building containerd $ctrd_version and its runc shim from the Go module proxy (once)"
	gobin=$(mktemp -d /tmp/berth-containerd-build.XXXXXX)
	if ! (cd "$gobin" && GOBIN="$gobin" GOFLAGS=-trimpath go install \
		"github.com/containerd/containerd/v2/cmd/containerd@$ctrd_version" \
		"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$ctrd_version"); then
		rm -rf "$gobin"
		die "building containerd $ctrd_version failed (see above)"
	fi
	mv -f "$gobin/containerd" "$containerd.tmp.$$" && mv -f "$containerd.tmp.$$" "$containerd"
	mv -f "$gobin/containerd-shim-runc-v2" "$shim.tmp.$$" && mv -f "$shim.tmp.$$" "$shim"
	rm -rf "$gobin"
fi
log "building berthd, berth-monitor, testregistry, benchcompare"
build "$own/berthd" ./cmd/berthd
build_monitor "$own"
build "$own/testregistry" ./hack/cmd/testregistry
build "$own/benchcompare" ./hack/cmd/benchcompare
runc=$(command -v runc) || die "no runc in PATH"
log "runc: $runc ($("$runc" --version | head -n 1))"

# --- run directory and cleanup.
tmp=$(mktemp -d /tmp/berth-compare.XXXXXX)
registry_pid="" registry=""
daemon_pid=""
daemon_sock=""
bridge=""
ip_forward=""
cgparent="/berth-compare-${tmp##*.}"
shim_sockets_before=$(ls /run/containerd/s 2>/dev/null || true)
# berth's and containerd's default cgroup parents (critest's pods name none) and
# portmap's shared nat chains: those there before the run are left alone afterwards.
cgroups_before=$(berth_parents berth k8s.io)
portmap_preexisting=$(existing_portmap_chains)

cri() { "$crictl" --config /dev/null --runtime-endpoint "unix://$daemon_sock" --image-endpoint "unix://$daemon_sock" "$@"; }

# stop_daemon: every pod of the running daemon removed through it, the daemon stopped,
# then whatever of the run's containers is left: runc's containers in the run's runc
# roots (deleted with --force), then leftover shims and monitors (killed by pid).
stop_daemon() {
	local pid
	remove_pods "$daemon_pid" "$crictl" "$daemon_sock" 120s || true
	stop_pid "$daemon_pid" "runtime daemon"
	daemon_pid=""
	delete_runc_containers "$runc" "$tmp"/run/*/runc/* "$tmp"/run/*/state/runtime/*
	for pid in $(processes_under "$tmp/run"); do
		[ "$pid" = $$ ] && continue
		log "leftover process $pid ($(cat "/proc/$pid/comm" 2>/dev/null)): killing it"
		kill -KILL "$pid" 2>/dev/null || true
	done
}

cleanup() {
	local rc=$? s
	set +e
	stop_daemon
	stop_pid "$registry_pid" testregistry
	if [ -n "${COMPARE_KEEP:-}" ]; then
		mkdir -p "$COMPARE_KEEP"
		cp -a "$tmp/results/." "$COMPARE_KEEP/" 2>/dev/null
	fi
	delete_bridge "$bridge"
	[ -n "$ip_forward" ] && echo "$ip_forward" >/proc/sys/net/ipv4/ip_forward
	remove_portmap_chains "$portmap_preexisting"
	# Cgroups: the density pods' parent, and berth's and containerd's default parents
	# unless they were there before; only empty ones go.
	remove_cgroup_root "${cgparent#/}"
	remove_berth_parents "$cgroups_before" berth k8s.io
	# containerd's shims put their sockets in /run/containerd/s; ours are the new ones.
	for s in /run/containerd/s/*; do
		[ -e "$s" ] || continue
		[[ $'\n'"$shim_sockets_before"$'\n' == *$'\n'"${s##*/}"$'\n'* ]] || rm -f "$s"
	done
	unmount_under "$tmp"
	remove_tree "$tmp"
	exit "$rc"
}
trap_exit cleanup

# --- test registry (building busybox the first time takes a minute or two).
start_registry "$own/testregistry" "$tmp"

# --- the pod network both runtimes use, one after the other.
bridge="bk$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
subnet=$(pick_subnet 10.199)
ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)
mkdir -p "$tmp/results"
write_bridge_conflist "$tmp/net.d/10-compare.conflist" berth-compare "$bridge" "$subnet" "$tmp/ipam"

# critest's benchmark parameters. Its image benchmarks pull and remove an image and
# remove the listing images afterwards: the catalogue's docker.io busybox, which no
# other benchmark uses (critest's containers run the e2e busybox).
cat >"$tmp/params.yaml" <<EOF
containersNumber: $containers
containersNumberParallel: 1
podsNumber: $pods
podsNumberParallel: 1
imagesNumber: $images
imagesNumberParallel: 1
imagePullingBenchmarkImage: docker.io/library/busybox:latest
imageListingBenchmarkImages:
  - docker.io/library/busybox:latest
EOF

# --- the runtimes.
start_berth() {
	local dir="$1" argv
	write_berth_toml "$dir/berth.toml" "$registry" "$tmp/net.d"
	daemon_sock="$dir/berth.sock"
	mapfile -t argv < <(berthd_args "$dir")
	"$own/berthd" "${argv[@]}" >"$dir/daemon.log" 2>&1 &
	daemon_pid=$!
}

start_containerd() {
	local dir="$1" host
	mkdir -p "$dir/certs.d/_default" "$dir/bin"
	# Every registry, and any other (_default), is served by the loopback registry.
	for host in _default docker.io gcr.io registry.k8s.io k8s.gcr.io; do
		mkdir -p "$dir/certs.d/$host"
		printf 'server = "http://%s"\n' "$registry" >"$dir/certs.d/$host/hosts.toml"
	done
	ln -s "$shim" "$dir/bin/containerd-shim-runc-v2"
	# Can this node lower an oom_score_adj (CAP_SYS_RESOURCE)? If not, containerd must
	# keep its containers' scores at or above its own.
	local restrict_oom=false
	if ! (echo -999 >/proc/self/oom_score_adj) 2>/dev/null; then
		restrict_oom=true
	fi
	cat >"$dir/containerd.toml" <<EOF
# Written by hack/bench/compare.sh: a private containerd that pulls from the loopback
# test registry only.
version = 3
root = "$dir/root"
state = "$dir/state"
temp = "$dir/tmp"
disabled_plugins = [
  "io.containerd.nri.v1.nri",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs",
]

[grpc]
  address = "$dir/containerd.sock"

[ttrpc]
  address = "$dir/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "registry.k8s.io/pause:3.9"

[plugins."io.containerd.cri.v1.images".registry]
  config_path = "$dir/certs.d"

# Without CAP_SYS_RESOURCE (as here) no process may lower its oom_score_adj; berthd
# clamps by itself, containerd needs telling.
[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = $restrict_oom

[plugins."io.containerd.cri.v1.runtime".cni]
  bin_dirs = ["/usr/lib/cni"]
  conf_dir = "$tmp/net.d"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
  BinaryName = "$runc"
  Root = "$dir/runc"
  SystemdCgroup = false
EOF
	mkdir -p "$dir/tmp"
	daemon_sock="$dir/containerd.sock"
	PATH="$dir/bin:$PATH" "$containerd" --config "$dir/containerd.toml" >"$dir/daemon.log" 2>&1 &
	daemon_pid=$!
}

# round KIND N: one run of a runtime: start it, critest's benchmarks, density, stop it.
round() {
	local kind="$1" n="$2" dir="$tmp/run/$1-$2" results="$tmp/results/$1-$2" i rc
	mkdir -p "$dir" "$results"
	log "round $n: $kind"
	"start_$kind" "$dir"
	for ((i = 0; ; i++)); do
		cri --timeout 2s version >/dev/null 2>&1 && break
		if ! running "$daemon_pid" || ((i > 300)); then
			log "$kind did not come up; last lines of its log:"
			tail -n 40 "$dir/daemon.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	# The pause and busybox images first, so that no benchmark times their first pull.
	for img in registry.k8s.io/pause:3.9 registry.k8s.io/e2e-test-images/busybox:1.29-2; do
		cri --timeout 120s pull "$img" >/dev/null
	done
	log "$kind: critest -benchmark ($pods pods, $containers containers, $images images)"
	rc=0
	(cd "$dir" && "$critest" -benchmark -runtime-endpoint "unix://$daemon_sock" -image-endpoint "unix://$daemon_sock" \
		-benchmarking-params-file "$tmp/params.yaml" -benchmarking-output-dir "$results" \
		-ginkgo.no-color) >"$results/critest.log" 2>&1 || rc=$?
	grep -E 'Ran [0-9]+ of|SUCCESS!|FAIL!' "$results/critest.log" >&2 || true
	# critest's benchmarks also assert time bounds (a pod made in under 5 s, ...). A
	# loaded machine can miss one; that is a figure, not a failure of the comparison:
	# the results of the specs are kept, and the miss is printed under the table.
	if [ "$rc" != 0 ] && grep -q "shouldn't take too long" "$results/critest.log" &&
		! grep -E '^\s*\[FAILED\] ' "$results/critest.log" | grep -v '\[FAILED\] in \[' | grep -vq "shouldn't take too long"; then
		log "$kind: critest missed a time bound of its own (see below the table); its figures are kept"
		{
			printf '%s round %s: critest failed its own time bound: ' "$kind" "$n"
			grep -m1 -A4 -E "\[FAILED\] .*shouldn't take too long" "$results/critest.log" | tr -s ' \n' ' '
			echo
		} >>"$tmp/notes"
		rc=0
	fi
	if [ "$rc" != 0 ]; then
		log "$kind: critest exited with $rc; last lines of its output:"
		tail -n 30 "$results/critest.log" >&2
		exit 1
	fi
	log "$kind: density, $density pods"
	CRICTL="$crictl" DENSITY_CGROUP_PARENT="$cgparent/$kind-$n" \
		hack/bench/density.sh "$kind" "unix://$daemon_sock" "$daemon_pid" "$density" "$results/density.txt"
	stop_daemon
	cp -f "$dir/daemon.log" "$results/daemon.log"
}

round berth 1
round containerd 1
round berth 2

echo
echo "Berth and containerd $ctrd_version on $(nproc) CPUs, $(uname -r), $("$runc" --version | head -n 1);"
echo "critest $cri_version -benchmark ($pods pods, $containers containers, $images image pulls; its pods share the"
echo "PID namespace, so pause runs under both), then $density pods of one busybox sleep each (PID namespace per"
echo "container). Rounds interleaved berth / containerd / berth; Berth's figures pool both of its rounds."
echo
"$own/benchcompare" -berth "$tmp/results/berth-1,$tmp/results/berth-2" -containerd "$tmp/results/containerd-1"
if [ -s "$tmp/notes" ]; then
	echo
	cat "$tmp/notes"
fi
