# What a lane changes on the host and puts back: mounts under its run directory,
# cgroups it made, sysctls kubelet or kube-proxy rewrite. Sourced, not run; needs
# log.
# shellcheck shell=bash

# mounts_under DIR: the mount points at and below DIR, deepest first (kubelet
# bind-mounts its root dir onto itself to make it shared).
mounts_under() {
	awk -v d="$1" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r
}

# unmount_under DIR: unmounts everything mounted at and below DIR, deepest first.
# Fails (after trying all) if a mount stays.
unmount_under() {
	local m rc=0
	for m in $(mounts_under "$1"); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || { log "cannot unmount $m"; rc=1; }
	done
	return "$rc"
}

# cgroup_mounts: the mount point of every cgroup hierarchy (v1 and v2).
cgroup_mounts() {
	awk '{for (i = 7; i < NF; i++) if ($i == "-") break; if ($(i + 1) ~ /^cgroup2?$/) print $5}' \
		/proc/self/mountinfo | sort -u
}

# make_cgroup_root NAME: the cgroup /NAME in every hierarchy (kubelet's cgroupRoot
# must exist); cpuset gets its parent's CPUs and memory nodes, which a new v1
# cpuset cgroup lacks.
make_cgroup_root() {
	local m f
	for m in $(cgroup_mounts); do
		mkdir "$m/$1"
		for f in cpuset.cpus cpuset.mems; do
			[ -f "$m/$f" ] && cat "$m/$f" >"$m/$1/$f"
		done
	done
	return 0
}

# remove_cgroup_tree DIR: removes the cgroup DIR and every cgroup below it,
# deepest first. Processes still in it are reported, never moved. Fails if it stays.
remove_cgroup_tree() {
	[ -d "$1" ] || return 0
	find "$1" -depth -type d -exec rmdir {} \; 2>/dev/null
	[ -d "$1" ] || return 0
	log "cannot remove cgroup $1: $(find "$1" -name cgroup.procs -exec cat {} + 2>/dev/null | tr '\n' ' ')"
	return 1
}

# remove_cgroup_root NAME: remove_cgroup_tree of /NAME in every hierarchy.
remove_cgroup_root() {
	local m rc=0
	[ -n "${1:-}" ] || return 0
	for m in $(cgroup_mounts); do
		remove_cgroup_tree "$m/$1" || rc=1
	done
	return "$rc"
}

# berth's default cgroup parent (/berth), which pods naming none go under and the
# OCI runtime leaves behind: a lane removes it afterwards (when empty) unless it
# was there before. berth_parents [NAME...] lists those there now, one a line:
# /berth, or each /NAME (another runtime's default parent, say containerd's
# k8s.io), in every hierarchy.
berth_parents() {
	local n
	# ls fails when one of its paths is missing (under errexit, that would end a
	# caller that does not run this in a subshell).
	for n in "${@:-berth}"; do
		ls -d /sys/fs/cgroup/*/"$n" /sys/fs/cgroup/"$n" 2>/dev/null || true
	done
}

# remove_berth_parents BEFORE [NAME...]: removes each parent berth_parents [NAME...]
# lists now but not in BEFORE (what it said before the run).
remove_berth_parents() {
	local before="$1" d
	shift
	for d in $(berth_parents "$@"); do
		[[ $'\n'"$before"$'\n' == *$'\n'"$d"$'\n'* ]] && continue
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || log "cannot remove cgroup $d"
	done
	return 0
}

# The host sysctls kubelet's container manager rewrites (setupKernelTunables).
kubelet_sysctls=(
	vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
	kernel/keys/root_maxkeys kernel/keys/root_maxbytes
)
# Those and what kube-proxy and the pod network may rewrite: the cluster lanes
# record them first and write back each one that changed.
tracked_sysctls=(
	"${kubelet_sysctls[@]}"
	net/ipv4/ip_forward net/ipv4/conf/all/route_localnet
	net/bridge/bridge-nf-call-iptables net/netfilter/nf_conntrack_max
	net/netfilter/nf_conntrack_tcp_timeout_established
	net/netfilter/nf_conntrack_tcp_timeout_close_wait
)

# record_sysctls [SYSCTL...]: "path=value" per line for every SYSCTL (default:
# tracked_sysctls) that exists.
record_sysctls() {
	local s
	[ $# -gt 0 ] || set -- "${tracked_sysctls[@]}"
	for s in "$@"; do
		[ -r "/proc/sys/$s" ] && printf '%s=%s\n' "$s" "$(cat "/proc/sys/$s")"
	done
	return 0
}

# kubelet_sets SYSCTL: succeeds, printing it, when kubelet's container manager writes
# a value of its own to SYSCTL (setupKernelTunables).
kubelet_sets() {
	case "$1" in
	vm/overcommit_memory) echo 1 ;;
	kernel/panic) echo 10 ;;
	kernel/panic_on_oops) echo 1 ;;
	kernel/keys/root_maxkeys) echo 1000000 ;;
	kernel/keys/root_maxbytes) echo 25000000 ;;
	*) return 1 ;;
	esac
}

# polluted SYSCTL VALUE: VALUE, recorded before the run, is what kubelet writes to
# SYSCTL: another lane's kubelet ran then, and the node's own value is not known.
# Writing it back would undo that lane's restore (the node would keep kubelet's value).
polluted() { [ "$(kubelet_sets "$1")" = "$2" ]; }

# restore_sysctls FILE: write back each recorded value that differs now, except the
# polluted ones (said so).
restore_sysctls() {
	local line s v
	[ -f "$1" ] || return 0
	while IFS= read -r line; do
		s=${line%%=*} v=${line#*=}
		[ "$(cat "/proc/sys/$s" 2>/dev/null)" = "$v" ] && continue
		if polluted "$s" "$v"; then
			log "not restoring sysctl ${s//\//.} = $v: that is kubelet's own value (another kubelet ran when it was recorded)"
			continue
		fi
		log "restoring sysctl ${s//\//.} = $v"
		echo "$v" >"/proc/sys/$s" || log "cannot restore $s"
	done <"$1"
	return 0
}

# remove_tree DIR: rm -rf of DIR, unless a mount is left at or below it: a bind
# mount of the same file system would lead rm (even --one-file-system) through it.
remove_tree() {
	[ -e "$1" ] || return 0
	if [ -n "$(mounts_under "$1")" ]; then
		log "$1 still has mounts; left for a look"
		return 1
	fi
	rm -rf --one-file-system "$1"
}

# remove_kubelet_device_dir: removes /var/lib/kubelet/device-plugins (kubelet's
# device manager makes it, with its socket and checkpoint, whatever kubelet's root
# dir) and /var/lib/kubelet, for a lane that found no /var/lib/kubelet. Fails,
# removing nothing more, when anything else is in them.
remove_kubelet_device_dir() {
	local d=/var/lib/kubelet/device-plugins
	rm -f "$d/kubelet.sock" "$d/kubelet_internal_checkpoint"
	rmdir "$d" /var/lib/kubelet 2>/dev/null
}
