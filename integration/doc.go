// Package integration holds tests that start a real berthd (built from this tree, with a
// temporary root, state directory and socket) and drive it through the same
// k8s.io/cri-api client kubelet uses, with images served by the loopback test registry
// from hack/testimages. They need root, like berthd itself; as another user they skip.
package integration
