// Command containers measures berth's containers on the path the CRI container calls
// take, next to the floor any runtime pays on this node: a raw `runc run --detach` of
// the very bundle berth generated, measured in the same run.
//
//	go run ./hack/bench/containers [-n 50] [-shared-pid] [-debug]
//
// It runs from the repository root (it builds ./cmd/berth-monitor into its run
// directory), as root, with runc and the CNI plugins in /usr/lib/cni. Numbers are
// server-side: sandbox.Service is driven in-process, no gRPC.
//
// Each of the n slots is one pod with one busybox `sleep 1000` container (one pod per
// container). By default the pods ask for a PID namespace per container, as kubelet
// does by default, so that they have no pause process; with -shared-pid they share
// one, and each pod has a pause. The run has four phases:
//
//  1. up, per slot (the pod is made first, not timed):
//
//     create            CreateContainer: image lease, overlay rootfs, spec, record.
//     start             StartContainer: the monitor is launched and runs the bundle
//     (`runc run --detach`), the record is written.
//     create+start      the sum of the two, per slot; its ratio is to raw runc run.
//     container status  ContainerStatus (not verbose), from memory.
//     list containers   ListContainers with no filter, of the 1..n containers up so far.
//     raw overlay mount an overlay of the same busybox snapshots (rootfs.Mount).
//     raw runc run --detach
//     berth's config.json of that container, copied as is but for root.path (the
//     raw overlay) and cgroupsPath (/berth-bench-ctr/raw-<i>), run by runc exec'd
//     directly with its --root in the run directory: it joins the same pinned pod
//     namespaces and has the same mounts, capabilities, seccomp and masked paths.
//     raw runc kill+delete
//     runc kill KILL, the wait for its init, runc delete.
//
//  2. memory, with all n containers running: RSS and PSS from
//     /proc/<pid>/smaps_rollup of each berth-monitor (the monitorPid of the verbose
//     ContainerStatus) and pause (the pid of the verbose PodStatus), also measured
//     after the first slot, when one was running. PSS splits the pages shared with the
//     other monitors (the text of the Go binary), so it falls as monitors are added.
//     Per pod is the monitor plus its pause if any.
//
//  3. down, per slot (the pod goes last, not timed):
//
//     stop (SIGTERM exits, timeout 10)
//     StopContainer of a second container in the pod, a shell that exits on
//     SIGTERM (made and started untimed; timed once its trap is set).
//     stop (timeout 0)  StopContainer of the sleep: SIGKILL, wait for the exit
//     record; its ratio is to raw runc kill+delete.
//     remove (stopped)  RemoveContainer of the stopped sleep: runtime delete,
//     rootfs unmount, directories, record, lease.
//
//  4. critest's shape, n samples (after a warm-up one), whatever -shared-pid says:
//     what critest's container benchmark does per sample, in a pod of its own that
//     shares its PID namespace (so its pause runs) with a busybox `top`:
//
//     critest shape: stop (timeout 60)
//     StopContainer: top dies of the SIGTERM (it is not the namespace's init).
//     critest shape: remove
//     RemoveContainer of it. critest measured 121 ms here when berth deleted
//     the runtime's container at remove with `runc delete --force`, in which
//     runc (since 1.2) sleeps 100 ms; berth now deletes it, plainly, as the
//     exit is recorded, which StopContainer waits for.
//
// A warm-up slot goes up and down first and is not recorded. The network is the
// benchmark's own: a bridge bb<hex>, a /24 in 10.198.0.0/16, no masquerading. Records
// and writable layers go under a directory in /var/tmp (a real disk, for their
// fsyncs). busybox (registry.k8s.io/e2e-test-images/busybox:1.29-2) is pulled once
// into an image store in the run directory from an in-process loopback registry
// (hack/testimages), the only mirror. On exit, also on SIGINT or SIGTERM (the run
// stops between calls), it removes every raw container, container and pod, the bridge,
// the raw cgroups and the run directory, and puts net.ipv4.ip_forward back.
package main
