#!/usr/bin/env bash
# Build a static busybox from Debian's busybox source package.
#
# Debian's busybox-static cannot be used for the CRI test images: its shell
# runs applets in-process (so masking /bin/ls has no effect) and it lacks
# applets critest needs (ipcs, pgrep, ...). This script fetches the source
# with apt (using a private, deb-src-only copy of the machine's own apt
# sources, so the machine's apt configuration and lists are left alone),
# configures upstream defaults plus CONFIG_STATIC and builds it.
#
# Output: hack/.cache/busybox/busybox (override the directory with
# BUSYBOX_CACHE_DIR). An existing, valid binary is reused. The path of the
# binary is printed as the last line of standard output.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${BUSYBOX_CACHE_DIR:-$repo/hack/.cache/busybox}"
out="$cache/busybox"
jobs="${BUSYBOX_JOBS:-$(nproc)}"

# Applets the test images rely on (critest specs and the image helpers).
required_applets=(
	sh ash ls cat echo sleep top ps id hostname ipcs pgrep pidof nc httpd wget
	nslookup touch mkdir mount grep seq sync chmod netstat ping brctl ip
	true false env tail head sed awk find kill date tee stat umount mknod
	adduser addgroup
)

log() { echo "busybox: $*" >&2; }

# valid_binary PATH: succeeds when PATH is a static busybox with every
# required applet.
valid_binary() {
	local bin="$1" list applet
	[[ -x "$bin" ]] || return 1
	if readelf -l "$bin" 2>/dev/null | grep -q 'Requesting program interpreter'; then
		return 1
	fi
	list="$("$bin" --list 2>/dev/null)" || return 1
	for applet in "${required_applets[@]}"; do
		grep -qx -- "$applet" <<<"$list" || { log "applet $applet missing in $bin"; return 1; }
	done
	# Applets must be run by exec, not in-process (MaskedPaths spec).
	# With an empty PATH the shell must not find ls.
	if env -i PATH=/nonexistent "$bin" sh -c 'ls /' >/dev/null 2>&1; then
		log "$bin runs applets in-process (FEATURE_SH_STANDALONE/PREFER_APPLETS)"
		return 1
	fi
	# Environment variables whose names are not shell identifiers reach the
	# shell's children, as in busybox >= 1.36 (Kubernetes' ConfigMap and Secret
	# envFrom specs print "data-1=..." through sh -c env).
	if ! env -i 'data-1=kept' "$bin" sh -c env 2>/dev/null | grep -qx 'data-1=kept'; then
		log "$bin's sh drops environment variables that are not shell identifiers"
		return 1
	fi
	return 0
}

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

if valid_binary "$out"; then
	log "using cached $out"
	echo "$out"
	exit 0
fi

start=$SECONDS
work="$(mktemp -d "$cache/work.XXXXXX")"
trap 'rc=$?; if [[ $rc != 0 && -n "${BUSYBOX_KEEP_WORK:-}" ]]; then log "kept $work"; else rm -rf "$work"; fi' EXIT

# --- private apt configuration: deb-src entries derived from the machine's.
aptdir="$work/apt"
mkdir -p "$aptdir/sources.list.d" "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
found=0
for f in /etc/apt/sources.list.d/*.sources; do
	[[ -e "$f" ]] || continue
	sed -E 's/^Types:.*/Types: deb-src/' "$f" >"$aptdir/sources.list.d/$(basename "$f")"
	found=1
done
if [[ -s /etc/apt/sources.list ]]; then
	sed -nE 's/^[[:space:]]*deb[[:space:]]+/deb-src /p' /etc/apt/sources.list >"$aptdir/sources.list"
	[[ -s "$aptdir/sources.list" ]] && found=1
fi
touch "$aptdir/sources.list"
if [[ $found = 0 ]]; then
	log "no apt sources found in /etc/apt"
	exit 1
fi

apt_opts=(
	-o "Dir::Etc::SourceList=$aptdir/sources.list"
	-o "Dir::Etc::SourceParts=$aptdir/sources.list.d"
	-o "Dir::State::Lists=$aptdir/lists"
	-o "Dir::Cache=$aptdir/cache"
	-o "Dir::Cache::pkgcache="
	-o "Dir::Cache::srcpkgcache="
	-o "APT::Sandbox::User=root"
	-o "Debug::NoLocking=1"
)
log "apt-get update (private deb-src lists)"
apt-get "${apt_opts[@]}" -q update >"$work/apt-update.log" 2>&1 || {
	cat "$work/apt-update.log" >&2
	exit 1
}
# Signature problems make apt-get update warn instead of fail; refuse them.
if grep -qE '^(W|E): .*(NO_PUBKEY|not signed|signature|Signed-By)' "$work/apt-update.log"; then
	cat "$work/apt-update.log" >&2
	log "apt signature verification failed"
	exit 1
fi

log "apt-get source busybox"
(cd "$work" && apt-get "${apt_opts[@]}" -q source busybox) >"$work/apt-source.log" 2>&1 || {
	cat "$work/apt-source.log" >&2
	exit 1
}
src="$(find "$work" -maxdepth 1 -type d -name 'busybox-*' | head -n1)"
[[ -n "$src" ]] || { log "no unpacked source in $work"; exit 1; }
log "source: $(basename "$src")"

# --- configure: upstream defaults, static, applets executed from PATH.
build="$work/build"
mkdir -p "$build"
make -C "$src" O="$build" -s defconfig >"$work/config.log" 2>&1
set_opt() { # set_opt NAME y|n
	local name="CONFIG_$1" val="$2" cfg="$build/.config"
	sed -i -E "/^(# )?$name( is not set|=).*/d" "$cfg"
	if [[ $val = n ]]; then
		echo "# $name is not set" >>"$cfg"
	else
		echo "$name=$val" >>"$cfg"
	fi
}
set_opt STATIC y
set_opt PIE n
set_opt FEATURE_PREFER_APPLETS n
set_opt FEATURE_SH_STANDALONE n
set_opt FEATURE_SH_NOFORK n
# Debian's 1.35 filters environment variables whose names are not shell
# identifiers out of sh's environment unless this option is on; with it, sh
# passes them on to its children as upstream busybox does since 1.36.
set_opt FEATURE_DI_ENV_HACK y
# Not buildable against glibc (Sun RPC was removed from glibc).
set_opt FEATURE_INETD_RPC n
# tc needs kernel headers for qdiscs that newer kernels removed.
set_opt TC n
{ yes '' || true; } | make -C "$src" O="$build" oldconfig >>"$work/config.log" 2>&1

log "make -j$jobs"
if ! make -C "$src" O="$build" -j"$jobs" busybox >"$work/make.log" 2>&1; then
	tail -n 60 "$work/make.log" >&2
	exit 1
fi

bin="$build/busybox"
if ! valid_binary "$bin"; then
	log "built binary failed validation"
	exit 1
fi
cp "$build/.config" "$cache/busybox.config"
basename "$src" >"$cache/busybox.source"
install -m 0755 "$bin" "$out.tmp"
mv -f "$out.tmp" "$out"
log "built $out in $((SECONDS - start))s"
echo "$out"
