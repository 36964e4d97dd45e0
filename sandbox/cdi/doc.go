// Package cdi resolves Container Device Interface devices
// (tags.cncf.io/container-device-interface) for a container: the CRI's
// ContainerConfig.CDI_devices and the cdi.k8s.io/ annotations kubelet's
// device plugins set. Names are fully qualified (vendor.com/class=name);
// a malformed one is InvalidArgument. Each request rescans the spec
// directories (no watcher goroutine: CDI is rare and the scan cheap), and a
// device no spec declares is NotFound. The specs' edits (device nodes with
// their cgroup rules, mounts, environment, hooks) are applied to the
// container's finished OCI spec.
package cdi
