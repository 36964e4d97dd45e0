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
# and critest as hack/critest.sh builds them. Each run has a root, state, sockets and
# runc root of its own in a run directory under /tmp.
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
cd "$(dirname "$0")/../.."
repo=$(pwd)

if [ "$(id -u)" != 0 ]; then
	echo "compare.sh: needs root (both runtimes run containers)" >&2
	exit 1
fi
export PATH="/usr/local/go/bin:$PATH"
for tool in jq iptables; do
	command -v "$tool" >/dev/null || { echo "compare.sh: needs $tool" >&2; exit 1; }
done

log() { printf 'compare.sh: %s\n' "$*" >&2; }

ctrd_version=v2.4.2
pods=${COMPARE_PODS:-50}
containers=${COMPARE_CONTAINERS:-50}
images=${COMPARE_IMAGES:-20}
density=${COMPARE_DENSITY:-30}
cache="$repo/hack/.cache"
bin="$cache/bin"
own="$repo/_output/bin"
mkdir -p "$bin" "$own"

# build OUT PKG [DIR]: go build into OUT atomically (other checkouts may build too).
build() {
	local out="$1" pkg="$2" dir="${3:-$repo}"
	(cd "$dir" && go build -o "$out.tmp.$$" "$pkg") && mv -f "$out.tmp.$$" "$out"
}

# --- tools.
cri_version=$(awk '{for (i = 1; i < NF; i++) if ($i == "sigs.k8s.io/cri-tools") {print $(i + 1); exit}}' hack/tools/go.mod)
[ -n "$cri_version" ] || { log "no sigs.k8s.io/cri-tools requirement in hack/tools/go.mod"; exit 1; }
crictl="$bin/crictl-$cri_version"
critest="$bin/critest-$cri_version"
if [ ! -x "$crictl" ]; then
	log "building crictl $cri_version"
	build "$crictl" sigs.k8s.io/cri-tools/cmd/crictl "$repo/hack/tools"
fi
if [ ! -x "$critest" ]; then
	log "building critest $cri_version"
	(cd hack/tools && go test -c -o "$critest.tmp.$$" sigs.k8s.io/cri-tools/cmd/critest) && mv -f "$critest.tmp.$$" "$critest"
fi
containerd="$bin/containerd-$ctrd_version"
shim="$bin/containerd-shim-runc-v2-$ctrd_version"
if [ ! -x "$containerd" ] || [ ! -x "$shim" ]; then
	log "building containerd $ctrd_version and its runc shim from the Go module proxy (once)"
	gobin=$(mktemp -d /tmp/berth-containerd-build.XXXXXX)
	if ! (cd "$gobin" && GOBIN="$gobin" GOFLAGS=-trimpath go install \
		"github.com/containerd/containerd/v2/cmd/containerd@$ctrd_version" \
		"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$ctrd_version"); then
		rm -rf "$gobin"
		log "building containerd $ctrd_version failed (see above)"
		exit 1
	fi
	mv -f "$gobin/containerd" "$containerd.tmp.$$" && mv -f "$containerd.tmp.$$" "$containerd"
	mv -f "$gobin/containerd-shim-runc-v2" "$shim.tmp.$$" && mv -f "$shim.tmp.$$" "$shim"
	rm -rf "$gobin"
fi
log "building berthd, berth-monitor, testregistry, benchcompare"
build "$own/berthd" ./cmd/berthd
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$own/berth-monitor.tmp.$$" ./cmd/berth-monitor &&
	mv -f "$own/berth-monitor.tmp.$$" "$own/berth-monitor"
build "$own/testregistry" ./hack/cmd/testregistry
build "$own/benchcompare" ./hack/cmd/benchcompare
runc=$(command -v runc) || { log "no runc in PATH"; exit 1; }
log "runc: $runc ($("$runc" --version | head -n 1))"

# --- run directory and cleanup.
tmp=$(mktemp -d /tmp/berth-compare.XXXXXX)
registry_pid=""
daemon_pid=""
daemon_sock=""
bridge=""
ip_forward=""
cgparent="/berth-compare-${tmp##*.}"
shim_sockets_before=$(ls /run/containerd/s 2>/dev/null || true)
cgroups_before=$(ls -d /sys/fs/cgroup/*/berth /sys/fs/cgroup/*/k8s.io /sys/fs/cgroup/berth /sys/fs/cgroup/k8s.io 2>/dev/null || true)
portmap_chains="CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK"
portmap_preexisting=""
for c in $portmap_chains; do
	iptables -w -t nat -S "$c" >/dev/null 2>&1 && portmap_preexisting+=" $c"
done

running() {
	local stat
	stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $stat != Z* ]]
}

# stop PID NAME: SIGTERM, then SIGKILL after 30 s. Only for processes started here.
stop() {
	local pid="$1" name="$2" i
	[ -n "$pid" ] || return 0
	running "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		running "$pid" || break
		sleep 0.1
	done
	if running "$pid"; then
		log "$name (pid $pid) ignored SIGTERM for 30s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cri() { "$crictl" --config /dev/null --runtime-endpoint "unix://$daemon_sock" --image-endpoint "unix://$daemon_sock" "$@"; }

# processes_under DIR: pids whose command line or working directory is under DIR (the
# shims, monitors and runc processes of this run; containerd's shims run in their
# bundle directory under the run's state). One grep and one find over /proc, not a
# few processes per pid: the machine may have thousands. The pattern is read from a
# file, so that grep's own command line does not match it.
processes_under() {
	printf '%s/\n' "$1" >"$tmp/processes_under.pattern"
	{
		grep -lsF -f "$tmp/processes_under.pattern" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3
		find /proc -mindepth 2 -maxdepth 2 -name cwd -lname "$1/*" 2>/dev/null | cut -d/ -f3
	} | sort -un
}

# stop_daemon: every pod of the running daemon removed through it, the daemon stopped,
# then whatever of the run's containers is left: runc's containers in the run's runc
# roots (deleted with --force), then leftover shims and monitors (killed by pid).
stop_daemon() {
	local n r id pid
	if [ -n "$daemon_pid" ] && running "$daemon_pid" && [ -S "$daemon_sock" ]; then
		n=$(cri --timeout 10s pods -q 2>/dev/null | wc -l)
		if [ "$n" -gt 0 ]; then
			log "removing the $n pod(s) left"
			cri --timeout 120s rmp --all --force >/dev/null 2>&1 || log "could not remove every pod"
		fi
	fi
	stop "$daemon_pid" "runtime daemon"
	daemon_pid=""
	for r in "$tmp"/run/*/runc/* "$tmp"/run/*/state/runtime/*; do
		[ -d "$r" ] || continue
		for id in $("$runc" --root "$r" list -q 2>/dev/null); do
			log "leftover container $id: runc delete --force"
			"$runc" --root "$r" delete --force "$id" >/dev/null 2>&1 || log "cannot delete container $id"
		done
	done
	for pid in $(processes_under "$tmp/run"); do
		[ "$pid" = $$ ] && continue
		log "leftover process $pid ($(cat "/proc/$pid/comm" 2>/dev/null)): killing it"
		kill -KILL "$pid" 2>/dev/null || true
	done
}

remove_portmap_chains() {
	local c
	iptables -w -t nat -S CNI-HOSTPORT-DNAT 2>/dev/null | grep -q '^-A' && return 0
	for c in $portmap_chains; do
		[[ " $portmap_preexisting " == *" $c "* ]] && continue
		iptables -w -t nat -S "$c" >/dev/null 2>&1 || continue
		while iptables -w -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j "$c" 2>/dev/null; do :; done
		while iptables -w -t nat -D OUTPUT -m addrtype --dst-type LOCAL -j "$c" 2>/dev/null; do :; done
		while iptables -w -t nat -D POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j "$c" 2>/dev/null; do :; done
		iptables -w -t nat -F "$c" && iptables -w -t nat -X "$c" || log "cannot remove chain $c"
	done
}

cleanup() {
	local rc=$? m d s
	set +e
	stop_daemon
	stop "$registry_pid" testregistry
	if [ -n "${COMPARE_KEEP:-}" ]; then
		mkdir -p "$COMPARE_KEEP"
		cp -a "$tmp/results/." "$COMPARE_KEEP/" 2>/dev/null
	fi
	if [ -n "$bridge" ] && ip link show "$bridge" >/dev/null 2>&1; then
		ip link del "$bridge" || log "cannot delete bridge $bridge"
	fi
	[ -n "$ip_forward" ] && echo "$ip_forward" >/proc/sys/net/ipv4/ip_forward
	remove_portmap_chains
	# Cgroups: the density pods' parent, and berth's and containerd's default parents
	# (critest's pods name none) unless they were there before; only empty ones go.
	for d in /sys/fs/cgroup/*"$cgparent" /sys/fs/cgroup"$cgparent" \
		/sys/fs/cgroup/*/berth /sys/fs/cgroup/*/k8s.io /sys/fs/cgroup/berth /sys/fs/cgroup/k8s.io; do
		[ -d "$d" ] || continue
		[[ $'\n'"$cgroups_before"$'\n' == *$'\n'"$d"$'\n'* ]] && continue
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || log "cannot remove cgroup $d"
	done
	# containerd's shims put their sockets in /run/containerd/s; ours are the new ones.
	for s in /run/containerd/s/*; do
		[ -e "$s" ] || continue
		[[ $'\n'"$shim_sockets_before"$'\n' == *$'\n'"${s##*/}"$'\n'* ]] || rm -f "$s"
	done
	for m in $(awk -v d="$tmp/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
	done
	rm -rf --one-file-system "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- test registry.
: >"$tmp/registry.out"
"$own/testregistry" -addr 127.0.0.1:0 >"$tmp/registry.out" 2>"$tmp/registry.log" &
registry_pid=$!
registry=""
for ((i = 0; i < 3000; i++)); do # building busybox the first time takes a minute or two
	registry=$(awk '$1 == "ready" {print $2; exit}' "$tmp/registry.out")
	[ -n "$registry" ] && break
	running "$registry_pid" || { log "testregistry exited:"; tail -n 40 "$tmp/registry.log" >&2; exit 1; }
	sleep 0.1
done
[ -n "$registry" ] || { log "testregistry not ready after 5 minutes"; exit 1; }
log "test registry on $registry"

# --- the pod network both runtimes use, one after the other.
bridge="bk$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
subnet=""
for ((i = 0; i < 256; i++)); do
	candidate="10.199.$(((RANDOM + i) % 256))"
	if ! ip -4 -o addr show | grep -q " $candidate\."; then
		subnet="$candidate.0/24"
		break
	fi
done
[ -n "$subnet" ] || { log "no free subnet in 10.199.0.0/16"; exit 1; }
ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)
mkdir -p "$tmp/net.d" "$tmp/results"
cat >"$tmp/net.d/10-compare.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "berth-compare", "plugins": [
  {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$subnet"}]], "dataDir": "$tmp/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
  {"type": "loopback"}]}
EOF

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
	local dir="$1"
	cat >"$dir/berth.toml" <<EOF
# Written by hack/bench/compare.sh: images come from the loopback test registry only.
[image.registry]
mirrors_only = true

[image.registry.mirrors]
"docker.io" = ["http://$registry"]
"gcr.io" = ["http://$registry"]
"registry.k8s.io" = ["http://$registry"]
"k8s.gcr.io" = ["http://$registry"]

[image.registry.hosts."$registry"]
plain_http = true

[network]
conf_dir = "$tmp/net.d"
EOF
	daemon_sock="$dir/berth.sock"
	"$own/berthd" --config "$dir/berth.toml" --config-dir "$dir/berth.d" \
		--root "$dir/root" --state "$dir/state" --listen "unix://$daemon_sock" --log-level info \
		>"$dir/daemon.log" 2>&1 &
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
