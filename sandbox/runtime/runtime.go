package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Runtime drives one OCI runtime handler. Its methods are safe for concurrent use on
// different containers; calls on one container must not race each other (berth's pod
// and container code serialises them), above all Create or Run with Delete.
type Runtime struct {
	Name string // handler name ("runc", "crun"), used in errors and logs
	Path string // executable
	// Root is the runtime's state directory (--root), e.g. <berth state>/runtime/<name>;
	// created if missing. The container named id lives in Root/id for runc and crun.
	Root          string
	SystemdCgroup bool         // --systemd-cgroup
	Log           *slog.Logger // nil: no logging
}

// Command is how to run the runtime's executable: what a container's monitor, which
// runs it itself, needs to know of a Runtime.
type Command struct {
	Path          string
	Root          string
	SystemdCgroup bool
}

// Command returns how to run this runtime's executable.
func (r *Runtime) Command() Command {
	return Command{Path: r.Path, Root: r.Root, SystemdCgroup: r.SystemdCgroup}
}

// CreateOptions are the options of Run and Create.
type CreateOptions struct {
	// Bundle is the directory holding config.json (and rootfs unless spec.root.path is
	// absolute). Made absolute if relative.
	Bundle string
	// PidFile is written by the runtime with the container's pid (made absolute if
	// relative); empty: a temporary file (Run and Create return the pid either way).
	PidFile string
	// Stdin, Stdout and Stderr become the container process's stdio; nil: /dev/null.
	// They are handed over as they are: berthd holds no pipe to the container.
	Stdin, Stdout, Stderr *os.File
	// ConsoleSocket is the AF_UNIX socket that receives the pty master of a terminal
	// container (--console-socket).
	ConsoleSocket string
	// NoPivot makes the runtime use MS_MOVE instead of pivot_root (ramdisk roots).
	NoPivot bool
}

// The container statuses of the OCI runtime spec.
const (
	StatusCreating = "creating"
	StatusCreated  = "created"
	StatusRunning  = "running"
	StatusStopped  = "stopped"
	StatusPaused   = "paused"
)

// State is what the runtime reports of a container.
type State struct {
	ID      string    `json:"id"`
	Status  string    `json:"status"` // created, running, stopped or paused
	Pid     int       `json:"pid"`    // 0 once stopped
	Bundle  string    `json:"bundle"`
	Created time.Time `json:"created"`
}

// undoTimeout bounds the clean-up of a failed Run or Create, which runs even when the
// caller's context has ended.
const undoTimeout = 30 * time.Second

// Run creates and starts container id in one runtime call (`run --detach`): the fast
// path for a pod's infra process. It returns the container's pid.
//
// On failure, including the end of ctx (which kills the runtime process, never the
// container), Run deletes whatever the runtime made, forcibly and under a fresh
// context, before it returns: a failed Run leaves no container, no state directory and
// no empty cgroup behind. The one exception is an error matching
// errdefs.ErrAlreadyExists: the existing container is not Run's to delete.
func (r *Runtime) Run(ctx context.Context, id string, o CreateOptions) (pid int, err error) {
	return r.launch(ctx, "run", id, o)
}

// Create creates container id (`create`): its init waits for Start. It returns the
// pid of that init. On failure it cleans up exactly as Run does.
func (r *Runtime) Create(ctx context.Context, id string, o CreateOptions) (pid int, err error) {
	return r.launch(ctx, "create", id, o)
}

func (r *Runtime) launch(ctx context.Context, op, id string, o CreateOptions) (int, error) {
	c := call{op: op, id: id, passStdio: true, stdin: o.Stdin, stdout: o.Stdout, stderr: o.Stderr}
	if !validID(id) {
		return 0, r.invalid(c, "invalid container id")
	}
	if o.Bundle == "" {
		return 0, r.invalid(c, "no bundle")
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return 0, r.fail(ctx, c, "bundle", err)
	}
	if _, err := os.Lstat(r.stateDir(id)); err == nil {
		return 0, r.fail(ctx, c, "container already exists", nil) // classified as such
	}
	if c.scratch, err = scratchDir(); err != nil {
		return 0, r.fail(ctx, c, "", err)
	}
	defer os.RemoveAll(c.scratch)
	pidFile := filepath.Join(c.scratch, "pid")
	if o.PidFile != "" {
		if pidFile, err = filepath.Abs(o.PidFile); err != nil {
			return 0, r.fail(ctx, c, "pid file", err)
		}
	}
	c.args = []string{op, "--bundle=" + bundle, "--pid-file=" + pidFile}
	if op == "run" {
		c.args = append(c.args, "--detach")
	}
	if o.ConsoleSocket != "" {
		c.args = append(c.args, "--console-socket="+o.ConsoleSocket)
	}
	if o.NoPivot {
		c.args = append(c.args, "--no-pivot")
	}
	c.args = append(c.args, id)

	_, err = r.run(ctx, c)
	var pid int
	if err == nil {
		if pid, err = readPidFile(pidFile); err != nil {
			err = r.fail(ctx, c, "pid file", err)
		}
	}
	if err != nil {
		if !errors.Is(err, errdefs.ErrAlreadyExists) {
			r.undo(ctx, id, bundle)
		}
		return 0, err
	}
	return pid, nil
}

// Abandon removes what a failed or cut-short `run` or `create` of container id, made by
// another process (berth's monitor), may have left; see undo. bundle is the
// container's bundle directory (its config.json names the cgroup).
func (r *Runtime) Abandon(ctx context.Context, id, bundle string) {
	r.undo(ctx, id, bundle)
}

// undo removes what a failed Run or Create may have left: the container (with its init,
// if the runtime got that far), a state directory without state (the runtime was killed
// before it recorded any), and the container's cgroup if it is empty.
func (r *Runtime) undo(ctx context.Context, id, bundle string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	log := r.logger().With("runtime", r.Name, "id", id)
	if err := r.Delete(ctx, id, true); err != nil {
		log.Warn("cleaning up after a failed create", "error", err)
	}
	if err := removeEmptyCgroup(bundle, r.SystemdCgroup); err != nil {
		log.Warn("cleaning up the cgroup of a failed create", "error", err)
	}
}

// Start starts the process of a created container (`start`).
func (r *Runtime) Start(ctx context.Context, id string) error {
	return r.simple(ctx, "start", id, "start", id)
}

// Kill sends sig to the container's init, or with all to every process in it (`kill`).
// A container that is absent or stopped is not an error.
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	err := r.simple(ctx, "kill", id, append(args, id, strconv.Itoa(int(sig)))...)
	if err == nil || errdefs.IsNotFound(err) {
		return nil
	}
	if st, stErr := r.State(ctx, id); errdefs.IsNotFound(stErr) || (stErr == nil && st.Status == StatusStopped) {
		return nil
	}
	return err
}

// Delete deletes the container (`delete`, with force `delete --force`, which kills a
// running one first). Deleting an absent container is not an error; a state directory
// that a runtime killed half-way through Create left without state is removed too.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	err := r.simple(ctx, "delete", id, append(args, id)...)
	if err == nil || !errdefs.IsNotFound(err) {
		return err
	}
	if err := os.RemoveAll(r.stateDir(id)); err != nil {
		return fmt.Errorf("%s delete %s: removing stale state: %w", r.Name, id, err)
	}
	return nil
}

// State reports the container's state (`state`). An absent container is an error
// matching errdefs.ErrNotFound.
func (r *Runtime) State(ctx context.Context, id string) (State, error) {
	c := call{op: "state", id: id, args: []string{"state", id}}
	if !validID(id) {
		return State{}, r.invalid(c, "invalid container id")
	}
	out, err := r.run(ctx, c)
	if err != nil {
		return State{}, err
	}
	var s State
	if err := json.Unmarshal(out, &s); err != nil {
		return State{}, r.fail(ctx, c, "decoding state", err)
	}
	return s, nil
}

// Update changes the resources of a created or running container (`update
// --resources`). The JSON goes through a file rather than stdin: runc and crun both
// read a file, while "-" for stdin is runc's alone.
func (r *Runtime) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	c := call{op: "update", id: id}
	if !validID(id) {
		return r.invalid(c, "invalid container id")
	}
	if res == nil {
		return r.invalid(c, "no resources")
	}
	data, err := json.Marshal(res)
	if err != nil {
		return r.fail(ctx, c, "encoding resources", err)
	}
	if c.scratch, err = scratchDir(); err != nil {
		return r.fail(ctx, c, "", err)
	}
	defer os.RemoveAll(c.scratch)
	file := filepath.Join(c.scratch, "resources.json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return r.fail(ctx, c, "", err)
	}
	c.args = []string{"update", "--resources=" + file, id}
	_, err = r.run(ctx, c)
	return err
}

// List reports every container the runtime has under Root (`list --format=json`).
func (r *Runtime) List(ctx context.Context) ([]State, error) {
	c := call{op: "list", args: []string{"list", "--format=json"}}
	out, err := r.run(ctx, c)
	if err != nil {
		return nil, err
	}
	var states []State // runc prints null for none, crun an empty array
	if err := json.Unmarshal(out, &states); err != nil {
		return nil, r.fail(ctx, c, "decoding list", err)
	}
	return states, nil
}

// simple runs a subcommand that takes a container id and prints nothing of interest.
func (r *Runtime) simple(ctx context.Context, op, id string, args ...string) error {
	c := call{op: op, id: id, args: args}
	if !validID(id) {
		return r.invalid(c, "invalid container id")
	}
	_, err := r.run(ctx, c)
	return err
}

func (r *Runtime) stateDir(id string) string { return filepath.Join(r.Root, id) }

// idPattern is the container id syntax runc accepts; it keeps Root/id inside Root.
var idPattern = regexp.MustCompile(`^[\w+.-]+$`)

func validID(id string) bool {
	return idPattern.MatchString(id) && id != "." && id != ".."
}

// invalid is the error for a request that never reached the runtime.
func (r *Runtime) invalid(c call, msg string) *Error {
	return &Error{Runtime: r.Name, Op: c.op, ID: strconv.Quote(c.id), Message: msg, Class: errdefs.ErrInvalidArgument}
}

// readPidFile reads the pid the runtime wrote.
func readPidFile(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad pid file %s: %q", path, data)
	}
	return pid, nil
}
