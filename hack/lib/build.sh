# Building what the lanes run: berthd and its helpers per checkout (into
# $repo/_output/bin), crictl and critest once per cri-tools version into the
# machine-wide cache. Needs $repo. Sourced, not run.
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

# ensure_crictl DIR, ensure_critest DIR: the path of crictl-<version> (critest-<version>)
# in DIR, built there if missing.
ensure_crictl() { ensure_cri_tool "$1" crictl; }
ensure_critest() { ensure_cri_tool "$1" critest; }

# ensure_cri_tool DIR TOOL: ensure_crictl and ensure_critest. critest is built as
# cri-tools builds it, with go test -c: its specs are Go tests.
ensure_cri_tool() {
	local dir="$1" tool="$2" v out
	v=$(cri_tools_version) || return 1
	out="$dir/$tool-$v"
	if [ ! -x "$out" ]; then
		log "building $tool $v"
		mkdir -p "$dir"
		case "$tool" in
		crictl) build "$out" sigs.k8s.io/cri-tools/cmd/crictl "$repo/hack/tools" ;;
		critest)
			(cd "$repo/hack/tools" && go test -c -o "$out.tmp.$$" sigs.k8s.io/cri-tools/cmd/critest) &&
				mv -f "$out.tmp.$$" "$out"
			;;
		esac >&2 || return 1
	fi
	echo "$out"
}
