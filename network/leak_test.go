package network

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/berth-runtime/berth/internal/nspin"
	"github.com/berth-runtime/berth/network/cnitest"
)

// TestNoLeaks sets up and tears down 20 pods from 5 goroutines, each pod with its own
// namespace and a host port, and then looks for anything left behind.
func TestNoLeaks(t *testing.T) {
	n := newTestNet(t, netOpts{snat: true})
	root := t.TempDir()
	const pods, workers = 20, 5
	base := freePort(t)

	type outcome struct {
		pod   Pod
		veth  string
		chain string
		err   error
	}
	results := make(chan outcome, pods)
	next := make(chan int, pods)
	for i := range pods {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				o := outcome{}
				o.pod, o.veth, o.err = leakRound(t, n, root, i, base+i)
				o.chain = n.dnatChain(o.pod.ID)
				results <- o
			}
		})
	}
	wg.Wait()
	close(results)

	var needles, veths []string
	for o := range results {
		if o.err != nil {
			t.Error(o.err)
		}
		needles = append(needles, o.pod.ID, o.chain)
		veths = append(veths, o.veth)
	}
	if ips := cnitest.Allocated(t, n.dataDir, n.name); len(ips) != 0 {
		t.Errorf("addresses left: %v", ips)
	}
	if ports := cnitest.BridgePorts(t, n.bridge); len(ports) != 0 {
		t.Errorf("bridge ports left: %v", ports)
	}
	for _, v := range veths {
		if v != "" {
			waitGone(t, v)
		}
	}
	if rules := cnitest.IPTablesMentions(t, needles...); len(rules) != 0 {
		t.Errorf("iptables rules left: %q", rules)
	}
	if m := cnitest.MountsUnder(t, root); len(m) != 0 {
		t.Errorf("namespace mounts left: %q", m)
	}
	if entries, _ := os.ReadDir(filepath.Join(n.cacheDir, "results")); len(entries) != 0 {
		t.Errorf("CNI cache entries left: %d", len(entries))
	}
}

// leakRound is one pod's life: pin, Setup, Teardown, unpin. It returns the pod and its
// host veth.
func leakRound(t *testing.T, n *testNet, root string, i, hostPort int) (Pod, string, error) {
	id := fmt.Sprintf("%032x", time.Now().UnixNano()+int64(i))
	p := Pod{ID: id, Name: fmt.Sprint("leak-", i), Namespace: "test", UID: id[:8],
		PortMappings: []PortMapping{{HostPort: int32(hostPort), ContainerPort: 80}}}
	pinned, err := nspin.Pin(filepath.Join(root, fmt.Sprint(i)), nspin.Net)
	if err != nil {
		return p, "", err
	}
	defer func() { _ = pinned.Remove() }()
	p.NetNS = pinned.Net
	ctx := testCtx(t)
	r, err := n.m.Setup(ctx, p)
	if err != nil {
		return p, "", err
	}
	veth := hostVeth(t, r)
	if err := n.m.Teardown(ctx, p); err != nil {
		return p, veth, err
	}
	return p, veth, pinned.Remove()
}

// TestLatency measures Setup and Teardown of one pod at a time on the test network (no
// port mappings, loopback beside the network): the figures quoted for RunPodSandbox.
func TestLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("measures latency")
	}
	n := newTestNet(t, netOpts{noLoopback: true})
	ctx := testCtx(t)
	const rounds = 20
	var setup, teardown, teardownGone []time.Duration
	for i := range rounds {
		p := n.pod(t, fmt.Sprint("lat-", i))
		t0 := time.Now()
		if _, err := n.m.Setup(ctx, p); err != nil {
			t.Fatal(err)
		}
		setup = append(setup, time.Since(t0))
		if i%2 == 1 { // every other pod: namespace removed first, as after StopPodSandbox
			if err := nspin.Unpin(p.NetNS); err != nil {
				t.Fatal(err)
			}
		}
		t0 = time.Now()
		if err := n.m.Teardown(ctx, p); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			teardownGone = append(teardownGone, time.Since(t0))
		} else {
			teardown = append(teardown, time.Since(t0))
		}
	}
	t.Logf("Setup p50 %v p90 %v; Teardown p50 %v p90 %v; Teardown with namespace gone p50 %v p90 %v",
		pct(setup, 50), pct(setup, 90), pct(teardown, 50), pct(teardown, 90), pct(teardownGone, 50), pct(teardownGone, 90))
}

func pct(d []time.Duration, p int) time.Duration {
	d = slices.Clone(d)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[(len(d)-1)*p/100]
}
