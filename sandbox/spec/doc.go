// Package spec builds a container's OCI runtime spec from small, separately
// tested options. It is pure: no option does I/O, except ResolveUser-style
// helpers that read files under a given rootfs.
//
// Build starts from a minimal Linux base (ociVersion 1.0.2, which crun 1.8
// still accepts; the standard /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue,
// read-only /sys and cgroup mounts; containerd's default capabilities, masked
// and read-only paths; no_new_privs) and applies each Opt in order. A later
// option may override what an earlier one set, so callers compose in this
// order:
//
//  1. process: WithProcessArgs (owns process.args), WithEnv (process.env),
//     WithWorkingDir (process.cwd), WithTTY (process.terminal),
//     WithOOMScoreAdj (process.oomScoreAdj), WithHostname (hostname);
//  2. security options (capabilities, privileged, paths, seccomp), each of
//     which owns the field it names;
//  3. namespaces, resources and mounts.
//
// Errors caused by bad input wrap errdefs.ErrInvalidArgument.
package spec
