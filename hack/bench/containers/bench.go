package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/hack/bench/benchstats"
)

// bg is the context of berth's calls: an interrupt (e.ctx) ends the run between
// calls, never inside one, so that no call is cut halfway.
var bg = context.Background()

// series are the samples of one measured operation.
type series = benchstats.Series

// rows are the measured operations, in print order.
type rows struct {
	rawMount, rawRun, rawStop                *series
	create, start, createStart, status, list *series
	stop0, stopTerm, remove                  *series
	critestStop, critestRemove               *series
	mem                                      memReport
}

func newRows() *rows {
	r := &rows{
		rawMount: &series{Name: "raw overlay mount"}, rawRun: &series{Name: "raw runc run --detach"},
		rawStop: &series{Name: "raw runc kill+delete"},
		create:  &series{Name: "create"}, start: &series{Name: "start"},
		status: &series{Name: "container status"}, list: &series{Name: "list containers"},
		stopTerm:      &series{Name: "stop (SIGTERM exits, timeout 10)"},
		remove:        &series{Name: "remove (stopped)"},
		critestStop:   &series{Name: "critest shape: stop (timeout 60)"},
		critestRemove: &series{Name: "critest shape: remove"},
	}
	r.createStart = &series{Name: "create+start", Base: r.rawRun}
	r.stop0 = &series{Name: "stop (timeout 0)", Base: r.rawStop}
	return r
}

func (r *rows) print(w io.Writer) {
	benchstats.Table(w, []*series{r.rawMount, r.rawRun, r.rawStop, r.create, r.start, r.createStart,
		r.status, r.list, r.stop0, r.stopTerm, r.remove, r.critestStop, r.critestRemove})
	ratio := func(a, b time.Duration) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", float64(a)/float64(b))
	}
	cs, raw := r.createStart, r.rawRun
	fmt.Fprintf(w, "\ncreate+start / raw runc run: p50 %s, p95 %s, mean %s\n", ratio(cs.Quantile(0.5), raw.Quantile(0.5)),
		ratio(cs.Quantile(0.95), raw.Quantile(0.95)), ratio(cs.Mean(), raw.Mean()))
	floor := raw.Mean() + r.rawMount.Mean()
	fmt.Fprintf(w, "create+start / (raw overlay mount + raw runc run), means: %s\n", ratio(cs.Mean(), floor))
	r.mem.print(w)
}

// timed runs f and records its duration in s unless i < 0 (the warm-up).
func timed(i int, s *series, f func() error) error {
	start := time.Now()
	err := f()
	if i >= 0 {
		s.Add(time.Since(start))
	}
	return err
}

// slot is one pod and the container in it.
type slot struct {
	pod, ctr             string
	monitorPid, pausePid int
}

// bench runs the three phases: up (per slot: pod, then the timed create, start,
// status, list and the raw runc rows), memory (all n running), down (per slot: the
// SIGTERM stop, then stop 0 and remove), then n samples of critest's shape. A warm-up
// slot goes up and down first, and a warm-up sample of critest's shape.
func (e *env) bench(n int, r *rows) error {
	warm, err := e.up(-1, r)
	if err != nil {
		return err
	}
	if err := e.down(-1, warm, r); err != nil {
		return err
	}
	slots := make([]slot, 0, n)
	for i := range n {
		s, err := e.up(i, r)
		if err != nil {
			return err
		}
		slots = append(slots, s)
		if i == 0 {
			time.Sleep(200 * time.Millisecond) // let the monitor settle
			if r.mem.one, err = measurePod(s.monitorPid, s.pausePid); err != nil {
				return err
			}
		}
	}
	time.Sleep(200 * time.Millisecond)
	r.mem.withPod = e.sharedPID
	for _, s := range slots {
		m, err := measurePod(s.monitorPid, s.pausePid)
		if err != nil {
			return err
		}
		r.mem.all = append(r.mem.all, m)
	}
	r.mem.firstN = r.mem.all[0]
	for i, s := range slots {
		if err := e.down(i, s, r); err != nil {
			return err
		}
	}
	for i := -1; i < n; i++ {
		if err := e.critestShape(i, r); err != nil {
			return err
		}
	}
	return nil
}

// up makes slot i: its pod (not timed), its busybox sleep container (create, start,
// status, list timed), then the raw rows on a copy of that container's bundle.
func (e *env) up(i int, r *rows) (slot, error) {
	var s slot
	if err := e.ctx.Err(); err != nil {
		return s, err
	}
	var err error
	if s.pod, err = e.runPod(i, e.sharedPID); err != nil {
		return s, err
	}
	if s.ctr, err = e.container(i, s.pod, "sleep", []string{"sleep", "1000"}, r, e.sharedPID); err != nil {
		return s, err
	}
	_ = timed(i, r.status, func() error { _, _, err := e.pods.ContainerStatus(s.ctr, false); return err })
	_ = timed(i, r.list, func() error { e.pods.ListContainers(nil); return nil })
	info, err := e.ctrInfo(s.ctr)
	if err != nil {
		return s, err
	}
	s.monitorPid = info.MonitorPid
	if e.sharedPID {
		_, pinfo, err := e.pods.PodStatus(s.pod, true)
		if err != nil {
			return s, err
		}
		var v struct{ Pid int }
		if err := json.Unmarshal([]byte(pinfo["info"]), &v); err != nil || v.Pid == 0 {
			return s, fmt.Errorf("pod %s: no pause pid in %q (%v)", s.pod, pinfo["info"], err)
		}
		s.pausePid = v.Pid
	}

	id := fmt.Sprintf("raw-%d", i+1)
	bundle, err := e.rawBundle(s.ctr, id, func(mount func() error) error { return timed(i, r.rawMount, mount) })
	if err != nil {
		return s, err
	}
	if err := timed(i, r.rawRun, func() error { return e.rawRun(id, bundle) }); err != nil {
		return s, err
	}
	if err := timed(i, r.rawStop, func() error { return e.rawKillDelete(id) }); err != nil {
		return s, err
	}
	e.rawRemove(id)
	return s, nil
}

// down takes slot i away: a container whose shell exits on SIGTERM is made and
// started (not timed) and stopped with timeout 10 (timed), then removed; the sleep
// container is stopped with timeout 0 and removed (timed), the pod goes (not timed).
func (e *env) down(i int, s slot, r *rows) error {
	if err := e.ctx.Err(); err != nil {
		return err
	}
	term, err := e.container(i, s.pod, "term",
		[]string{"sh", "-c", `trap 'kill $!; exit 0' TERM; sleep 1000 & wait`}, nil, e.sharedPID)
	if err != nil {
		return err
	}
	info, err := e.ctrInfo(term)
	if err != nil {
		return err
	}
	if err := awaitTrap(info.Pid); err != nil {
		return err
	}
	start := time.Now()
	if err := timed(i, r.stopTerm, func() error { return e.pods.StopContainer(bg, term, 10) }); err != nil {
		return err
	}
	if took := time.Since(start); took > 5*time.Second {
		return fmt.Errorf("stop of %s took %s: SIGTERM did not end it", term, took)
	}
	if err := e.pods.RemoveContainer(bg, term); err != nil {
		return err
	}
	if err := timed(i, r.stop0, func() error { return e.pods.StopContainer(bg, s.ctr, 0) }); err != nil {
		return err
	}
	if err := timed(i, r.remove, func() error { return e.pods.RemoveContainer(bg, s.ctr) }); err != nil {
		return err
	}
	return errors.Join(e.pods.StopPod(bg, s.pod), e.pods.RemovePod(bg, s.pod))
}

// runPod runs the pod of slot i; with sharedPID its containers share one PID namespace
// and it has a pause.
func (e *env) runPod(i int, sharedPID bool) (string, error) {
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: fmt.Sprintf("ctr-%d", i+1), Namespace: "bench", Uid: randHex(8)},
		Hostname: "bench", Linux: &runtimeapi.LinuxPodSandboxConfig{},
	}
	if !sharedPID {
		cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
		}
	}
	return e.pods.RunPod(bg, cfg, "")
}

// container creates and starts a busybox container running args in pod, timing
// create, start and their sum into r unless r is nil. sharedPID says what the pod's
// PID namespace option is.
func (e *env) container(i int, pod, name string, args []string, r *rows, sharedPID bool) (string, error) {
	cfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: busyboxRef},
		Args:     args,
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: map[bool]runtimeapi.NamespaceMode{
				true: runtimeapi.NamespaceMode_POD, false: runtimeapi.NamespaceMode_CONTAINER}[sharedPID]},
		}},
	}
	if r == nil {
		i = -1 // not recorded
		r = newRows()
	}
	var id string
	err := timed(i, r.create, func() (err error) { id, err = e.pods.CreateContainer(bg, pod, cfg); return err })
	if err != nil {
		return "", err
	}
	e.made = append(e.made, id)
	if err := timed(i, r.start, func() error { return e.pods.StartContainer(bg, id) }); err != nil {
		return "", err
	}
	if i >= 0 {
		r.createStart.Add(r.create.Samples[len(r.create.Samples)-1] + r.start.Samples[len(r.start.Samples)-1])
	}
	return id, nil
}

// ctrInfo is the part of the verbose ContainerStatus the benchmark reads.
type ctrInfo struct {
	Pid        int `json:"pid"`
	MonitorPid int `json:"monitorPid"`
}

func (e *env) ctrInfo(id string) (ctrInfo, error) {
	var v ctrInfo
	_, info, err := e.pods.ContainerStatus(id, true)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal([]byte(info["info"]), &v); err != nil || v.MonitorPid == 0 || v.Pid == 0 {
		return v, fmt.Errorf("container %s: no pid or monitorPid in %q (%v)", id, info["info"], err)
	}
	return v, nil
}

// awaitTrap waits until the shell pid catches SIGTERM (its trap is set) and sleeps in
// its `wait` for the background sleep, at most 5 s. A SIGTERM that comes between the
// trap and the wait is one busybox's ash only acts on when the wait ends, 1000 s later.
func awaitTrap(pid int) error {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return err
		}
		if trapSet(string(data)) && waiting(pid) {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("pid %d never set its SIGTERM trap and waited", pid)
}

// trapSet says whether a /proc/PID/status text catches SIGTERM.
func trapSet(status string) bool {
	for line := range strings.Lines(status) {
		if v, ok := strings.CutPrefix(line, "SigCgt:"); ok {
			mask, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return mask&(1<<(15-1)) != 0
		}
	}
	return false
}

// waiting says whether pid has a child and sleeps waiting for it (wait4 or
// sigsuspend, as shells wait).
func waiting(pid int) bool {
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil || len(strings.TrimSpace(string(children))) == 0 {
		return false
	}
	wchan, err := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", pid))
	if err != nil {
		return false
	}
	w := string(wchan)
	return strings.Contains(w, "do_wait") || strings.Contains(w, "sigsuspend")
}
