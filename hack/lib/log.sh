# log and die for the hack scripts: one line on stderr, prefixed with
# $log_prefix (default: the script's file name). Sourced, not run.
# shellcheck shell=bash

log() { printf '%s: %s\n' "${log_prefix:-${0##*/}}" "$*" >&2; }
die() { log "$*"; exit 1; }

# save_artifacts FROM TO NAME...: copies each file NAME that exists in FROM into TO
# (a run's logs outlive its run directory).
save_artifacts() {
	local from="$1" to="$2" f
	shift 2
	for f in "$@"; do
		[ -f "$from/$f" ] && cp -f "$from/$f" "$to/$f"
	done
	return 0
}
