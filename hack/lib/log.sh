# log and die for the hack scripts: one line on stderr, prefixed with
# $log_prefix (default: the script's file name). Sourced, not run.
# shellcheck shell=bash

log() { printf '%s: %s\n' "${log_prefix:-${0##*/}}" "$*" >&2; }
die() { log "$*"; exit 1; }
