// Package nspin creates the namespaces a pod shares (network, IPC, UTS) and pins each one
// to a file with a bind mount, so the namespace lives as long as the file stays mounted and
// not as long as some process does.
//
// A pinned path is what the rest of berth hands around: CNI plugins get it as CNI_NETNS,
// the OCI runtime gets it as {"type": "network", "path": ...}, and Run enters it to open a
// socket inside the pod (port-forward, tests).
//
// # How a namespace is pinned
//
// Pin runs on a goroutine of its own, locked to its OS thread. The thread opens handles on
// its current namespaces, unshare(2)s into fresh ones, bind-mounts
// /proc/thread-self/ns/<kind> onto <dir>/<kind>, and setns(2)es back to the handles it
// opened. Only when every namespace was restored does the goroutine unlock its thread; if
// a restore fails the goroutine ends still locked, and the Go runtime then terminates that
// thread instead of reusing it. No other goroutine ever runs on a thread that sits in a
// pod's namespace, and no fork or helper process is needed (Pin costs well under a
// millisecond plus the kernel's namespace creation).
//
// A user-namespaced pod's namespaces come from PinUser instead: a user namespace must be
// created first and own the others, and a threaded process cannot unshare one, so a
// short-lived child of the same executable is cloned into all of them at once and its
// /proc/<pid>/ns files are pinned (see userns.go). Remove unpins the user namespace last.
//
// The mounts are made in the caller's mount namespace (berthd's, the host's). Unpin
// detaches them (MNT_DETACH) and removes the file; the kernel frees the namespace once
// the last process in it has exited too.
package nspin
