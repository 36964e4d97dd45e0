// Package network gives pods their network through CNI. For now it only answers whether
// the node can network pods at all (NetworkReady); the pod lifecycle comes with sandboxes.
package network
