// Package monitor owns the per-container monitor process (cmd/berth-monitor, whose main
// is Main) and berthd's side of it (Spawn, Start, Abort, Launch, Wait, ReadExit,
// Signal, Reopen, Attach, Kill).
//
// A monitor is one small process per container. berthd starts it in a session of its
// own; the monitor runs the OCI runtime (`run --detach`, or `create` for a later
// `start`), holds the container's stdio, writes the CRI log, serves a control socket
// and records the container's exit. berthd never sits between a container and its
// output: when berthd dies the container keeps running and logging, and its exit is
// still recorded.
//
// Two ways to start one: Launch runs the container at once and returns when the
// runtime has; Spawn (berthd's CreateContainer) starts a monitor that only sets up and
// reports ready, and Start (StartContainer) later has it run the container, so that a
// container start costs no process start besides the runtime's. Abort ends a spawned
// monitor that was never started.
//
// # Files in the monitor's directory (Config.Dir, made by berthd)
//
//	monitor.json  the Config, written by Launch
//	monitor.log   the monitor's own diagnostics (its stdout and stderr)
//	runtime.log   the runtime's JSON log (--log); its last error is create's message
//	pid           the container's init pid (--pid-file)
//	invoked       made just before the runtime runs (Invoked: a start was under way)
//	ctl.sock      the control socket, from before create until the monitor exits
//	console.sock  during create with a terminal: where the runtime sends the pty master
//	exit.json     the Exit, written atomically once the container's init has exited
//
// # Start-up handshake
//
// berthd passes a pipe as the monitor's fd 3. The monitor writes one JSON line on it
// and closes it: {"pid":N} once the runtime succeeded, {"ready":true} for a spawned
// monitor once it is set up, or {"error":"..."} (the runtime's own message) after which
// it exits 1.
//
// # Control protocol (ctl.sock)
//
// A client sends one JSON line, {"op":...}:
//
//	{"op":"wait"}     answered with the Exit as one JSON line once it is recorded
//	{"op":"reopen"}   reopen the CRI log (rotated); answered {} or {"error":"..."}
//	{"op":"resize","width":W,"height":H}   TIOCSWINSZ on the pty; answered {} or error
//	{"op":"signal","signal":N}   signal N to the init through its pidfd; {} or error
//	{"op":"start"}    a spawned monitor runs the container: {"pid":N} or {"error":...}
//	{"op":"abort"}    a spawned monitor exits without running anything: {}
//	{"op":"attach","stdin":b,"stdout":b,"stderr":b}   answered {}, then frames
//
// After an attach reply the monitor sends frames: one byte stream (1 stdout, 2 stderr,
// 3 exit), a 4-byte big-endian length, the data. Stream 3 carries the Exit as JSON and
// is the last frame. What the client sends after its request line is the container's
// stdin; its half-close is stdin's end, which closes the container's stdin when the
// container has StdinOnce (the session then ends when the container exits, or 2 s
// later). A client too slow to take a frame within half a second is disconnected: the
// container's output never waits for an attached client.
//
// Unix socket paths are limited to 108 bytes and Dir may be longer, so both sides
// reach the sockets through /proc/self/fd/<O_PATH descriptor of Dir>/, and the runtime
// is given the console socket as /proc/<monitor pid>/fd/<n>/console.sock.
//
// # CRI log
//
// Each output line becomes "<RFC3339Nano time> <stdout|stderr> <F|P> <content>\n"; a
// line longer than MaxLineSize is cut into pieces tagged P, the last one F. A log that
// cannot be written never stops the container: its output is dropped (and noted in
// monitor.log) until a write succeeds again.
//
// # Living with monitors
//
// On success the monitor is the launching process's child: Wait, given MonitorPID,
// reaps it. A monitor of an earlier berthd is nobody's child but init's; Wait then
// only reads its answer or exit.json.
//
// A monitor killed before the container exited leaves no exit.json (Wait: ErrNoExit),
// and the container's next write to its stdout or stderr gets EPIPE (SIGPIPE): nothing
// reads its output any more.
//
// What the runtime writes on its stdout and stderr during a successful create (its
// warnings) goes to the container's log, as the container inherits those descriptors.
//
// Build the monitor with CGO_ENABLED=0 (and -ldflags='-s -w'): the net package would
// otherwise link libc for a resolver the monitor never uses, which costs one thread
// and about 120 kB of private memory per container.
package monitor
