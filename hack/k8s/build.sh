#!/usr/bin/env bash
# Builds the Kubernetes binaries the kubelet, cluster and node-conformance lanes
# run, from the Go module proxy, at the versions hack/k8s/go.mod pins, into the
# machine-wide cache hack/.cache/k8s/<version>/bin:
#
#   kubelet kube-apiserver kube-controller-manager kube-scheduler kube-proxy
#   kubectl etcd agnhost ginkgo e2e_node.test
#
#   hack/k8s/build.sh              build whatever is missing (all of them)
#   hack/k8s/build.sh kubelet etcd build only these (when missing)
#   hack/k8s/build.sh --bin-dir    print the bin directory and exit
#
# A cold build of everything takes ~20-40 minutes on 2 busy cores and fills a
# ~4 GB Go build cache; with the cache warm each binary takes about a minute.
# Every binary is built into a temporary name beside its final one and renamed
# into place, so a concurrent reader sees either no file or a whole binary; a
# lock serialises concurrent builders (the second finds the work done).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export PATH="/usr/local/go/bin:$PATH"

version=$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' "$here/go.mod")
etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2; exit}' "$here/go.mod")
if [ -z "$version" ] || [ -z "$etcd_version" ]; then
	echo "k8s/build.sh: hack/k8s/go.mod pins no k8s.io/kubernetes or etcd server" >&2
	exit 1
fi
bin="$repo/hack/.cache/k8s/$version/bin"
if [ "${1:-}" = "--bin-dir" ]; then
	echo "$bin"
	exit 0
fi

all=(kubelet kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl etcd agnhost ginkgo e2e_node.test)
want=("$@")
[ ${#want[@]} -gt 0 ] || want=("${all[@]}")

# package NAME: the Go package that builds NAME.
package() {
	case "$1" in
	etcd) echo go.etcd.io/etcd/server/v3 ;;
	agnhost) echo k8s.io/kubernetes/test/images/agnhost ;;
	ginkgo) echo github.com/onsi/ginkgo/v2/ginkgo ;;
	e2e_node.test) echo k8s.io/kubernetes/test/e2e_node ;;
	kube*) echo "k8s.io/kubernetes/cmd/$1" ;;
	*) return 1 ;;
	esac
}

missing() {
	local name
	for name in "${want[@]}"; do
		[ -x "$bin/$name" ] || echo "$name"
	done
}

for name in "${want[@]}"; do
	if ! package "$name" >/dev/null; then
		echo "k8s/build.sh: unknown binary $name (one of: ${all[*]})" >&2
		exit 2
	fi
done
[ -n "$(missing)" ] || exit 0

mkdir -p "$bin"
exec 9>"$bin/.build.lock"
flock 9
mapfile -t todo < <(missing)
[ ${#todo[@]} -gt 0 ] || exit 0

# What `kubectl version`, the node object and the apiserver report: the values
# Kubernetes' own build stamps in (hack/lib/version.sh), else v0.0.0-master.
minor=${version#v1.}
minor=${minor%%.*}
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	stamp+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	stamp+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
etcd_stamp="-X go.etcd.io/etcd/api/v3/version.GitSHA=${etcd_version}"

tmp=$(mktemp -d "$bin/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$here"
export CGO_ENABLED=0
start=$(date +%s)
mains=()
for name in "${todo[@]}"; do
	case "$name" in
	e2e_node.test | etcd) ;;
	*) mains+=("$(package "$name")") ;;
	esac
done
if [ ${#mains[@]} -gt 0 ]; then
	echo "k8s/build.sh: building ${mains[*]##*/} ($version)" >&2
	nice go build -trimpath -ldflags "-s -w$stamp" -o "$tmp/" "${mains[@]}"
fi
for name in "${todo[@]}"; do
	case "$name" in
	etcd)
		echo "k8s/build.sh: building etcd $etcd_version" >&2
		nice go build -trimpath -ldflags "-s -w $etcd_stamp" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
		;;
	e2e_node.test)
		echo "k8s/build.sh: building e2e_node.test ($version)" >&2
		nice go test -c -trimpath -ldflags "-s -w$stamp" -o "$tmp/e2e_node.test" k8s.io/kubernetes/test/e2e_node
		;;
	esac
done
for name in "${todo[@]}"; do
	mv -f "$tmp/$name" "$bin/$name"
done
echo "k8s/build.sh: built ${todo[*]} into $bin in $(($(date +%s) - start))s" >&2
