# Building what the lanes run: berthd and its helpers per checkout (into
# $repo/_output/bin), crictl once per cri-tools version into the machine-wide
# cache. Needs $repo. Sourced, not run.
# shellcheck shell=bash

# build OUT PKG [DIR]: go build PKG (in DIR, default $repo) into OUT atomically:
# other checkouts sharing the cache may build the same file at the same time.
build() {
	local out="$1" pkg="$2" dir="${3:-$repo}"
	mkdir -p "$(dirname "$out")"
	(cd "$dir" && go build -o "$out.tmp.$$" "$pkg") && mv -f "$out.tmp.$$" "$out"
}

# build_monitor DIR: berth-monitor into DIR (berthd finds it next to itself),
# static and stripped: one runs per container, and without libc it needs one
# thread and ~120 kB less each.
build_monitor() {
	local out="$1/berth-monitor"
	(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out.tmp.$$" ./cmd/berth-monitor) &&
		mv -f "$out.tmp.$$" "$out"
}

# cri_tools_version: the sigs.k8s.io/cri-tools version hack/tools/go.mod pins.
cri_tools_version() {
	local v
	v=$(awk '{for (i = 1; i < NF; i++) if ($i == "sigs.k8s.io/cri-tools") {print $(i + 1); exit}}' "$repo/hack/tools/go.mod")
	[ -n "$v" ] || die "no sigs.k8s.io/cri-tools requirement in hack/tools/go.mod"
	echo "$v"
}

# ensure_crictl DIR: the path of crictl-<version> in DIR, built there if missing.
ensure_crictl() {
	local v out
	v=$(cri_tools_version) || return 1
	out="$1/crictl-$v"
	if [ ! -x "$out" ]; then
		log "building crictl $v"
		build "$out" sigs.k8s.io/cri-tools/cmd/crictl "$repo/hack/tools" >&2 || return 1
	fi
	echo "$out"
}
