package runtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Error is a runtime call that failed. It matches, with errors.Is, the errdefs class
// the failure belongs to (ErrNotFound when the container does not exist,
// ErrAlreadyExists, ErrFailedPrecondition for a container in the wrong state) and the
// context's error when the call was cut short.
type Error struct {
	Runtime string // handler name, e.g. "runc"
	Op      string // subcommand: "create", "kill", ...
	ID      string // container id; empty for list
	// Message is the runtime's own account: the last error in its JSON log, else the
	// last line of its stderr. It may be empty (a killed runtime says nothing).
	Message string
	// Err is how the call ended: an *exec.ExitError, a context error, a start error.
	Err error
	// Class is the errdefs class, or nil when the failure fits none.
	Class error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Runtime + " " + e.Op)
	if e.ID != "" {
		b.WriteString(" " + e.ID)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap gives errors.Is and errors.As both the way the call ended and the class.
func (e *Error) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.Err, e.Class} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// call is one invocation of the runtime binary.
type call struct {
	op, id string
	// args follow the global options: the subcommand, its options and operands.
	args []string
	// stdio, for run and create only: the runtime hands its stdio to the container, so
	// these are files (nil: /dev/null), never pipes that berthd would have to drain.
	stdin, stdout, stderr *os.File
	// passStdio is set for run and create; other calls capture stdout and stderr.
	passStdio bool
	// tree: the end of ctx kills the runtime with all its descendants, and reaps what
	// berthd inherits of them (procTree).
	tree bool
	// scratch is a directory for this call's log and any file an argument names; run
	// makes (and removes) one when it is empty.
	scratch string
}

// waitDelay bounds how long a finished or killed runtime's output pipes may stay open
// (held by a process it left behind) before Wait gives up on them.
const waitDelay = 2 * time.Second

// maxMessage bounds the runtime's words kept in an Error.
const maxMessage = 4096

// run executes c and returns the runtime's stdout. The runtime is killed (SIGKILL, it
// alone, or with c.tree its descendants: not the container) when ctx ends first.
func (r *Runtime) run(ctx context.Context, c call) ([]byte, error) {
	if err := os.MkdirAll(r.Root, 0o711); err != nil {
		return nil, r.fail(ctx, c, "", err)
	}
	if c.scratch == "" {
		dir, err := scratchDir()
		if err != nil {
			return nil, r.fail(ctx, c, "", err)
		}
		defer os.RemoveAll(dir)
		c.scratch = dir
	}
	logPath := filepath.Join(c.scratch, "log.json")
	args := []string{"--root=" + r.Root, "--log=" + logPath, "--log-format=json"}
	if r.SystemdCgroup {
		args = append(args, "--systemd-cgroup")
	}
	cmd := exec.CommandContext(ctx, r.Path, append(args, c.args...)...)
	cmd.WaitDelay = waitDelay
	var tree *procTree
	if c.tree {
		tree = &procTree{}
		// Called while the runtime is not yet reaped (Wait waits for it to return).
		cmd.Cancel = func() error {
			tree.kill(cmd.Process)
			return nil
		}
	}
	var stdout, stderr bytes.Buffer
	if c.passStdio {
		// Only non-nil files: a nil *os.File in an io.Reader is not a nil interface, and
		// exec opens /dev/null for nil interfaces by itself.
		if c.stdin != nil {
			cmd.Stdin = c.stdin
		}
		if c.stdout != nil {
			cmd.Stdout = c.stdout
		}
		if c.stderr != nil {
			cmd.Stderr = c.stderr
		}
	} else {
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
	}
	start := time.Now()
	err := cmd.Run()
	tree.reap()
	r.logger().Debug("oci runtime call", "runtime", r.Name, "op", c.op, "id", c.id,
		"duration", time.Since(start), "error", err)
	if err != nil {
		return nil, r.fail(ctx, c, lastError(logPath, stderr.Bytes()), err)
	}
	return stdout.Bytes(), nil
}

// fail makes the Error for a failed call and classifies it.
func (r *Runtime) fail(ctx context.Context, c call, msg string, err error) *Error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = ctxErr
	}
	e := &Error{Runtime: r.Name, Op: c.op, ID: c.id, Message: msg, Err: err}
	e.Class = r.classify(c, msg)
	return e
}

// classify maps the runtime's words to an errdefs class. runc and crun word things
// differently; where they agree on a file layout (<root>/<id> is the state of a
// container), the layout decides.
func (r *Runtime) classify(c call, msg string) error {
	lower := strings.ToLower(msg)
	switch c.op {
	case "run", "create":
		if strings.Contains(lower, "already exists") {
			return errdefs.ErrAlreadyExists
		}
		return nil
	case "list":
		return nil
	}
	if r.absent(c.id, lower) {
		return errdefs.ErrNotFound
	}
	for _, s := range []string{"not running", "not stopped", "already running", "cannot start", "is paused", "not paused"} {
		if strings.Contains(lower, s) {
			return errdefs.ErrFailedPrecondition
		}
	}
	return nil
}

// absent reports whether a failure means the runtime has no container id: runc says
// "container does not exist"; crun fails to open <root>/<id>/status; both keep a
// container's state in <root>/<id>.
func (r *Runtime) absent(id, lowerMsg string) bool {
	dir := r.stateDir(id)
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return true
	}
	return strings.Contains(lowerMsg, "does not exist") ||
		(strings.Contains(lowerMsg, "no such file or directory") && strings.Contains(lowerMsg, strings.ToLower(dir)))
}

// lastError is the runtime's account of a failure: the message of the last error (or
// fatal) entry of its JSON log, else the last non-JSON line of the log (crun and runc
// write a few before they parse --log-format), else the last line of stderr.
func lastError(logPath string, stderr []byte) string {
	var msg, raw string
	if f, err := os.Open(logPath); err == nil {
		defer f.Close()
		msg, raw = scanLog(f)
	}
	switch {
	case msg != "":
		return truncate(msg)
	case raw != "":
		return truncate(raw)
	}
	return truncate(lastLine(stderr))
}

// scanLog reads a runtime's JSON log and returns the message of the last error entry
// and the last line that was not JSON.
func scanLog(r io.Reader) (msg, raw string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if err := json.Unmarshal(line, &entry); err != nil {
			raw = string(line)
			continue
		}
		if entry.Level == "error" || entry.Level == "fatal" {
			msg = entry.Msg
		}
	}
	return msg, raw
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func truncate(s string) string {
	if len(s) > maxMessage {
		return "…" + s[len(s)-maxMessage:]
	}
	return s
}

// scratchDir makes a per-call directory for the runtime's log and argument files; the
// caller removes it.
func scratchDir() (string, error) {
	dir, err := os.MkdirTemp("", "berth-oci-")
	if err != nil {
		return "", fmt.Errorf("scratch directory: %w", err)
	}
	return dir, nil
}

func (r *Runtime) logger() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return discard
}

var discard = slog.New(slog.DiscardHandler)
