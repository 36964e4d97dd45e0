#!/usr/bin/env bash
# The whole critest inside the VM lane's guest (cgroup v2, cgroup_driver = "systemd",
# or VM_LANE_DRIVER), checked against hack/critest-pass.txt, then berth's cgroup
# checks. On demand only: under TCG it takes hours. Results: _output/vm/critest-full.
set -euo pipefail
cd "$(dirname "$0")/../.."
export VM_LANE_FOCUS=""
export VM_TIMEOUT="${VM_TIMEOUT:-14400}"
export VM_OUT="${VM_OUT:-$(pwd)/_output/vm/critest-full}"
exec hack/vm/lane.sh
