# Sourced by hack/kubelet-e2e.sh: the lane's checks, through kubelet's read-only port,
# crictl on berthd's socket, the pod log directory and the cgroup filesystem.
# shellcheck shell=bash

ro() { curl -fsS --max-time 20 "http://127.0.0.1:$roport$1"; }

# pod_json NAME: kubelet's view of static pod NAME (named NAME-<node>), with status.
pod_json() { ro /pods | jq -e --arg n "$1-$node" '.items[] | select(.metadata.name == $n)'; }

# ctr_status POD CONTAINER: the container's status in kubelet's view.
ctr_status() { pod_json "$1" | jq -e --arg c "$2" '.status.containerStatuses[] | select(.name == $c)'; }

# ctr_id CONTAINER: berth's id of the newest container named CONTAINER in the lane.
ctr_id() { crictl ps -a --name "^$1\$" --label "io.kubernetes.pod.namespace=$ns" -q | head -n 1; }

pod_ready() {
	pod_json "$1" | jq -e '.status.phase == "Running" and
		any(.status.conditions[]; .type == "Ready" and .status == "True")' >/dev/null ||
		{ pod_json "$1" | jq -c '.status | {phase, conditions, containerStatuses}'; return 1; }
}

# cgroup_file CONTAINER-ID V1-CONTROLLER V1-FILE V2-FILE: a file of the container's cgroup
# under the lane's cgroup root.
cgroup_file() {
	local dir
	if [ -d "/sys/fs/cgroup/$2/$cgroot" ]; then
		dir=$(find "/sys/fs/cgroup/$2/$cgroot" -type d -name "*$1*" | head -n 1)
		[ -n "$dir" ] && cat "$dir/$3"
	else
		dir=$(find "/sys/fs/cgroup/$cgroot" -type d -name "*$1*" | head -n 1)
		[ -n "$dir" ] && cat "$dir/$4"
	fi
}

check_driver_from_cri() {
	grep -q 'Using cgroup driver setting received from the CRI runtime' "$tmp/kubelet.log"
}

check_web_ready() { eventually 240 pod_ready web; }

check_probe_restart() {
	eventually 120 sh -c '
		s=$(curl -fsS http://127.0.0.1:'"$roport"'/pods | jq -c --arg n "probes-'"$node"'" \
			".items[] | select(.metadata.name == \$n) | .status.containerStatuses[0]")
		echo "$s"
		echo "$s" | jq -e ".restartCount >= 1 and .lastState.terminated.exitCode == 137" >/dev/null'
	grep -q 'failed liveness probe' "$tmp/kubelet.log"
}

check_crash_loop() {
	eventually 150 sh -c '
		s=$(curl -fsS http://127.0.0.1:'"$roport"'/pods | jq -c --arg n "crash-'"$node"'" \
			".items[] | select(.metadata.name == \$n) | .status.containerStatuses[0]")
		echo "$s"
		echo "$s" | jq -e ".restartCount >= 2 and .lastState.terminated.exitCode == 3 and
			.lastState.terminated.reason == \"Error\"" >/dev/null'
}

check_tcp_liveness_holds() {
	ctr_status web web | jq -e '.ready and .restartCount == 0' >/dev/null || ctr_status web web
}

check_pod_log_dir() {
	local f
	f=$(find "$tmp/pod-logs" -path "*/${ns}_crash-${node}_*/crasher/*.log" | head -n 1)
	[ -n "$f" ] || { echo "no CRI log of crasher under $tmp/pod-logs"; find "$tmp/pod-logs" | head; return 1; }
	grep -E '^[0-9T:.+Z-]+ stdout F crashing now$' "$f" || { echo "$f:"; cat "$f"; return 1; }
}

check_crictl_logs() { crictl logs "$(ctr_id crasher)" 2>&1 | grep -x 'crashing now'; }

check_exec_env() { [ "$(crictl exec "$(ctr_id sidecar)" printenv GREETING)" = hello-from-env ]; }

check_empty_dir() { [ "$(crictl exec "$(ctr_id web)" cat /data/hello)" = hello-from-env ]; }

check_limits() {
	local id mem quota
	id=$(ctr_id web)
	mem=$(cgroup_file "$id" memory memory.limit_in_bytes memory.max)
	quota=$(cgroup_file "$id" cpu cpu.cfs_quota_us cpu.max)
	echo "memory limit $mem, cpu quota $quota"
	[ "$mem" = 67108864 ] && [[ $quota == 25000* ]]
}

check_under_cgroot() {
	local m
	for m in /sys/fs/cgroup/memory /sys/fs/cgroup; do
		[ -d "$m/$cgroot/kubepods" ] && return 0
	done
	echo "no kubepods under /$cgroot"
	return 1
}

check_host_port() { curl -fsS --max-time 10 "http://127.0.0.1:$hostport/" | grep -q 'Welcome to nginx'; }

check_healthz() { [ "$(curl -fsS "http://127.0.0.1:$hzport/healthz")" = ok ]; }

# check_summary: kubelet's summary API reports the writer container's rootfs, which
# berthd measures in the background (disk_usage_interval 2s).
check_summary() {
	eventually 120 sh -c '
		b=$(curl -fsS --max-time 20 http://127.0.0.1:'"$roport"'/stats/summary | jq -r --arg n "writer-'"$node"'" \
			".pods[] | select(.podRef.name == \$n) | .containers[] | select(.name == \"writer\") | .rootfs.usedBytes")
		echo "writer rootfs.usedBytes=$b"
		[ -n "$b" ] && [ "$b" != null ] && [ "$b" -ge 10485760 ]' | tail -n 1 | tee "$tmp/summary.txt"
}

run_checks() {
	check "kubelet healthz on its own port" check_healthz
	check "kubelet takes the cgroup driver from berthd's RuntimeConfig" check_driver_from_cri
	check "pod Running and Ready (readiness httpGet + exec)" check_web_ready
	check "exec liveness failure restarts the container (exit 137)" check_probe_restart
	check "crashing container: restart count >= 2, exit code 3" check_crash_loop
	check "tcpSocket liveness holds: no restart of a healthy container" check_tcp_liveness_holds
	check "CRI log under kubelet's pod log directory" check_pod_log_dir
	check "crictl logs" check_crictl_logs
	check "crictl exec + env" check_exec_env
	check "emptyDir shared between containers" check_empty_dir
	check "memory and CPU limits in the container cgroup" check_limits
	check "pod cgroups under kubelet's own cgroup root" check_under_cgroot
	check "hostPort on 127.0.0.1" check_host_port
	check "summary API: rootfs of a container that wrote 10 MB" check_summary
	cp -f "$tmp/summary.txt" "$artifacts/summary.txt" 2>/dev/null || true
}

# ctr_gone_or_exited ID: the container exited, or kubelet already removed it.
ctr_gone_or_exited() {
	local st
	st=$(crictl inspect "$1" 2>/dev/null | jq -r .status.state) || return 0
	[ -z "$st" ] || [ "$st" = CONTAINER_EXITED ]
}

# check_graceful_stop: removing web's manifest runs the sidecar's preStop hook, then
# sends SIGTERM, which the sidecar traps and exits 0 on, well within the grace period.
check_graceful_stop() {
	local removed pre term id code
	id=$(ctr_id sidecar)
	removed=$(date +%s)
	rm -f "$tmp/manifests/web.yaml"
	eventually 40 grep -q '^term ' "$tmp/host/events" || return 1
	eventually 40 ctr_gone_or_exited "$id" || return 1
	# kubelet may remove the container right away; its exit code is then unknown ("").
	code=$(crictl inspect "$id" 2>/dev/null | jq -r ".status.exitCode // 0") || code=
	cat "$tmp/host/events"
	pre=$(awk '$1 == "prestop" {print $2; exit}' "$tmp/host/events")
	term=$(awk '$1 == "term" {print $2; exit}' "$tmp/host/events")
	echo "removed $removed, preStop $pre, SIGTERM $term, exit code $code"
	[ -n "$pre" ] && [ -n "$term" ] && [ "$term" -ge "$((pre + 2))" ] && [ "$term" -le "$((removed + 20))" ] && [[ $code == "" || $code == 0 ]]
}

no_pods_left() { [ -z "$(crictl pods -q)" ] || { crictl pods; return 1; }; }

no_processes_in_cgroot() {
	local m procs=""
	for m in $(cgroup_mounts); do
		[ -d "$m/$cgroot" ] && procs+=$(find "$m/$cgroot" -name cgroup.procs -exec cat {} +)
	done
	[ -z "$procs" ] || { echo "processes left: $procs"; return 1; }
}

no_mounts_left() {
	local left
	left=$(awk -v d="$tmp/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo)
	[ -z "$left" ] || { echo "$left"; return 1; }
}

no_log_links_left() {
	local l
	for l in /var/log/containers/*; do
		[ -L "$l" ] && [[ $(readlink "$l") == "$tmp/"* ]] && { echo "left: $l"; return 1; }
	done
	return 0
}

sysctls_restored() {
	local line s
	restore_sysctls "$tmp/sysctls"
	while IFS= read -r line; do
		s=${line%%=*}
		polluted "$s" "${line#*=}" && continue # not restored, on purpose
		[ "$s=$(cat "/proc/sys/$s")" = "$line" ] || { echo "$s is $(cat "/proc/sys/$s"), was ${line#*=}"; return 1; }
	done <"$tmp/sysctls"
}

no_iptables_from_kubelet() {
	! iptables -w -S 2>/dev/null | grep -q -- '-N KUBE-FIREWALL' || grep -q 'KUBE-FIREWALL' "$tmp/iptables-before"
}

teardown_checks() {
	check "graceful termination: preStop, then SIGTERM, within the grace period" check_graceful_stop
	rm -f "$tmp/manifests/"*.yaml
	# kubelet kills the pods at once and removes their sandboxes at its next garbage
	# collection (once a minute).
	check "teardown: kubelet removes every pod sandbox" eventually 150 no_pods_left
	check "teardown: no kubelet symlink left in /var/log/containers" eventually 60 no_log_links_left
	stop_pid "$kubelet_pid" kubelet
	kubelet_pid=""
	# kubelet bind-mounts its --root-dir onto itself (to make it rshared) and never
	# undoes it: that one mount is the lane's to remove; any other would be a leak.
	if mountpoint -q "$tmp/kubelet"; then
		umount "$tmp/kubelet" || log "cannot unmount kubelet's root dir"
	fi
	check "teardown: no process left in the lane's cgroups" no_processes_in_cgroot
	check "teardown: no mount left under the run directory" no_mounts_left
	check "teardown: kubelet made no iptables chain" no_iptables_from_kubelet
	check "teardown: the sysctls kubelet rewrote are restored" sysctls_restored
}
