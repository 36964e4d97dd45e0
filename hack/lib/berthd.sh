# A lane's private berthd: its config (every image through the loopback
# registry), waiting until it serves, and removing the pods a run left. Sourced,
# not run; needs log/die and running.
# shellcheck shell=bash

# write_berth_toml FILE REGISTRY CONF_DIR: berthd's config for a lane. Every
# registry the suites pull from is mirrored by the loopback test registry, and
# mirrors_only keeps any pull from reaching a real one. Callers append their own
# sections.
write_berth_toml() {
	local file="$1" registry="$2" conf_dir="$3"
	cat >"$file" <<EOF2
# Written by ${0##*/}: no pull ever reaches a real registry.
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
conf_dir = "$conf_dir"
EOF2
}

# berthd_args RUN [LEVEL]: the arguments of a lane's berthd, everything under the
# run directory RUN (config RUN/berth.toml, socket RUN/berth.sock), logging at
# LEVEL (default info).
berthd_args() {
	local run="$1" level="${2:-info}"
	printf '%s\n' --config "$run/berth.toml" --config-dir "$run/berth.d" \
		--root "$run/root" --state "$run/state" --listen "unix://$run/berth.sock" --log-level "$level"
}

# wait_berthd PID CRICTL SOCK LOG [SECONDS]: until berthd answers crictl version
# on SOCK; dies with the end of LOG when it exits first or does not answer in
# SECONDS (default 30).
wait_berthd() {
	local pid="$1" crictl="$2" sock="$3" berthd_log="$4" secs="${5:-30}" i
	for ((i = 0; ; i++)); do
		"$crictl" --runtime-endpoint "unix://$sock" --timeout 2s version >/dev/null 2>&1 && break
		running "$pid" || { tail -n 60 "$berthd_log" >&2; die "berthd exited"; }
		((i < secs * 10)) || { tail -n 60 "$berthd_log" >&2; die "berthd not answering on $sock after ${secs}s"; }
		sleep 0.1
	done
	log "berthd (pid $pid) serving on $sock"
}

# remove_pods PID CRICTL SOCK [TIMEOUT]: removes every pod left on the lane's
# berthd, through berthd, so that no pause, namespace or cgroup outlives the run
# (berthd's stop leaves pods running, as it must). Fails if some stay.
remove_pods() {
	local pid="$1" crictl="$2" sock="$3" timeout="${4:-60s}" n
	running "$pid" && [ -S "$sock" ] || return 0
	n=$("$crictl" --runtime-endpoint "unix://$sock" --timeout 10s pods -q 2>/dev/null | wc -l)
	[ "$n" -gt 0 ] || return 0
	log "removing the $n pod(s) left"
	"$crictl" --runtime-endpoint "unix://$sock" --timeout "$timeout" rmp --all --force >/dev/null 2>&1 && return 0
	log "could not remove every pod left"
	return 1
}

# stop_berthd PID CRICTL SOCK: removes the pods left on the lane's berthd, then stops it.
stop_berthd() {
	remove_pods "$1" "$2" "$3"
	stop_pid "$1" berthd
}
