// Package runtime drives an OCI runtime binary (runc, crun, or any runtime that speaks
// the runc command line). It execs the binary; it never links libcontainer, so berth
// works with whatever version the node has and learns what it supports by asking it
// (Probe).
//
// # The driver
//
// A Runtime is one handler: a name, an executable, a state root (--root) and the cgroup
// driver flag. Each method is one runtime call: Run (`run --detach`, create and start in
// one exec, the fast path for a pod's infra process), Create, Start, Kill, Delete,
// State, Update, List and Exec. Only the command line that runc and crun share is used, and
// global options are spelled --option=value.
//
// Every call gets its own scratch directory holding the runtime's log (--log,
// --log-format=json). When a call fails, the last error entry of that log (else the
// runtime's stderr) becomes the Message of an *Error that names the runtime, the
// operation and the container, and matches an errdefs class with errors.Is:
// ErrNotFound for an absent container (runc's "does not exist", crun's missing status
// file, or simply no <root>/<id>), ErrAlreadyExists, ErrFailedPrecondition (wrong
// state), ErrInvalidArgument for requests that never reached the runtime. It also
// matches context.DeadlineExceeded or context.Canceled when ctx ended the call.
//
// # Exec
//
// Exec runs a process in a running container (`exec --pid-file`, without --detach, so
// the runtime waits for the process and exits with its status) and returns its exit
// code; a non-zero code is not an error. As the runtime's exit status mirrors the
// process's, an error entry in its JSON log is what marks a failure of the runtime
// itself (no such executable, container absent or not running). The end of ctx kills
// the process by the pid the runtime wrote, then the runtime: Exec never leaves the
// process behind. The start itself is not cut short: a runtime killed half-way would
// orphan what it had started. Only one that has not started the process within a
// minute counts as stuck, and is killed with all its descendants (proctree.go).
//
// runc 1.1 relays the output through pipes of its own and waits for every holder of
// them; a background child that keeps them open makes Exec give up 2 s after the
// process has exited, with an error, as the exit code is then lost.
//
// So when the caller is a child subreaper (berthd is) and wants no terminal, Exec runs
// `exec --detach` instead (execdetach.go): the runtime hands the process berth's own
// pipes and exits once it runs; the orphaned process becomes the caller's child, whose
// exit status wait4 gives the moment it exits. There too the runtime is let finish
// starting the process (which it normally does in milliseconds, but seconds under
// emulation) before the process is killed for an ended ctx. The output is read for 2 s
// more at most, and the exit code is kept whatever a background child still holds.
//
// # Init stages handed to berthd
//
// runc's first init stage exits without reaping the second when a start fails (an
// exec into a container that is exiting, say), and the orphaned zombie goes to the
// nearest child subreaper: berthd. WatchStages reaps these by name, never a process
// anyone waits for by pid (stages.go).
//
// # Contracts the pod code relies on
//
//   - Idempotent teardown: Kill of an absent or stopped container and Delete of an
//     absent one return nil; State of an absent one is ErrNotFound.
//   - No pipes held: Run and Create hand the runtime, and through it the container, the
//     given files or /dev/null; berthd never has to drain a container's output, and the
//     runtime's exit (after `--detach` start, or create) ends the call.
//   - Cancellation: the end of ctx kills the runtime process (SIGKILL to it alone; the
//     container is not signalled).
//   - A failed Run or Create leaves nothing: before returning its error it deletes the
//     container (forcibly, under a fresh context bounded by 30 s), removes a state
//     directory left without state by a runtime killed half-way, and removes the
//     container's cgroup if it is empty (cgroupfs driver, absolute cgroupsPath). The
//     caller only undoes what it made itself (bundle, mounts). Exception: a failure
//     matching ErrAlreadyExists touches nothing, as the container is someone else's.
//   - Calls on one container id must not race; above all Delete must not run while a
//     Create or Run of the same id is in flight.
//
// # Failure injection
//
// runtimetest.FailingRuntime writes a wrapper script to use as Path (or as a handler's
// path in berthd's configuration) that fails or hangs one subcommand, before or after
// running the real one, with no change to berth's code. runtimetest.Env gives a test
// its own state root and cgroup parent, a minimal container spec, and removes every
// container and cgroup left when the test ends.
package runtime
