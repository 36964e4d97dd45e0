// Package spec builds a container's OCI runtime spec from small, separately
// tested options. Nothing calls it yet; it is the groundwork for
// CreateContainer.
//
// Everything here is pure except ResolveUser, which reads /etc/passwd and
// /etc/group under a given rootfs with openat2(RESOLVE_IN_ROOT), and the
// Localhost branch of WithSeccomp, which reads the named profile. Device
// nodes are stat'd by the caller and passed in as DeviceNode.
//
// Build starts from a minimal Linux base: ociVersion 1.0.2 (crun 1.8
// rejects 1.3.0); the standard /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue,
// read-only /sys and cgroup mounts; containerd's default capabilities,
// masked and read-only paths; no_new_privs; fresh PID, IPC, UTS, mount and
// network namespaces. It then applies each Opt in order. An option owns the
// fields it names and may overwrite what an earlier option set there, so
// callers compose in this order:
//
//  1. process: WithProcessArgs (process.args), WithEnv (process.env),
//     WithWorkingDir (process.cwd), WithTTY (process.terminal),
//     WithOOMScoreAdj (process.oomScoreAdj), WithUser(ResolveUser(...))
//     (process.user), WithHostname (hostname);
//  2. paths: WithMaskedPaths, WithReadonlyPaths (linux.maskedPaths and
//     readonlyPaths; nil keeps the defaults), WithReadonlyRootfs (root);
//  3. WithCapabilities (process.capabilities), then WithPrivileged when
//     asked, which must come after 2 and 3 because it clears the paths,
//     grants every capability and makes /sys writable, then
//     WithAmbientCapabilities (adds to every set, ambient and inheritable too);
//  4. WithSeccomp (linux.seccomp), after 3, because moby's default profile
//     allows some syscalls only when the bounding set holds a capability;
//  5. WithNamespaces (network, IPC, UTS and PID entries of
//     linux.namespaces), WithCgroupsPath (linux.cgroupsPath);
//  6. WithDevices (linux.devices and linux.resources.devices), then
//     WithResources (the rest of linux.resources; it keeps device rules);
//  7. WithMounts (the CRI's bind mounts with their mount_options, replacing a
//     base mount at the same destination, and linux.rootfsPropagation; those
//     with uid/gid mappings become idmapped mounts);
//  8. WithAppArmorProfile (process.apparmorProfile; sandbox/apparmor picks it).
//
// WithUserNamespace (the user entry of linux.namespaces: a user-namespaced
// pod's pinned namespace, whose maps the runtime reads) goes with 5.
//
// Errors caused by bad input wrap errdefs.ErrInvalidArgument; image volumes,
// which the caller turns into bind mounts first, wrap errdefs.ErrUnimplemented.
package spec
