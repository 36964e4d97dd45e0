//go:build tools

// Package k8s pins the Kubernetes release whose binaries hack/k8s/build.sh builds
// (kubelet, the control plane, kube-proxy, kubectl, etcd, agnhost, ginkgo and the
// node e2e suite). It is a module of its own so that k8s.io/kubernetes and its
// dependency graph never leak into berth's go.mod; k8s.io/kubernetes replaces its
// staging modules with local paths, so go.mod here points each one at its
// published k8s.io/X v0.x release instead.
package k8s

import (
	_ "github.com/onsi/ginkgo/v2/ginkgo"
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/test/images/agnhost"
)
