//go:build tools

// Package tools pins the versions of crictl and critest (sigs.k8s.io/cri-tools) that
// hack/critest.sh builds. It is a module of its own so that cri-tools' dependency graph
// never leaks into berth's go.mod.
package tools

import (
	_ "sigs.k8s.io/cri-tools/cmd/crictl"
	_ "sigs.k8s.io/cri-tools/cmd/critest"
)
