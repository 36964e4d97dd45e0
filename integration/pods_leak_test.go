package integration

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestPodLeaks runs, stops and removes 50 pods one after another, then 50 more from 10
// goroutines at once, and checks that no namespace, address, veth, mount, record,
// runtime state, pause or cgroup is left. The serial round logs the latency of each
// call as berthd's client sees it.
func TestPodLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 100 pods")
	}
	n := newTestNetwork(t)
	d := startPodDaemon(t, n, "")
	const pods = 50
	var ids []string
	var pids []int
	var mu sync.Mutex
	var runs, stops, removes []time.Duration
	cycle := func(t *testing.T, name string) {
		start := time.Now()
		id := d.runPod(t, podConfig(t, name))
		ran := time.Now()
		_, info := d.podStatus(t, id)
		stopStart := time.Now()
		d.stopPod(t, id)
		stopped := time.Now()
		d.removePod(t, id)
		removed := time.Now()
		mu.Lock()
		defer mu.Unlock()
		ids, pids = append(ids, id), append(pids, info.Pid)
		runs = append(runs, ran.Sub(start))
		stops = append(stops, stopped.Sub(stopStart))
		removes = append(removes, removed.Sub(stopped))
	}
	for i := range pods {
		cycle(t, fmt.Sprintf("serial-%d", i))
	}
	t.Logf("serial, %d pods: RunPodSandbox %s; StopPodSandbox %s; RemovePodSandbox %s",
		pods, percentiles(runs), percentiles(stops), percentiles(removes))
	waitNoLeftovers(t, d, n, pids, ids)

	runs, stops, removes = nil, nil, nil
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Go(func() {
			for i := range pods / 10 {
				cycle(t, fmt.Sprintf("parallel-%d-%d", g, i))
			}
		})
	}
	wg.Wait()
	t.Logf("10 goroutines, %d pods: RunPodSandbox %s; StopPodSandbox %s; RemovePodSandbox %s",
		pods, percentiles(runs), percentiles(stops), percentiles(removes))
	waitNoLeftovers(t, d, n, pids, ids)
}

// percentiles formats the p50 and p95 of ds.
func percentiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p int) time.Duration { return s[min(len(s)-1, len(s)*p/100)].Round(100 * time.Microsecond) }
	return fmt.Sprintf("p50 %v p95 %v", at(50), at(95))
}
