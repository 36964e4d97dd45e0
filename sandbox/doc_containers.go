package sandbox

// # Containers
//
// CreateContainer, StartContainer, StopContainer, RemoveContainer, ContainerStatus,
// ListContainers, UpdateContainerResources, ReopenContainerLog, ExecSync and the stats
// live in this package beside the pods: a container needs its pod's namespaces, files,
// cgroup parent and handler, and a pod's Stop and Remove must reach its containers.
// The pure parts are sub-packages: spec (the OCI spec options), rootfs (overlay
// mounts), monitor (the per-container monitor and its client), runtime (the OCI
// runtime driver).
//
// # States
//
//	CreateContainer ── a step fails ──▶ undo, last step first ──▶ (gone)
//	      │ spawn the monitor, lease image, mount rootfs, write the bundle, record
//	      ▼
//	  [created] ── StartContainer: the monitor runs `runtime run --detach` ──▶ [running]
//	      │                                          │ fails                      │
//	      │                                          ▼                            │ the process
//	      │                          [exited] StartError, code 128                │ ends; its
//	      │                                                                       │ monitor
//	      │ Remove                     [exited] ◀─────────────────────────────────┘ records it,
//	      ▼                               │ RemoveContainer:                     then the exit
//	   (gone) ◀───────────────────────────┘ rootfs, leases, record               watcher deletes
//	                                                                             it from the runtime
//
// The OCI runtime knows nothing of a created container: CreateContainer costs a
// lease, a mount, a few small files and the spawn of the container's monitor, which
// sets up (log, stdio, socket) in parallel with the rest and then waits;
// StartContainer is one request to that monitor and one runtime exec (`run --detach`,
// not `create` then `start`), as containerd creates its task only at start. Stopping
// a created container is a no-op; updating its resources rewrites its bundle;
// removing it ends its waiting monitor.
//
// The exit watcher deletes an exited container from its OCI runtime (a plain
// `delete`: runc sleeps 100 ms in every `delete --force`), as containerd does on a
// task's exit: what the container left in a PID namespace shared with its pod dies
// with it, its cgroup goes, its rootfs is unmounted (an overlay's unmount syncs the
// upper file system), and RemoveContainer, which waits for the watcher, is left with the
// writable layer, the leases and the records (it deletes from the runtime and unmounts
// itself only when the watcher could not).
//
// RemoveContainer commits with the record's removal: a rename of the record's
// directory into a trash directory and one fsync of its parent (sandbox/store). Then
// it renames the writable layer and the state directory into trash directories of
// their own (internal/trash, beside each directory, on its file system) and queues the
// image leases; the reaper (reaper.go) deletes the trash and releases the leases in
// the background. A removal is one rename per directory and one fsync, where deleting
// the trees and committing the lease database took 10-15 ms. A crash before the
// commit leaves the container as recorded (RemoveContainer had not returned); after
// it, the next start sweeps the trash and recovery removes the directories and leases
// of ids without a record: nothing comes back, nothing stays.
//
// A record whose status cannot be read is [unknown]: it is watched like a running one
// (its monitor may still answer) and Remove releases whatever may exist of it.
//
// # Where things are
//
//	<root>/containers/<id>/{metadata,status}.json  the record
//	<root>/rw/<id>/{upper,work}                    the writable layer (on disk, not tmpfs)
//	<state>/containers/<id>/config.json            the OCI bundle
//	<state>/containers/<id>/rootfs                 the overlay of the image's snapshots
//	<state>/containers/<id>/volumes/<n>            image volumes, read-only overlays
//	<state>/containers/<id>/monitor/               monitor.json, ctl.sock, exit.json, pid
//	<root>/trash/{containers,rw}/, <state>/trash/containers/   removed, being deleted
//
// # Decision: one monitor per container, written in Go
//
// Each container has its own monitor process (cmd/berth-monitor, sandbox/monitor):
// it runs the OCI runtime (`run --detach`) so that the container's init becomes its child
// (it is a child subreaper), holds the container's stdio, writes the CRI log, answers
// attach and reopen on a unix socket, and writes the exit status atomically. berthd
// never holds a container's output: a berthd that dies or restarts loses nothing, and
// a new berthd finds each container through its monitor's socket or exit file.
//
// Per container rather than per pod: a pod-wide monitor would save one small process
// per extra container but would have to launch containers on berthd's behalf (a second
// protocol), and one bug in it would take a whole pod's logs and exits with it. The
// cost is small: a static Go monitor run with GOMAXPROCS=1 (set by monitor.Launch)
// measured 0.78 MiB PSS each with 30 running (3.1 MiB for a lone one, whose text pages
// nobody shares), against 5.3 MiB PSS for containerd's shim.
//
// # Locking
//
// Each container has an operation lock (Start, Stop, Remove, Update) and a status
// lock held only to write a revision: the exit watcher records the exit under the
// status lock alone, so that a Stop holding the operation lock can wait for it. A
// pod's life lock is held shared by CreateContainer and exclusively by StopPod and
// RemovePod while they stop or remove the pod's containers.
//
// # Recovery
//
// After the pods, each container record is loaded. A container whose pod is gone, or
// whose create was cut short (no status yet), is removed; every other one that has not
// exited gets an exit watcher, which connects to its monitor or reads the exit file
// the monitor left. A monitor gone without an exit file (the node rebooted, or it was
// killed) makes the container exited with code 255 and reason "Unknown". A record
// still CREATED whose monitor directory holds a monitor config (berthd stopped during
// StartContainer, which records nothing before the launch) is RUNNING if the runtime
// says so, else watched like the rest. Directories
// and image leases of ids without a record (a create cut short before its record, or
// a removal cut short after its commit) are removed, and the trash directories are
// emptied.
