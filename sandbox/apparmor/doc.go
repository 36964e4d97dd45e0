// Package apparmor decides the AppArmor profile of a container's process
// (process.apparmorProfile in the OCI spec, which runc applies at exec).
//
// The node decides what is possible. Without AppArmor in the kernel, a named
// (Localhost) profile is refused with FailedPrecondition: the container would
// otherwise run unconfined against its owner's wish; RuntimeDefault and
// Unconfined need nothing. With AppArmor, RuntimeDefault (and no request at
// all, as containerd and CRI-O do) is berth's default profile, generated and
// loaded once by github.com/moby/profiles/apparmor (Docker's default profile
// under berth's name); a Localhost profile must already be loaded on the node
// (kubelet's contract), and a missing one is FailedPrecondition rather than a
// runc failure at start. When the default cannot be loaded (no apparmor_parser),
// an explicit RuntimeDefault fails and no request runs unconfined, as before. Privileged containers without a request run
// unconfined. The host is behind the Host interface so that the
// AppArmor-enabled branch is unit-tested on nodes without AppArmor.
package apparmor
