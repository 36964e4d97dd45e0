// Package cgroups owns berth's view of Linux control groups for pods: which cgroup
// version and layout the node has (Mode, DetectMode), how kubelet's cgroup_parent and a
// container id become cgroup paths and an OCI linux.cgroupsPath for the cgroupfs and
// systemd drivers (ContainerNames, PodPath, SliceName, ExpandSlice), the Resources type with its
// conversions from the CRI and to the OCI runtime spec, and the life of a pod cgroup
// under the cgroupfs driver (Manager.Create, PodCgroup.Update, PodCgroup.Remove) on
// cgroup v1, hybrid and v2 through github.com/containerd/cgroups/v3. One reader of a
// cgroup's usage and limits (Manager.Sample, sample.go) serves both the CRI stats
// (PodCgroup.Stats, Manager.ContainerStats) and the cAdvisor-style metrics.
//
// It does not place processes in cgroups (the OCI runtime does that from the spec),
// never kills anything, and never removes a cgroup it did not create. With the systemd
// driver, systemd creates the cgroups on runc's request; berth only computes names and
// reads statistics.
package cgroups
