package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/hack/testimages"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/runtime"
	"github.com/berth-runtime/berth/sandbox/runtime/runtimetest"
)

// busyboxRootfs makes a root filesystem holding a static busybox and the applets the
// exec tests use.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bb, err := testimages.EnsureBusybox(ctx)
	if err != nil {
		t.Skipf("no busybox: %v", err)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	bin := filepath.Join(rootfs, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "echo", "sleep", "cat"} {
		if err := os.Symlink("busybox", filepath.Join(bin, applet)); err != nil {
			t.Fatal(err)
		}
	}
	return rootfs
}

// runBusybox runs container id with args in rootfs and returns once it is running.
func runBusybox(t *testing.T, env *runtimetest.Env, rt *runtime.Runtime, rootfs, id string, args ...string) {
	t.Helper()
	spec := env.Spec(id, rootfs, args...)
	spec.Process.Env = []string{"PATH=/bin"}
	// A console inside the container for --tty exec.
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/dev/pts", Type: "devpts", Source: "devpts",
		Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}})
	if _, err := rt.Run(context.Background(), id, runtime.CreateOptions{Bundle: env.Bundle(spec)}); err != nil {
		t.Fatal(err)
	}
}

// containerProcs lists the command lines of the processes in container id.
func containerProcs(t *testing.T, env *runtimetest.Env, id string) []string {
	t.Helper()
	out, err := exec.Command(env.Runtime, "--root="+env.Root, "ps", "--format=json", id).Output()
	if err != nil {
		t.Fatalf("%s ps: %v", env.Runtime, err)
	}
	var pids []int
	if err := json.Unmarshal(out, &pids); err != nil {
		t.Fatalf("ps output %q: %v", out, err)
	}
	var cmds []string
	for _, pid := range pids {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		cmds = append(cmds, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	return cmds
}

func TestRuncExec(t *testing.T) {
	env := runtimetest.NewEnv(t, "runc")
	rootfs := busyboxRootfs(t)
	rt := &runtime.Runtime{Name: "runc", Path: env.Runtime, Root: env.Root}
	const id = "exec"
	runBusybox(t, env, rt, rootfs, id, "sleep", "1000")
	runBusybox(t, env, rt, rootfs, "stopped", "sh", "-c", "exit 0")
	waitStatus(t, rt, "stopped", runtime.StatusStopped)

	tests := []execCase{
		{name: "stdout and stderr", opts: runtime.ExecOptions{Args: []string{"sh", "-c", "echo out; echo err >&2"}}, wantOut: "out\n", wantErrOut: "err\n"},
		{name: "exit code", opts: runtime.ExecOptions{Args: []string{"sh", "-c", "echo bye; exit 7"}}, wantCode: 7, wantOut: "bye\n"},
		{name: "exit 255 is the process's", opts: runtime.ExecOptions{Args: []string{"sh", "-c", "exit 255"}}, wantCode: 255},
		{name: "killed by a signal", opts: runtime.ExecOptions{Args: []string{"sh", "-c", "kill -9 $$"}}, wantCode: 128 + 9},
		{name: "stdin", opts: runtime.ExecOptions{Args: []string{"cat"}, Stdin: strings.NewReader("in put\n")}, wantOut: "in put\n"},
		{name: "no stdin", opts: runtime.ExecOptions{Args: []string{"cat"}}},
		{name: "tty", opts: runtime.ExecOptions{Args: []string{"sh", "-c", "echo out; echo err >&2"}, Tty: true}, wantOut: "out\nerr\n"},
		// runc 1.1 waits for the holders of the output to close it before it reports the
		// exit code: Exec gives up 2 s after the process has exited.
		{name: "background child holds stdout", opts: runtime.ExecOptions{Args: []string{"sh", "-c", "sleep 20 & echo started"}}, wantMsg: "holds its output open"},
		{name: "background child with its own output", opts: runtime.ExecOptions{Args: []string{"sh", "-c", "sleep 20 >/dev/null 2>&1 & echo started"}}, wantOut: "started\n"},
		{name: "timeout", opts: runtime.ExecOptions{Args: []string{"sleep", "10"}}, timeout: 300 * time.Millisecond, wantErr: context.DeadlineExceeded},
		{name: "missing executable", opts: runtime.ExecOptions{Args: []string{"nosuch"}}, wantMsg: "executable file not found"},
		{name: "missing path", opts: runtime.ExecOptions{Args: []string{"/bin/nosuch"}}, wantMsg: "no such file or directory"},
		{name: "stopped container", id: "stopped", opts: runtime.ExecOptions{Args: []string{"sh"}}, wantErr: errdefs.ErrFailedPrecondition},
		{name: "absent container", id: "absent", opts: runtime.ExecOptions{Args: []string{"sh"}}, wantErr: errdefs.ErrNotFound},
		{name: "no command", wantErr: errdefs.ErrInvalidArgument},
	}
	// Detached: berthd is a child subreaper, and then Exec runs `exec --detach` and
	// reaps the process itself (execdetach.go); the background child holding the output
	// no longer costs the exit code.
	for _, detached := range []bool{false, true} {
		setSubreaper(t, detached)
		for _, tt := range tests {
			if detached && tt.name == "background child holds stdout" {
				tt.wantMsg, tt.wantOut = "", "started\n"
			}
			if in, ok := tt.opts.Stdin.(*strings.Reader); ok {
				_, _ = in.Seek(0, 0) // read by the first pass
			}
			runExecCase(t, rt, id, detached, tt)
		}
		if detached {
			// runc's second init stage of each detached exec is handed to the subreaper
			// as a zombie (stages.go): berthd reaps them, or they pile up.
			t.Logf("detached execs left %d runtime init stages to reap", runtime.ReapStages())
			if n := runtime.ReapStages(); n != 0 {
				t.Errorf("%d runtime init stages left after a sweep", n)
			}
		}
	}
	setSubreaper(t, false)

	// The timed-out exec left no process behind (a detached one is killed once the
	// runtime, which a loaded machine slows, is done with it), and the container is
	// still running.
	for deadline := time.Now().Add(10 * time.Second); slices.Contains(containerProcs(t, env, id), "sleep 10"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("timed-out exec left %q in the container", "sleep 10")
			break
		}
	}
	waitStatus(t, rt, id, runtime.StatusRunning)
}

// setSubreaper makes the test process a child subreaper, as berthd is, or not.
func setSubreaper(t *testing.T, on bool) {
	t.Helper()
	v := 0
	if on {
		v = 1
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, uintptr(v), 0, 0, 0); err != nil {
		t.Fatal(err)
	}
}

func runExecCase(t *testing.T, rt *runtime.Runtime, id string, detached bool, tt execCase) {
	name := tt.name
	if detached {
		name += " (detached)"
	}
	{
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			target := id
			if tt.id != "" {
				target = tt.id
			}
			var stdout, stderr bytes.Buffer
			tt.opts.Stdout, tt.opts.Stderr = &stdout, &stderr
			start := time.Now()
			code, err := rt.Exec(ctx, target, tt.opts)
			elapsed := time.Since(start)
			wantFail := tt.wantErr != nil || tt.wantMsg != ""
			switch {
			case !wantFail && err != nil:
				t.Fatalf("exec: %v", err)
			case wantFail && err == nil:
				t.Fatalf("exec: exit %d, no error", code)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("error %v, want %v", err, tt.wantErr)
			case !strings.Contains(errString(err), tt.wantMsg):
				t.Errorf("error %v, want %q in it", err, tt.wantMsg)
			}
			if wantFail {
				var rerr *runtime.Error
				if tt.wantMsg != "" && !errors.As(err, &rerr) {
					t.Errorf("error %T, want *runtime.Error", err)
				}
			} else if code != tt.wantCode {
				t.Errorf("exit code %d, want %d", code, tt.wantCode)
			}
			// A runtime's failure is on its stderr too: the output of failures is no one's.
			// A terminal's line discipline may turn \n into \r\n.
			out := strings.ReplaceAll(stdout.String(), "\r\n", "\n")
			if !wantFail && (out != tt.wantOut || stderr.String() != tt.wantErrOut) {
				t.Errorf("stdout %q, stderr %q; want %q, %q", stdout.String(), stderr.String(), tt.wantOut, tt.wantErrOut)
			}
			if tt.timeout > 0 && elapsed > tt.timeout+time.Second || elapsed > 5*time.Second {
				t.Errorf("took %v", elapsed)
			}
		})
	}
}

type execCase struct {
	name       string
	id         string
	opts       runtime.ExecOptions
	timeout    time.Duration
	wantCode   int32
	wantOut    string
	wantErrOut string
	wantErr    error  // matched with errors.Is; nil: no error
	wantMsg    string // in the error
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
