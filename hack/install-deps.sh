#!/usr/bin/env bash
# Installs what berthd and its tests need on a Debian/Ubuntu node, skipping what is
# there: the OCI runtimes, the CNI plugins, iptables, the tools that build the test
# busybox, a Go toolchain new enough for go.mod, and runc v1.5.2 built from
# source as /usr/local/sbin/runc (ahead of the distribution's runc in $PATH; Debian 12's
# 1.1.5 cannot do the idmapped mounts user-namespaced pods need). Idempotent; needs root.
#
#   hack/install-deps.sh          runtime + test dependencies
#   hack/install-deps.sh --run    only what berthd itself needs to run
#   hack/install-deps.sh --vm     also what the VM lane needs (hack/vm: qemu, mmdebstrap)
set -euo pipefail

# The runc berth installs as /usr/local/sbin/runc; the distribution's stays in /usr/sbin
# (the integration tests run once more with it). Building it needs cgo and libseccomp.
runc_version=v1.5.2
run_pkgs=(runc crun containernetworking-plugins iptables iproute2 ca-certificates
	gcc libc6-dev libseccomp-dev pkg-config)
test_pkgs=(make dpkg-dev git jq curl)

# The VM lane (hack/vm) boots a Debian guest it builds from apt.
vm_pkgs=(qemu-system-x86 mmdebstrap e2fsprogs cpio)

pkgs=("${run_pkgs[@]}")
[ "${1:-}" = "--run" ] || pkgs+=("${test_pkgs[@]}")
[ "${1:-}" = "--vm" ] && pkgs+=("${vm_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "install-deps: apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Go: go.mod wants 1.26. Use the machine's Go when it is new enough; a Go >= 1.21 fetches
# the right toolchain from the module proxy by itself (GOTOOLCHAIN).
want_go=$(awk '/^go /{print $2; exit}' "$(dirname "$0")/../go.mod")
export PATH="/usr/local/go/bin:$PATH"
if ! command -v go >/dev/null 2>&1; then
	echo "install-deps: no Go toolchain; installing Debian's golang-go to bootstrap go$want_go"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends golang-go >/dev/null
fi
have_go=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$want_go" "$have_go" | sort -V | head -1)" != "$want_go" ]; then
	echo "install-deps: Go $have_go is older than $want_go; using GOTOOLCHAIN=go$want_go"
	echo "install-deps: export GOTOOLCHAIN=go$want_go in your shell as well"
fi
# runc: built once per machine into the tool cache (hack/.cache, a link to
# /var/cache/berth-ci in CI), then copied to /usr/local/sbin when that copy differs.
# A lock keeps concurrent runs (several checkouts, one cache) from building it twice.
cache="$(cd "$(dirname "$0")" && pwd)/.cache/bin"
runc_cached="$cache/runc-$runc_version"
mkdir -p "$cache"
(
	flock 9
	if [ ! -x "$runc_cached" ]; then
		echo "install-deps: building runc $runc_version (go install -tags seccomp)"
		gobin=$(mktemp -d "$cache/.runc-build.XXXXXX")
		trap 'rm -rf "$gobin"' EXIT
		GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" GOBIN="$gobin" CGO_ENABLED=1 \
			go install -trimpath -tags seccomp "github.com/opencontainers/runc@$runc_version"
		mv -f "$gobin/runc" "$runc_cached"
	fi
) 9>"$cache/.runc.lock"
if ! cmp -s "$runc_cached" /usr/local/sbin/runc; then
	echo "install-deps: installing runc $runc_version as /usr/local/sbin/runc"
	install -D -m 0755 "$runc_cached" /usr/local/sbin/runc.tmp.$$
	mv -f /usr/local/sbin/runc.tmp.$$ /usr/local/sbin/runc
fi
echo "install-deps: ok ($(go version); $(/usr/local/sbin/runc --version | head -n 1) in /usr/local/sbin)"
