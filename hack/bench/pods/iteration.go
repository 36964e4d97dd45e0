package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/berth-runtime/berth/hack/bench/benchstats"
	"github.com/containernetworking/cni/libcni"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// series are the samples of one measured operation.
type series = benchstats.Series

// rows are the measured operations, in print order.
type rows struct {
	rawRun, rawStop, rawAdd, rawDel        *series
	run, status, list, stop, remove        *series
	runNoPause, stopNoPause, removeNoPause *series
}

func newRows() *rows {
	r := &rows{
		rawRun: &series{Name: "raw runc run (pause)"}, rawStop: &series{Name: "raw runc kill+delete"},
		rawAdd: &series{Name: "raw CNI ADD (libcni)"}, rawDel: &series{Name: "raw CNI DEL (libcni)"},
		status: &series{Name: "pod status"}, list: &series{Name: "list pods"},
		runNoPause:    &series{Name: "run (per-container PID)", Target: 35 * time.Millisecond},
		stopNoPause:   &series{Name: "stop (per-container PID)", Target: 30 * time.Millisecond},
		removeNoPause: &series{Name: "remove (per-container PID)", Target: 5 * time.Millisecond},
	}
	r.run = &series{Name: "run (shared PID: pause)", Target: 35 * time.Millisecond, Base: r.rawRun}
	r.stop = &series{Name: "stop (shared PID: pause)", Target: 30 * time.Millisecond, Base: r.rawDel}
	r.remove = &series{Name: "remove (shared PID: pause)", Target: 5 * time.Millisecond}
	r.runNoPause.Base = r.rawAdd
	r.stopNoPause.Base = r.rawDel
	return r
}

func (r *rows) print() {
	benchstats.Table(os.Stdout, []*series{r.rawRun, r.rawStop, r.rawAdd, r.rawDel,
		r.run, r.status, r.list, r.stop, r.remove, r.runNoPause, r.stopNoPause, r.removeNoPause})
	fmt.Printf("\nraw runc run + raw CNI ADD, sequential: mean %s ms; in parallel (max of the two): mean %s ms\n",
		benchstats.MS(r.rawRun.Mean()+r.rawAdd.Mean()), benchstats.MS(max(r.rawRun.Mean(), r.rawAdd.Mean())))
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

func (e *env) iteration(i int, r *rows) error {
	if err := e.raw(i, r); err != nil {
		return err
	}
	ctx := context.Background()
	var id string
	err := timed(i, r.run, func() (err error) {
		id, err = e.pods.RunPod(ctx, podConfig(i, runtimeapi.NamespaceMode_POD, "shared"), "")
		return err
	})
	if err != nil {
		return err
	}
	_ = timed(i, r.status, func() error { _, _, err := e.pods.PodStatus(id, false); return err })
	_ = timed(i, r.list, func() error { e.pods.ListPods(nil); return nil })
	if err := timed(i, r.stop, func() error { return e.pods.StopPod(ctx, id) }); err != nil {
		return err
	}
	if err := timed(i, r.remove, func() error { return e.pods.RemovePod(ctx, id) }); err != nil {
		return err
	}
	err = timed(i, r.runNoPause, func() (err error) {
		id, err = e.pods.RunPod(ctx, podConfig(i, runtimeapi.NamespaceMode_CONTAINER, "per-container"), "")
		return err
	})
	if err != nil {
		return err
	}
	if err := timed(i, r.stopNoPause, func() error { return e.pods.StopPod(ctx, id) }); err != nil {
		return err
	}
	return timed(i, r.removeNoPause, func() error { return e.pods.RemovePod(ctx, id) })
}

// raw measures the floor: runc run and kill+delete of pause, libcni ADD and DEL.
func (e *env) raw(i int, r *rows) error {
	id := fmt.Sprintf("raw-%d", i+1)
	bundle, err := e.rawPauseBundle(id)
	if err != nil {
		return err
	}
	pidFile := filepath.Join(bundle, "pid")
	err = timed(i, r.rawRun, func() error {
		return e.runc_("run", "--detach", "--bundle="+bundle, "--pid-file="+pidFile, id)
	})
	if err != nil {
		return err
	}
	err = timed(i, r.rawStop, func() error {
		if err := e.runc_("kill", id, "KILL"); err != nil {
			return err
		}
		data, _ := os.ReadFile(pidFile)
		var pid int
		fmt.Sscan(string(data), &pid)
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil) // the benchmark is a subreaper: pause is its child
		return e.runc_("delete", id)
	})
	if err != nil {
		return err
	}
	_ = os.RemoveAll(bundle)
	pinned, err := e.pinNet(id)
	if err != nil {
		return err
	}
	defer pinned.Remove()
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: pinned.Net, IfName: "eth0", Args: [][2]string{
		{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "bench"}, {"K8S_POD_NAME", id}, {"K8S_POD_INFRA_CONTAINER_ID", id},
	}}
	ctx := context.Background()
	if err := timed(i, r.rawAdd, func() error { _, err := e.cni.AddNetworkList(ctx, e.netConf, rt); return err }); err != nil {
		return err
	}
	return timed(i, r.rawDel, func() error { return e.cni.DelNetworkList(ctx, e.netConf, rt) })
}

// runc_ execs runc with the benchmark's state root, stdio on /dev/null.
func (e *env) runc_(args ...string) error {
	cmd := exec.Command(e.runc, append([]string{"--root=" + filepath.Join(e.dir, "rawrunc")}, args...)...)
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	cmd.Stdin, cmd.Stdout = null, null
	out, err := os.CreateTemp(e.dir, "runc-stderr-")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stderr = out
	if err := cmd.Run(); err != nil {
		msg, _ := os.ReadFile(out.Name())
		return fmt.Errorf("runc %v: %v: %s", args, err, msg)
	}
	return nil
}
