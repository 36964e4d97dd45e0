#!/usr/bin/env bash
# Runs Kubernetes' node conformance suite (k8s.io/kubernetes/test/e2e_node,
# [NodeConformance] without [Flaky], [Slow], [Serial]) against a private berthd,
# then compares the specs that passed with the ratchet hack/node-e2e-pass.txt.
# The test binary runs its own etcd, apiserver and namespace controller and
# starts the kubelet built beside it (hack/k8s/build.sh).
#
#   hack/node-e2e.sh              the representative slice CI runs (NODE_E2E_SLICE)
#   hack/node-e2e.sh --all        every [NodeConformance] spec
#   NODE_E2E_FOCUS=regexp         only the specs matching (instead of the slice)
#   NODE_E2E_UPDATE=1             rewrite the ratchet with the passing set (with --all)
#   NODE_E2E_PARALLEL=N           ginkgo parallel processes (default 1)
#
# Images come from the loopback registry through berthd's mirrors under their
# canonical names. The kubelet gets a private root dir, its default cgroupRoot (/,
# as the Kubelet Cgroup Manager specs look for /kubepods at each hierarchy's root;
# removed at the end) or, when some hierarchy has a /kubepods already, a cgroupRoot
# of the run's own, no system/kubelet/runtime cgroups (the suite asks for /system,
# /kubelet and /docker-daemon; overridden), failCgroupV1 false; sysctls it rewrites
# are restored. Needs root. Talks to nothing but 127.0.0.1 and its own bridge.
set -euo pipefail
source "$(dirname "$0")/cluster/lib.sh"
[ "$(id -u)" = 0 ] || die "needs root"

# The slice CI runs (NODE_E2E_SLICE): container lifecycle, hooks, probes, logs,
# exec, security context, volumes, resources (downward API), kubelet's cgroups and
# pod lifecycle; 88 specs, ~6-7 minutes with 3 processes. Each line is a regexp on the spec.
slice_specs=(
	'Container Runtime blackbox test'
	'Container Lifecycle Hook when create a pod with lifecycle hook should execute'
	'Probing container should be restarted with a exec "cat /tmp/health" liveness probe'
	'Probing container should be restarted by liveness probe after startup probe enables it'
	'Probing container should not be ready with an exec readiness probe timeout'
	'Kubelet when scheduling a busybox command in a pod should print the output to logs'
	'ContainerLogPath Pod with a container printed log to stdout should print log to correct (cri )?log path'
	'Pods should support (remote command execution|retrieving logs from the container) over websockets'
	'Security Context'
	'EmptyDir volumes should support'
	"Downward API volume should provide container's (cpu|memory) (limit|request)"
	'Downward API should provide'
	'Secrets should be consumable from pods in volume with defaultMode set'
	'(ConfigMap|Secrets) should be consumable via the environment'
	'Kubelet Cgroup Manager'
	'ConfigMap should be consumable from pods in volume with mappings and Item mode set'
	'Pods should be (submitted and removed|updated)'
	'InitContainer should'
	'Containers Lifecycle when A pod is running only regular containers when the regular container has its image updated'
	'Containers Lifecycle when using a restartable init container in a Pod with restartPolicy=Never when a restartable init container runs continuously'
	'Containers Lifecycle when Running a pod with init containers and regular containers, restartPolicy=Never when an init container fails'
)
slice=$(IFS='|'; echo "${slice_specs[*]}")
slice="${NODE_E2E_SLICE:-$slice}"
all=""
[ "${1:-}" = "--all" ] && all=1
skip='\[Flaky\]|\[Slow\]|\[Serial\]'
ratchet="$repo/hack/node-e2e-pass.txt"
artifacts="${NODE_E2E_ARTIFACTS:-$repo/_output/node-e2e}"
parallel="${NODE_E2E_PARALLEL:-1}"
mkdir -p "$artifacts"

"$repo/hack/k8s/build.sh" kubelet e2e_node.test agnhost ginkgo
k8s_bin=$("$repo/hack/k8s/build.sh" --bin-dir)
own="$repo/_output/bin"
mkdir -p "$own"
berthd="${BERTHD:-$own/berthd}"
(
	cd "$repo"
	[ -n "${BERTHD:-}" ] || go build -o "$berthd" ./cmd/berthd
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$(dirname "$berthd")/berth-monitor" ./cmd/berth-monitor
	go build -o "$own/testregistry" ./hack/cmd/testregistry
	go build -o "$own/critestreport" ./hack/cmd/critestreport
)

id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
run=$(mktemp -d /tmp/berth-node-e2e.XXXXXX)
bridge="bn$id"
# kubelet's cgroups: under /kubepods (cgroupRoot /) unless that is taken, then
# under a root of the run's own (the Kubelet Cgroup Manager specs then fail).
cgroup_root=""
for m in $(cgroup_mounts); do
	[ -e "$m/kubepods" ] && cgroup_root="berth-node-e2e-$id"
done
[ -z "$cgroup_root" ] || log "a /kubepods cgroup exists: kubelet gets cgroupRoot /$cgroup_root"
registry_pid="" registry="" berthd_pid="" e2e_pid=""
record_sysctls >"$run/sysctls.before"
list_chains iptables >"$run/chains4.before"
list_chains ip6tables >"$run/chains6.before"
record_node_chains >"$run/node-chains.before"
[ -d /var/log/containers ] && touch "$run/var-log-containers.before"
# kubelet's root and pod log directories: the node's defaults when the machine
# has none (the device plugin specs dial /var/lib/kubelet/device-plugins/kubelet.sock,
# the CRI log path spec reads /var/log/pods; both are removed at the end), else
# the run's own (those specs then fail).
kubelet_root="$run/kubelet" pod_logs="$run/pod-logs"
[ -e /var/lib/kubelet ] || kubelet_root=/var/lib/kubelet
[ -e /var/log/pods ] || pod_logs=/var/log/pods

# suite_pids: the suite's own processes (its services and the kubelet it
# started: their command lines name the run's directory), should the suite die
# without stopping them.
suite_pids() {
	local p bin
	bin=$(readlink -f "$k8s_bin")
	for p in /proc/[0-9]*; do
		case "$(readlink "$p/exe" 2>/dev/null)" in
		"$bin/kubelet" | "$bin/e2e_node.test" | "$bin/ginkgo") ;;
		*) continue ;;
		esac
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$run/" && echo "${p#/proc/}"
	done
	return 0
}

cleanup() {
	local rc=$? p l d
	set +e
	stop_pid "$e2e_pid" e2e_node.test 60
	for p in $(suite_pids); do
		log "stopping pid $p the suite left: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-100)"
		stop_pid "$p" "pid $p" 30
	done
	# The pods left removed through berthd (its stop leaves them running), then berthd.
	remove_pods "$berthd_pid" "${crictl:-}" "$run/berth.sock" 120s
	stop_pid "$berthd_pid" berthd
	stop_pid "$registry_pid" testregistry
	save_artifacts "$run" "$artifacts" berthd.log registry.log e2e.log junit.xml kubelet-base.yaml berth.toml
	save_artifacts "$run/report" "$artifacts" kubelet.log
	for d in "$run" "$kubelet_root" "$pod_logs"; do
		unmount_under "$d"
	done
	remove_cgroup_root "${cgroup_root:-kubepods}"
	# The node's default directories, when the run took them.
	for d in "$kubelet_root" "$pod_logs"; do
		[[ $d == "$run/"* ]] || remove_tree "$d"
	done
	# kubelet links each container's log into /var/log/containers.
	for l in /var/log/containers/*; do
		[ -L "$l" ] && [[ $(readlink "$l") == "$run/"* || $(readlink "$l") == "$pod_logs/"* ]] && rm -f "$l"
	done
	[ -e "$run/var-log-containers.before" ] || rmdir /var/log/containers 2>/dev/null
	remove_node_chains "$run/node-chains.before"
	list_chains iptables | while read -r t c; do
		grep -qx "$t $c" "$run/chains4.before" || log "iptables chain $t $c appeared during the run"
	done
	list_chains ip6tables | while read -r t c; do
		grep -qx "$t $c" "$run/chains6.before" || log "ip6tables chain $t $c appeared during the run"
	done
	restore_sysctls "$run/sysctls.before"
	delete_bridge "$bridge"
	remove_tree "$run"
	exit "$rc"
}
trap_exit cleanup

crictl=$(ensure_crictl "$repo/hack/.cache/bin")

# --- loopback registry, with agnhost. Never on port 5000: the private-registry
# specs start a registry there. It and berthd run in sessions of their own
# (setsid): a Ctrl-C at the terminal does not reach them, and cleanup stops them
# after the suite, the pods first.
setsid "$own/testregistry" -addr 127.0.0.1:0 -agnhost "$k8s_bin/agnhost" >"$run/registry.out" 2>"$run/registry.log" </dev/null &
registry_pid=$!
wait_registry "$registry_pid" "$run/registry.out" "$run/registry.log"

# --- pod network: a bridge and a /24 of 10.199.0.0/16 of this run's own.
subnet=$(pick_subnet 10.199)
echo 1 >/proc/sys/net/ipv4/ip_forward
write_bridge_conflist "$run/net.d/10-node-e2e.conflist" node-e2e "$bridge" "$subnet" "$run/ipam"

# --- berthd: hack/lib's berth.toml (every pull through the loopback registry), with
# the cgroupfs driver. The RuntimeClass and PodOverhead specs expect a handler named
# test-handler (Kubernetes' CI configures one as runc).
write_berth_toml "$run/berth.toml" "$registry" "$run/net.d"
sed -i '1i cgroup_driver = "cgroupfs"' "$run/berth.toml"
printf '\n[runtimes.test-handler]\npath = "runc"\n' >>"$run/berth.toml"
mapfile -t berthd_argv < <(berthd_args "$run")
setsid "$berthd" "${berthd_argv[@]}" >"$run/berthd.log" 2>&1 </dev/null &
berthd_pid=$!
wait_berthd "$berthd_pid" "$crictl" "$run/berth.sock" "$run/berthd.log"

# --- kubelet: the suite loads this file and adds its own settings on top.
[ -z "$cgroup_root" ] || make_cgroup_root "$cgroup_root"
: >"$run/resolv.conf"
cat >"$run/kubelet-base.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupRoot: /$cgroup_root
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
protectKernelDefaults: false
makeIPTablesUtilChains: false
podLogsDir: $pod_logs
volumePluginDir: $run/volume-plugins
resolvConf: $run/resolv.conf
serializeImagePulls: false
fileCheckFrequency: 10s
volumeStatsAggPeriod: 10s
podCIDR: $subnet.0/24
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
evictionPressureTransitionPeriod: 30s
EOF

# The suite starts kubelet with systemd-run when it finds one on PATH, and this
# machine has the command but not systemd. Its PATH is a directory of links to
# every command of ours but systemd-run and systemctl, so it runs kubelet
# itself.
mkdir "$run/path"
IFS=: read -ra path_dirs <<<"$PATH"
for d in "${path_dirs[@]}"; do
	[ -d "$d" ] || continue
	for f in "$d"/*; do
		[ -f "$f" ] && [ -x "$f" ] && [ ! -e "$run/path/${f##*/}" ] && ln -s "$f" "$run/path/${f##*/}"
	done
done
rm -f "$run/path/systemd-run" "$run/path/systemctl"

# --- the suite. The labels pick [NodeConformance] without [Flaky], [Slow],
# [Serial]; the focus narrows that to the slice, or to NODE_E2E_FOCUS.
labels='NodeConformance && !Flaky && !Slow && !Serial'
focus=""
[ -n "$all" ] || focus="$slice"
[ -z "${NODE_E2E_FOCUS:-}" ] || focus="$NODE_E2E_FOCUS"
# Flags of the test binary; ginkgo's own go first, as --ginkgo.X for one process
# or --X to the ginkgo CLI for several.
args=(
	--container-runtime-endpoint "unix://$run/berth.sock"
	--image-service-endpoint "unix://$run/berth.sock"
	--prepull-images=false
	--kubelet-config-file "$run/kubelet-base.yaml"
	"--kubelet-flags=--root-dir=$kubelet_root --cert-dir=$run/kubelet/pki --kubelet-cgroups= --system-cgroups= --runtime-cgroups="
	--report-dir "$run/report"
)
ginkgo_args=(label-filter "$labels" skip "$skip" junit-report "$run/junit.xml" timeout 120m)
[ -z "$focus" ] || ginkgo_args+=(focus "$focus")
if [ "$parallel" -gt 1 ]; then
	cmd=("$k8s_bin/ginkgo" --procs "$parallel" --no-color)
	for ((i = 0; i < ${#ginkgo_args[@]}; i += 2)); do
		cmd+=("--${ginkgo_args[i]}=${ginkgo_args[i + 1]}")
	done
	cmd+=("$k8s_bin/e2e_node.test" -- "${args[@]}")
else
	cmd=("$k8s_bin/e2e_node.test" "${args[@]}" --ginkgo.no-color)
	for ((i = 0; i < ${#ginkgo_args[@]}; i += 2)); do
		cmd+=("--ginkgo.${ginkgo_args[i]}=${ginkgo_args[i + 1]}")
	done
fi
what="the CI slice"
[ -z "$all" ] || what="all of it"
[ -z "${NODE_E2E_FOCUS:-}" ] || what="focus ${NODE_E2E_FOCUS}"
log "running e2e_node [NodeConformance], $what, $parallel process(es) (output: $artifacts/e2e.log)"
start=$(date +%s)
set +e
(cd "$run" && PATH="$run/path" exec "${cmd[@]}") >"$run/e2e.log" 2>&1 &
e2e_pid=$!
wait "$e2e_pid"
e2e_rc=$?
e2e_pid=""
set -e
grep -E '^(Ran |FAIL!|SUCCESS!|PASS|FAIL)' "$run/e2e.log" | tail -n 5 >&2 || true
log "e2e_node.test exited with $e2e_rc after $(($(date +%s) - start))s"
[ -s "$run/junit.xml" ] || { tail -n 60 "$run/e2e.log" >&2; die "no JUnit report"; }

report_args=(-junit "$run/junit.xml" -ratchet "$ratchet" -log "$run/e2e.log")
[ -z "$focus" ] || report_args+=(-focus "$focus")
[ "${NODE_E2E_UPDATE:-}" = 1 ] && report_args+=(-update)
"$own/critestreport" "${report_args[@]}"
