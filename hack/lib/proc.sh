# Processes a lane started: whether one still runs, stopping one, and finding
# what a run left behind under its own run directory. Only ever given PIDs the
# caller started itself or found under its run directory (never looked up by
# name). Sourced, not run; needs log.
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

# processes_under DIR: pids whose command line or working directory is under DIR
# (the shims, monitors and runc processes of a run; containerd's shims run in their
# bundle directory under the run's state). One grep and one find over /proc, not a
# few processes per pid: the machine may have thousands. grep reads the pattern
# from a pipe, so that its own command line does not match.
processes_under() {
	{
		# shellcheck disable=SC2062 # the glob names the files; the pattern is on stdin
		printf '%s/\n' "$1" | grep -lsF -f - /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3
		find /proc -mindepth 2 -maxdepth 2 -name cwd -lname "$1/*" 2>/dev/null | cut -d/ -f3
	} | sort -un
}

# delete_runc_containers RUNC ROOT...: runc delete --force of every container in
# each runc root directory ROOT that exists (what a runtime could not remove).
delete_runc_containers() {
	local runc="$1" r id
	shift
	for r in "$@"; do
		[ -d "$r" ] || continue
		for id in $("$runc" --root "$r" list -q 2>/dev/null); do
			log "leftover container $id: runc delete --force"
			"$runc" --root "$r" delete --force "$id" >/dev/null 2>&1 || log "cannot delete container $id"
		done
	done
	return 0
}

# trap_exit FUNC: FUNC runs when the script exits, also when SIGINT or SIGTERM
# ends it (exit status 130 or 143): a lane cleans up however it stops.
trap_exit() {
	# shellcheck disable=SC2064 # the function's name, expanded now on purpose
	trap "$1" EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}
