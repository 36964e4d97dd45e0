# Processes a lane started: whether one still runs, and stopping one. Only ever
# given PIDs the caller started itself (never looked up by name). Sourced, not run.
# shellcheck shell=bash

# running PID: the process exists and is not a zombie waiting to be reaped.
running() {
	local stat
	[ -n "${1:-}" ] || return 1
	stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $stat != Z* ]]
}

# stop_pid PID NAME [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 30).
# A child of this shell is reaped; a process of an earlier shell (the cluster
# lane's, recorded in its env file) is waited for until it is gone.
stop_pid() {
	local pid="$1" name="$2" secs="${3:-30}" i
	[ -n "$pid" ] || return 0
	if running "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < secs * 10; i++)); do
			running "$pid" || break
			sleep 0.1
		done
		if running "$pid"; then
			log "$name (pid $pid) ignored SIGTERM for ${secs}s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			for ((i = 0; i < 50; i++)); do
				running "$pid" || break
				sleep 0.1
			done
		fi
	fi
	wait "$pid" 2>/dev/null || true
}

# free_port [LOW [COUNT]]: a TCP port nothing listens on, picked at random from
# LOW..LOW+COUNT-1 (default 20000-31999, clear of Kubernetes', etcd's and the
# registry's defaults); never one handed out before in this shell. Others may race
# for it: the caller's process then fails to bind and the lane says so.
free_port() {
	local low="${1:-20000}" count="${2:-12000}" p used
	used=$(ss -Htan | awk '{n = split($4, a, ":"); print a[n]}' | sort -u)
	for ((;;)); do
		p=$((low + RANDOM % count))
		grep -qx "$p" <<<"$used" && continue
		[[ " ${taken_ports:-} " == *" $p "* ]] && continue
		taken_ports="${taken_ports:-} $p"
		echo "$p"
		return
	done
}
