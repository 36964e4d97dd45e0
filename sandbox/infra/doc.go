// Package infra runs a pod's infra process: berth's pause (sandbox/pause), started
// through the pod's OCI runtime handler from a spec made here (Spec), for pods whose
// containers share one PID namespace. Pause is that namespace's PID 1: it holds the
// namespace and reaps the zombies containers leave.
//
// # Tracking the process
//
// Start returns the pause's pid and the start time the kernel gives it (field 22 of
// /proc/<pid>/stat), which the pod record keeps: together they name the process even
// after a berthd restart, when a pid alone may have been reused. A Process holds a
// pidfd on it, so that Alive is one poll(2) with a zero timeout (no /proc read, no
// runtime exec: PodSandboxStatus and ListPodSandbox call it) and Stop signals exactly
// that process.
//
// # Reaping
//
// `runc run --detach` leaves pause an orphan. berthd makes itself a child subreaper
// (cmd/berthd), so pause becomes berthd's child and Stop reaps it (wait4 on its pid only:
// berthd never waits for "any child", which would steal the exit status of the processes
// os/exec waits for). A pause inherited from an earlier berthd is the child of the node's
// init, which reaps it.
package infra
