package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// mem is a process's resident and proportional set size, in kB.
type mem struct{ rss, pss int }

func (m mem) add(o mem) mem { return mem{m.rss + o.rss, m.pss + o.pss} }

// smapsRollup reads Rss and Pss of pid from /proc/<pid>/smaps_rollup.
func smapsRollup(pid int) (mem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return mem{}, err
	}
	defer f.Close()
	var m mem
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "Rss:":
			m.rss = v
		case "Pss:":
			m.pss = v
		}
	}
	return m, sc.Err()
}

// podMem is what one pod costs: its container's monitor and the pod's pause (0 when
// the pod has none).
type podMem struct{ monitor, pause mem }

func (p podMem) total() mem { return p.monitor.add(p.pause) }

// measurePod reads the memory of the pod's monitor and pause.
func measurePod(monitorPid, pausePid int) (podMem, error) {
	var p podMem
	var err error
	if p.monitor, err = smapsRollup(monitorPid); err != nil {
		return p, fmt.Errorf("monitor %d: %w", monitorPid, err)
	}
	if pausePid > 0 {
		if p.pause, err = smapsRollup(pausePid); err != nil {
			return p, fmt.Errorf("pause %d: %w", pausePid, err)
		}
	}
	return p, nil
}

// memReport is the memory part of the output.
type memReport struct {
	one     podMem   // the first pod, alone
	firstN  podMem   // the first pod again, with all of them running
	all     []podMem // every pod, all of them running
	withPod bool     // pods have a pause
}

func (r *memReport) print(w io.Writer) {
	if len(r.all) == 0 {
		return
	}
	var sum podMem
	minM, maxM := r.all[0].monitor, r.all[0].monitor
	for _, p := range r.all {
		sum.monitor, sum.pause = sum.monitor.add(p.monitor), sum.pause.add(p.pause)
		minM.rss, minM.pss = min(minM.rss, p.monitor.rss), min(minM.pss, p.monitor.pss)
		maxM.rss, maxM.pss = max(maxM.rss, p.monitor.rss), max(maxM.pss, p.monitor.pss)
	}
	n := len(r.all)
	mean := podMem{monitor: mem{sum.monitor.rss / n, sum.monitor.pss / n}, pause: mem{sum.pause.rss / n, sum.pause.pss / n}}
	fmt.Fprintf(w, "\nmemory (kB, /proc/<pid>/smaps_rollup) of berth-monitor holding one busybox sleep:\n")
	fmt.Fprintf(w, "  %-24s monitor RSS %6d  PSS %6d\n", "1 container running:", r.one.monitor.rss, r.one.monitor.pss)
	fmt.Fprintf(w, "  %-24s monitor RSS %6d  PSS %6d  (mean of all; RSS %d..%d, PSS %d..%d)\n",
		fmt.Sprintf("%d containers running:", n), mean.monitor.rss, mean.monitor.pss, minM.rss, maxM.rss, minM.pss, maxM.pss)
	fmt.Fprintf(w, "  %-24s monitor RSS %6d  PSS %6d\n", "  the first one again:", r.firstN.monitor.rss, r.firstN.monitor.pss)
	fmt.Fprintf(w, "  %-24s   total RSS %6d  PSS %6d\n", fmt.Sprintf("all %d monitors:", n), sum.monitor.rss, sum.monitor.pss)
	if !r.withPod {
		fmt.Fprintf(w, "  per pod (monitor; no pause: a PID namespace per container): RSS %d  PSS %d with 1 pod, RSS %d  PSS %d with %d\n",
			r.one.total().rss, r.one.total().pss, mean.total().rss, mean.total().pss, n)
		return
	}
	fmt.Fprintf(w, "  pause:                  RSS %d  PSS %d alone, RSS %d  PSS %d with %d pods\n",
		r.one.pause.rss, r.one.pause.pss, mean.pause.rss, mean.pause.pss, n)
	fmt.Fprintf(w, "  per pod (monitor + pause): RSS %d  PSS %d with 1 pod, RSS %d  PSS %d with %d\n",
		r.one.total().rss, r.one.total().pss, mean.total().rss, mean.total().pss, n)
}
