# Sources every helper of hack/lib and sets $repo (the checkout) and PATH (Go).
# Each helper file has one job; see its header. Sourced, not run.
# shellcheck shell=bash
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PATH="/usr/local/go/bin:$PATH"
for _f in log proc build registry cni berthd host; do
	# shellcheck disable=SC1090
	source "$repo/hack/lib/$_f.sh"
done
unset _f
