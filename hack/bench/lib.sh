# shellcheck shell=bash
# Sourced by hack/bench/density.sh and hack/bench/memory.sh: the one way the benchmarks
# make pods of one busybox `sleep` through crictl, find the processes a runtime keeps
# per pod and read their memory. The caller defines cri (crictl with its endpoints)
# and log (a message on standard error).

# bench_smaps PID: "RSS PSS" in kB, from /proc/PID/smaps_rollup.
bench_smaps() {
	awk '$1 == "Rss:" {r = $2} $1 == "Pss:" {p = $2} END {if (r == "") exit 1; print r, p}' "/proc/$1/smaps_rollup"
}

# bench_pods_up N IMAGE PIDMODE CGPARENT NAMESPACE DIR IDS: N pods named
# <NAMESPACE>-<i> in NAMESPACE, made one after the other as kubelet would (RunPodSandbox,
# CreateContainer, StartContainer), each with one IMAGE `sleep 1000` container. PIDMODE
# is the CRI namespace mode of pod and container (1 CONTAINER: kubelet's default, no
# pause under berth; 0 POD: shared, a pause each); each pod's cgroup parent is
# CGPARENT/pod-<i>; the pods' config files and logs go under DIR. Each pod's id is
# appended to IDS as soon as it exists, then replaced by "pod ctr" once its container
# started, so that a caller's cleanup finds every pod. Fails at the first failure.
bench_pods_up() {
	local n="$1" image="$2" pidmode="$3" cgparent="$4" ns="$5" dir="$6" ids="$7"
	local i name pdir pod ctr
	for ((i = 1; i <= n; i++)); do
		name="$ns-$i"
		pdir="$dir/$name"
		mkdir -p "$pdir/logs"
		cat >"$pdir/pod.json" <<EOF_POD
{"metadata": {"name": "$name", "namespace": "$ns", "uid": "$(cat /proc/sys/kernel/random/uuid)", "attempt": 0},
 "hostname": "$name", "log_directory": "$pdir/logs",
 "linux": {"cgroup_parent": "$cgparent/pod-$i",
           "security_context": {"namespace_options": {"pid": $pidmode}}}}
EOF_POD
		cat >"$pdir/ctr.json" <<EOF_CTR
{"metadata": {"name": "sleep", "attempt": 0},
 "image": {"image": "$image"},
 "command": ["sleep", "1000"],
 "log_path": "sleep/0.log",
 "linux": {"security_context": {"namespace_options": {"pid": $pidmode}}}}
EOF_CTR
		pod=$(cri --timeout 60s runp "$pdir/pod.json") || { log "runp $name failed"; return 1; }
		echo "$pod" >>"$ids"
		ctr=$(cri --timeout 60s create --no-pull "$pod" "$pdir/ctr.json" "$pdir/pod.json") ||
			{ log "create in $name failed"; return 1; }
		cri --timeout 60s start "$ctr" >/dev/null || { log "start in $name failed"; return 1; }
		sed -i '$ d' "$ids"
		echo "$pod $ctr" >>"$ids"
	done
}

# bench_per_pod_pids KIND IDS MONITORS PAUSES: the pids of the processes runtime KIND
# keeps for the pods of IDS ("pod ctr" lines), one a line. berth: each container's
# berth-monitor (the monitorPid of `crictl inspect`) into MONITORS, each pod's pause
# (the pid of `crictl inspectp`; none with a PID namespace per container) into PAUSES.
# containerd: each pod's pause into PAUSES and its shim, the pause's parent, into
# MONITORS. The containers' own processes are the same under any runtime and not
# counted.
bench_per_pod_pids() {
	local kind="$1" ids="$2" monitors="$3" pauses="$4" pod ctr pause mon
	: >"$monitors"
	: >"$pauses"
	while read -r pod ctr; do
		pause=$(cri inspectp -o json "$pod" | jq -r '.info.pid // 0')
		case "$kind" in
		berth)
			mon=$(cri inspect -o json "$ctr" | jq -r '.info.monitorPid // empty')
			[ -n "$mon" ] || { log "no monitorPid in crictl inspect $ctr"; return 1; }
			echo "$mon" >>"$monitors"
			if [ "$pause" != 0 ]; then echo "$pause" >>"$pauses"; fi
			;;
		containerd)
			[ "$pause" != 0 ] || { log "no pause pid for pod $pod"; return 1; }
			echo "$pause" >>"$pauses"
			awk '{print $4}' "/proc/$pause/stat" >>"$monitors"
			;;
		*) log "unknown runtime kind $kind"; return 1 ;;
		esac
	done <"$ids"
}

# bench_smaps_of PIDS OUT: "RSS PSS" (kB) of each pid listed in the file PIDS, a line
# each, into OUT. Fails if one of them is gone.
bench_smaps_of() {
	local pid
	: >"$2"
	while read -r pid; do
		bench_smaps "$pid" >>"$2" || { log "process $pid is gone"; return 1; }
	done <"$1"
}

# bench_sum FILE: the sums "RSS PSS" of a file of "RSS PSS" lines.
bench_sum() { awk '{r += $1; p += $2} END {print r + 0, p + 0}' "$1"; }
