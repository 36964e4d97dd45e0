// Package nri serves the Node Resource Interface (github.com/containerd/nri): plugins
// connect to its socket (or are launched from the plugin directory), are synchronized
// with the pods and containers that exist, and are called at every pod and container
// lifecycle event. Adapter implements sandbox.NRI, which the pod service calls; the
// adjustments plugins make to a container being created are applied to its OCI spec
// here (AdjustSpec), and the updates they ask for are handed back to the pod service
// through Runtime.
//
// A plugin never holds a pod up for longer than the request timeout: one that does not
// answer in time is dropped and the request goes on without it (NRI's adaptation does
// that); one that answers with an error fails the request.
package nri
