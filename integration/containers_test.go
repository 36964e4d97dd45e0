package integration

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestContainerLifecycle creates and starts containers, reads their CRI logs (streams,
// F and P tags), their exits (Completed, Error), lists them every way, and stops and
// removes them twice, and an unknown id.
func TestContainerLifecycle(t *testing.T) {
	e := newCtrEnv(t)
	ctx := ctxTimeout(t, 2*time.Minute)
	script := `echo out; echo err >&2; head -c 20000 /dev/zero | tr '\0' x; echo; sleep 1; echo -n partial`
	cfg := ctrConfig("lifecycle", sh(script), func(c *runtimeapi.ContainerConfig) {
		c.Labels = map[string]string{"app": "logs", "tier": "back"}
		c.Annotations = map[string]string{"note": "kept"}
	})
	id := e.create(t, cfg)
	st := e.status(t, id)
	if st.State != runtimeapi.ContainerState_CONTAINER_CREATED || st.CreatedAt <= 0 || st.StartedAt != 0 {
		t.Fatalf("after create: %v", st)
	}
	if st.Metadata.Name != "lifecycle" || st.Labels["tier"] != "back" || st.Annotations["note"] != "kept" || st.ImageRef == "" {
		t.Errorf("status does not echo the config: %v", st)
	}
	logPath := filepath.Join(e.logDir, "lifecycle", "0.log")
	if st.LogPath != logPath {
		t.Errorf("log path %q, want %q", st.LogPath, logPath)
	}
	e.start(t, id)
	if st = e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING || st.StartedAt < st.CreatedAt {
		t.Errorf("after start: %v", st)
	}
	// The container sleeps a second before its last words: it is listed as running.
	running := &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}
	for name, f := range map[string]*runtimeapi.ContainerFilter{
		"all":        nil,
		"id":         {Id: id},
		"id prefix":  {Id: id[:12]},
		"pod":        {PodSandboxId: e.pod},
		"state":      {State: running},
		"labels":     {LabelSelector: map[string]string{"app": "logs"}},
		"everything": {Id: id, PodSandboxId: e.pod, State: running, LabelSelector: map[string]string{"app": "logs", "tier": "back"}},
	} {
		if got := listContainers(t, e, f); len(got) != 1 || got[0].Id != id || got[0].PodSandboxId != e.pod {
			t.Errorf("list by %s = %v", name, got)
		}
	}
	for name, f := range map[string]*runtimeapi.ContainerFilter{
		"other id":    {Id: "0000"},
		"other pod":   {PodSandboxId: "0000"},
		"exited":      {State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_EXITED}},
		"other label": {LabelSelector: map[string]string{"app": "web"}},
	} {
		if got := listContainers(t, e, f); len(got) != 0 {
			t.Errorf("list by %s = %v, want none", name, got)
		}
	}

	st = e.waitExited(t, id, 30*time.Second)
	if st.ExitCode != 0 || st.Reason != "Completed" || st.FinishedAt < st.StartedAt {
		t.Errorf("exit: code %d reason %q finished %d started %d", st.ExitCode, st.Reason, st.FinishedAt, st.StartedAt)
	}
	got := readCRILog(t, logPath)
	long := strings.Repeat("x", 20000)
	want := []logLine{
		{stream: "stdout", tag: "F", s: "out"},
		{stream: "stderr", tag: "F", s: "err"},
		{stream: "stdout", tag: "P", s: long[:16384]},
		{stream: "stdout", tag: "F", s: long[16384:]},
		// The output ends without a newline: its last piece is P, as containerd writes it.
		{stream: "stdout", tag: "P", s: "partial"},
	}
	// stdout and stderr are read apart: compare each stream's lines in order.
	for _, stream := range []string{"stdout", "stderr"} {
		var g, w []logLine
		for _, l := range got {
			if l.stream == stream {
				g = append(g, logLine{stream: l.stream, tag: l.tag, s: l.s})
			}
		}
		for _, l := range want {
			if l.stream == stream {
				w = append(w, l)
			}
		}
		if len(g) != len(w) {
			t.Errorf("%s: %d log lines, want %d: %v", stream, len(g), len(w), summarize(g))
			continue
		}
		for i := range w {
			if g[i] != w[i] {
				t.Errorf("%s line %d = %s, want %s", stream, i, summarize(g[i:i+1]), summarize(w[i:i+1]))
			}
		}
	}
	for _, l := range got {
		if l.time.Before(time.Unix(0, st.CreatedAt)) || l.time.After(time.Now()) {
			t.Errorf("log line time %v out of the container's life", l.time)
		}
	}

	failing := e.run(t, ctrConfig("failing", sh("exit 42")))
	if st := e.waitExited(t, failing, 30*time.Second); st.ExitCode != 42 || st.Reason != "Error" {
		t.Errorf("failing command: code %d reason %q, want 42 Error", st.ExitCode, st.Reason)
	}
	exited := &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_EXITED}
	if got := listContainers(t, e, &runtimeapi.ContainerFilter{State: exited}); len(got) != 2 {
		t.Errorf("list of exited containers = %v, want both", got)
	}

	for _, c := range []string{id, failing} {
		for range 2 {
			e.stop(t, c, 0)
		}
		for range 2 {
			e.remove(t, c)
		}
		_, err := e.d.runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c})
		wantCode(t, "status of a removed container", err, codes.NotFound)
	}
	unknown := strings.Repeat("ab", 32)
	_, err := e.d.runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: unknown})
	wantCode(t, "stop of an unknown container", err, codes.OK)
	_, err = e.d.runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: unknown})
	wantCode(t, "remove of an unknown container", err, codes.OK)
	if got := listContainers(t, e, nil); len(got) != 0 {
		t.Errorf("containers left: %v", got)
	}
	if tr := containerTraces(t, e.d); len(tr.Records)+len(tr.StateDirs)+len(tr.RWDirs) != 0 {
		t.Errorf("removed containers left traces: %+v", tr)
	}
}

// summarize shows log lines with long contents cut.
func summarize(ls []logLine) []string {
	var out []string
	for _, l := range ls {
		s := l.s
		if len(s) > 20 {
			s = s[:10] + "... len=" + strconv.Itoa(len(l.s))
		}
		out = append(out, l.stream+" "+l.tag+" "+s)
	}
	return out
}

func listContainers(t *testing.T, e *ctrEnv, f *runtimeapi.ContainerFilter) []*runtimeapi.Container {
	t.Helper()
	resp, err := e.d.runtime.ListContainers(ctxTimeout(t, 10*time.Second), &runtimeapi.ListContainersRequest{Filter: f})
	if err != nil {
		t.Fatalf("ListContainers: %v", err)
	}
	return resp.Containers
}

// TestContainerStopSignal stops a container that handles SIGTERM (it exits 0 at once),
// one that ignores it (killed after the grace period), and one with no grace at all.
func TestContainerStopSignal(t *testing.T) {
	e := newCtrEnv(t)
	cases := []struct {
		name     string
		script   string
		timeout  int64
		code     int32
		min, max time.Duration
		log      string
	}{
		{"handles TERM", `trap "echo got TERM; exit 0" TERM; echo ready; while true; do sleep 0.1; done`, 10, 0, 0, 5 * time.Second, "got TERM"},
		{"ignores TERM", `trap "" TERM; echo ready; sleep 1000`, 2, 137, 1800 * time.Millisecond, 8 * time.Second, ""},
		{"no grace", `trap "" TERM; echo ready; sleep 1000`, 0, 137, 0, 2 * time.Second, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-")
			id := e.run(t, ctrConfig(name, sh(tc.script)))
			logPath := filepath.Join(e.logDir, name, "0.log")
			waitLogContains(t, logPath, "ready", 20*time.Second)
			start := time.Now()
			e.stop(t, id, tc.timeout)
			took := time.Since(start)
			st := e.status(t, id)
			if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != tc.code {
				t.Errorf("after stop: state %v code %d reason %q, want EXITED %d", st.State, st.ExitCode, st.Reason, tc.code)
			}
			if took < tc.min || took > tc.max {
				t.Errorf("stop took %s, want between %s and %s", took, tc.min, tc.max)
			}
			if tc.log != "" && !strings.Contains(logText(t, logPath), tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, logText(t, logPath))
			}
			e.remove(t, id)
		})
	}
}

// TestContainerExecSync: output and exit code, a timeout that kills the command, and
// exec into an exited container.
func TestContainerExecSync(t *testing.T) {
	e := newCtrEnv(t)
	id := e.run(t, ctrConfig("exec", []string{"sleep", "1000"}))

	resp, err := e.execErr(t, id, 0, "sh", "-c", "echo hello; echo oops >&2; exit 7")
	if err != nil || string(resp.Stdout) != "hello\n" || string(resp.Stderr) != "oops\n" || resp.ExitCode != 7 {
		t.Errorf("ExecSync = %v, %v; want hello, oops, 7", resp, err)
	}

	start := time.Now()
	_, err = e.execErr(t, id, 1, "sleep", "10")
	wantCode(t, "ExecSync past its timeout", err, codes.DeadlineExceeded)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("ExecSync with timeout 1s took %s", took)
	}
	var ps string
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ps = e.exec(t, id, "ps", "-o", "pid,args")
		if !hasProcess(ps, "sleep 10") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the timed-out exec still runs:\n%s", ps)
			break
		}
	}
	if !hasProcess(ps, "sleep 1000") {
		t.Errorf("the container's own process is gone:\n%s", ps)
	}

	done := e.run(t, ctrConfig("done", sh("exit 0")))
	e.waitExited(t, done, 30*time.Second)
	_, err = e.execErr(t, done, 0, "true")
	wantCode(t, "ExecSync in an exited container", err, codes.FailedPrecondition)
}

// hasProcess reports whether a line of ps -o pid,args runs exactly args.
func hasProcess(ps, args string) bool {
	for _, l := range strings.Split(ps, "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && strings.Join(f[1:], " ") == args {
			return true
		}
	}
	return false
}
