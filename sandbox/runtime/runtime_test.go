package runtime

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestScanLog(t *testing.T) {
	tests := []struct {
		name, log, msg, raw string
	}{
		{name: "empty"},
		{
			name: "runc: last error wins",
			log: `{"level":"warning","msg":"deprecated","time":"2026-01-01T00:00:00Z"}
{"level":"error","msg":"first","time":"2026-01-01T00:00:00Z"}
{"level":"error","msg":"runc run failed: container with given ID already exists","time":"2026-01-01T00:00:00Z"}`,
			msg: "runc run failed: container with given ID already exists",
		},
		{
			name: "crun field order",
			log:  `{"msg":"error opening file ` + "`/run/crun/x/status`" + `: No such file or directory","level":"error","time":"2026-01-01T00:00:00.1Z"}`,
			msg:  "error opening file `/run/crun/x/status`: No such file or directory",
		},
		{name: "fatal counts", log: `{"level":"fatal","msg":"boom"}`, msg: "boom"},
		{name: "info only", log: `{"level":"info","msg":"fine"}`},
		{name: "text before json", log: "flag provided but not defined\n{\"level\":\"info\",\"msg\":\"x\"}", raw: "flag provided but not defined"},
		{name: "blank lines", log: "\n\n{\"level\":\"error\",\"msg\":\"m\"}\n\n", msg: "m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, raw := scanLog(strings.NewReader(tt.log))
			if msg != tt.msg || raw != tt.raw {
				t.Errorf("got (%q, %q), want (%q, %q)", msg, raw, tt.msg, tt.raw)
			}
		})
	}
}

func TestLastError(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, log, stderr, want string
	}{
		{name: "log error", log: write("a", `{"level":"error","msg":"from log"}`), stderr: "from stderr\n", want: "from log"},
		{name: "raw log line", log: write("b", "not json\n"), stderr: "from stderr", want: "not json"},
		{name: "stderr last line", log: write("c", ""), stderr: "one\ntwo\n", want: "two"},
		{name: "no log file", log: filepath.Join(dir, "missing"), stderr: "only stderr", want: "only stderr"},
		{name: "nothing", log: filepath.Join(dir, "missing")},
		{name: "long", log: write("d", `{"level":"error","msg":"`+strings.Repeat("x", 2*maxMessage)+`"}`), want: "…" + strings.Repeat("x", maxMessage)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lastError(tt.log, []byte(tt.stderr)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "present"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := &Runtime{Name: "runc", Root: root}
	tests := []struct {
		name, op, id, msg string
		want              error
	}{
		{name: "state dir missing", op: "state", id: "gone", msg: "anything", want: errdefs.ErrNotFound},
		{name: "runc does not exist", op: "kill", id: "present", msg: "container does not exist", want: errdefs.ErrNotFound},
		{name: "crun status file", op: "state", id: "present", msg: "error opening file `" + root + "/present/status`: No such file or directory", want: errdefs.ErrNotFound},
		{name: "other missing file", op: "start", id: "present", msg: "exec: \"/bin/x\": No such file or directory"},
		{name: "not running", op: "kill", id: "present", msg: "container not running", want: errdefs.ErrFailedPrecondition},
		{name: "delete running", op: "delete", id: "present", msg: "cannot delete container present that is not stopped: running", want: errdefs.ErrFailedPrecondition},
		{name: "start stopped", op: "start", id: "present", msg: "cannot start a container that has stopped", want: errdefs.ErrFailedPrecondition},
		{name: "create exists", op: "create", id: "present", msg: "container with given ID already exists", want: errdefs.ErrAlreadyExists},
		{name: "crun create exists", op: "run", id: "present", msg: "container `present` already exists", want: errdefs.ErrAlreadyExists},
		{name: "create other", op: "create", id: "gone", msg: "bundle missing"},
		{name: "list", op: "list", msg: "does not exist"},
		{name: "unknown", op: "update", id: "present", msg: "invalid memory limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.classify(call{op: tt.op, id: tt.id}, tt.msg)
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestErrorFormatAndClasses(t *testing.T) {
	exitErr := exec.Command("false").Run()
	tests := []struct {
		name string
		err  *Error
		text string
		is   []error
	}{
		{
			name: "full",
			err:  &Error{Runtime: "runc", Op: "kill", ID: "c1", Message: "container does not exist", Err: exitErr, Class: errdefs.ErrNotFound},
			text: "runc kill c1: container does not exist: exit status 1",
			is:   []error{errdefs.ErrNotFound},
		},
		{
			name: "deadline",
			err:  &Error{Runtime: "crun", Op: "create", ID: "c2", Err: context.DeadlineExceeded},
			text: "crun create c2: context deadline exceeded",
			is:   []error{context.DeadlineExceeded},
		},
		{name: "list", err: &Error{Runtime: "runc", Op: "list", Message: "boom"}, text: "runc list: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.text {
				t.Errorf("Error() = %q, want %q", got, tt.text)
			}
			for _, target := range tt.is {
				if !errors.Is(tt.err, target) {
					t.Errorf("not %v", target)
				}
			}
			if tt.err.Class == nil && (errdefs.IsNotFound(tt.err) || errdefs.IsAlreadyExists(tt.err)) {
				t.Error("classified without a class")
			}
		})
	}
	var ee *exec.ExitError
	if !errors.As(error(&Error{Err: exitErr}), &ee) {
		t.Error("exit error not reachable with errors.As")
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"abc": true, "a-b_c.d+e": true, "0123456789abcdef": true,
		"": false, ".": false, "..": false, "a/b": false, "../x": false, "a b": false, "a\n": false,
	} {
		if got := validID(id); got != want {
			t.Errorf("validID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestInvalidRequests(t *testing.T) {
	r := &Runtime{Name: "runc", Path: "/nonexistent/runc", Root: t.TempDir()}
	ctx := context.Background()
	checks := map[string]error{
		"run bad id":       func() error { _, err := r.Run(ctx, "../x", CreateOptions{Bundle: "/b"}); return err }(),
		"create no bundle": func() error { _, err := r.Create(ctx, "x", CreateOptions{}); return err }(),
		"state bad id":     func() error { _, err := r.State(ctx, ""); return err }(),
		"update nil":       r.Update(ctx, "x", nil),
		"kill bad id":      r.Kill(ctx, "a/b", 15, false),
		"start bad id":     r.Start(ctx, "."),
		"delete bad id":    r.Delete(ctx, "..", true),
	}
	for name, err := range checks {
		if !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: got %v, want invalid argument", name, err)
		}
	}
}

func TestParseCgroupMounts(t *testing.T) {
	const mountinfo = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 22 0:22 / /sys/fs/cgroup ro,nosuid shared:4 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid shared:5 - cgroup2 cgroup2 rw
27 25 0:24 / /sys/fs/cgroup/memory rw,nosuid shared:6 - cgroup cgroup rw,memory
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw shared:7 master:3 - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /mnt/with\040space rw - cgroup2 none rw
30 22 0:27 / /broken
`
	got, err := parseCgroupMounts(bufio.NewScanner(strings.NewReader(mountinfo)))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpu,cpuacct", "/mnt/with space"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}
