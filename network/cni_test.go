package network

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/nspin"
	"github.com/berth-runtime/berth/network/cnitest"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// echoServer listens on addr inside the namespace at netns and echoes one line per
// connection until the test ends. It returns the address it listens on.
func echoServer(t *testing.T, netns, addr string) string {
	t.Helper()
	var ln net.Listener
	err := nspin.Run(netns, nspin.Net, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				_, _ = c.Write([]byte("echo " + line))
			}()
		}
	}()
	return ln.Addr().String()
}

// ping dials addr (from inside netns when it is set) and expects the echo.
func ping(netns, addr string) error {
	do := func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		got, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if got != "echo ping\n" {
			return fmt.Errorf("got %q", got)
		}
		return nil
	}
	if netns == "" {
		return do()
	}
	return nspin.Run(netns, nspin.Net, do)
}

func loopbackUp(t *testing.T, netns string) bool {
	t.Helper()
	var up bool
	err := nspin.Run(netns, nspin.Net, func() error {
		lo, err := net.InterfaceByName("lo")
		if err == nil {
			up = lo.Flags&net.FlagUp != 0
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return up
}

func TestPodToPod(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts netOpts
	}{
		{"loopback in the network", netOpts{}},
		{"berth's own loopback", netOpts{noLoopback: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNet(t, tt.opts)
			ctx := testCtx(t)
			a, b := n.pod(t, "a"), n.pod(t, "b")
			ra, err := n.m.Setup(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			rb, err := n.m.Setup(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			_, subnet, _ := net.ParseCIDR(n.subnet)
			for _, r := range []Result{ra, rb} {
				if len(r.IPs) != 1 || !subnet.Contains(r.IPs[0]) || r.Interface != "eth0" || r.Network != n.name {
					t.Fatalf("result %+v: want one address in %s on eth0", r, n.subnet)
				}
			}
			if ra.IPs[0].Equal(rb.IPs[0]) {
				t.Fatalf("both pods got %s", ra.IPs[0])
			}
			for _, p := range []Pod{a, b} {
				if !loopbackUp(t, p.NetNS) {
					t.Errorf("lo is down in %s", p)
				}
				if err := n.m.Check(ctx, p); err != nil {
					t.Errorf("Check: %v", err)
				}
			}
			if ids, err := n.m.AttachedPods(); err != nil || !slices.Contains(ids, a.ID) || !slices.Contains(ids, b.ID) || len(ids) != 2 {
				t.Errorf("AttachedPods = %v, %v; want %s and %s", ids, err, a.ID, b.ID)
			}
			if cached, err := n.m.CachedResult(a); err != nil || !slices.EqualFunc(cached.IPs, ra.IPs, net.IP.Equal) {
				t.Errorf("CachedResult = %+v, %v; want %v", cached, err, ra.IPs)
			}

			addr := echoServer(t, a.NetNS, net.JoinHostPort(ra.IPs[0].String(), "0"))
			if err := ping(b.NetNS, addr); err != nil {
				t.Fatalf("pod b cannot reach pod a at %s: %v", addr, err)
			}

			vethA := hostVeth(t, ra)
			for i := range 2 {
				if err := n.m.Teardown(ctx, a); err != nil {
					t.Fatalf("Teardown #%d: %v", i+1, err)
				}
			}
			if slices.Contains(cnitest.Allocated(t, n.dataDir, n.name), ra.IPs[0].String()) {
				t.Errorf("%s still allocated after Teardown", ra.IPs[0])
			}
			waitGone(t, vethA)
			if err := n.m.Check(ctx, a); !errdefs.IsNotFound(err) {
				t.Errorf("Check after Teardown = %v, want not found", err)
			}
			if err := n.m.Teardown(ctx, b); err != nil {
				t.Fatal(err)
			}
			if ips, ports := cnitest.Allocated(t, n.dataDir, n.name), cnitest.BridgePorts(t, n.bridge); len(ips)+len(ports) != 0 {
				t.Errorf("left behind: addresses %v, bridge ports %v", ips, ports)
			}
			if ids, err := n.m.AttachedPods(); err != nil || len(ids) != 0 {
				t.Errorf("AttachedPods after Teardown = %v, %v", ids, err)
			}
		})
	}
}

// TestTeardown covers the ways a pod's network can be found at Teardown.
func TestTeardown(t *testing.T) {
	tests := []struct {
		name string
		// before runs between Setup and Teardown; it returns the pod and the manager
		// to tear down with.
		before func(t *testing.T, n *testNet, p Pod, r Result) (Pod, *Manager)
	}{
		{"twice", func(t *testing.T, n *testNet, p Pod, _ Result) (Pod, *Manager) {
			if err := n.m.Teardown(testCtx(t), p); err != nil {
				t.Fatal(err)
			}
			return p, n.m
		}},
		{"namespace already removed", func(t *testing.T, n *testNet, p Pod, _ Result) (Pod, *Manager) {
			if err := nspin.Unpin(p.NetNS); err != nil {
				t.Fatal(err)
			}
			return p, n.m
		}},
		{"no namespace path given", func(t *testing.T, n *testNet, p Pod, _ Result) (Pod, *Manager) {
			p.NetNS = "" // the cached path is used while it lives
			return p, n.m
		}},
		{"berthd restarted", func(t *testing.T, n *testNet, p Pod, _ Result) (Pod, *Manager) {
			m, err := New(Config{ConfDir: n.confDir, BinDirs: []string{pluginDir}, CacheDir: n.cacheDir}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			return p, m
		}},
		{"configuration changed since ADD", func(t *testing.T, n *testNet, p Pod, _ Result) (Pod, *Manager) {
			other := strings.NewReplacer(n.name, "berth-test-other", n.bridge, "btother").Replace(n.conflist(netOpts{}))
			writeFile(t, filepath.Join(n.confDir, "10-test.conflist"), other, 0o644)
			return p, n.m
		}},
		{"plugin state partly gone", func(t *testing.T, n *testNet, p Pod, r Result) (Pod, *Manager) {
			if err := os.Remove(filepath.Join(n.dataDir, n.name, r.IPs[0].String())); err != nil {
				t.Fatal(err)
			}
			deleteLink(t, hostVeth(t, r))
			return p, n.m
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNet(t, netOpts{})
			ctx := testCtx(t)
			p := n.pod(t, "p")
			p.PortMappings = []PortMapping{{HostPort: int32(freePort(t)), ContainerPort: 80}}
			r, err := n.m.Setup(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			veth, chain := hostVeth(t, r), n.dnatChain(p.ID)
			if len(cnitest.IPTablesMentions(t, chain)) == 0 {
				t.Fatalf("no DNAT chain %s after Setup", chain)
			}
			p2, m := tt.before(t, n, p, r)
			p2.PortMappings = nil // what ADD did comes from the cache
			if err := m.Teardown(ctx, p2); err != nil {
				t.Fatal(err)
			}
			if ips := cnitest.Allocated(t, n.dataDir, n.name); len(ips) != 0 {
				t.Errorf("addresses still allocated: %v", ips)
			}
			waitGone(t, veth)
			if rules := cnitest.IPTablesMentions(t, chain, p.ID); len(rules) != 0 {
				t.Errorf("iptables rules left: %q", rules)
			}
			if entries, _ := os.ReadDir(filepath.Join(n.cacheDir, "results")); len(entries) != 0 {
				t.Errorf("CNI cache entries left: %v", entries)
			}
		})
	}
}

// fakePlugin installs a shell-script CNI plugin that fails ADD with msg and succeeds at
// everything else.
func fakePlugin(t *testing.T, dir, name, msg string) {
	script := fmt.Sprintf(`#!/bin/sh
if [ "$CNI_COMMAND" = ADD ]; then
  echo '{"cniVersion": "1.0.0", "code": 999, "msg": "%s"}'
  exit 1
fi
exit 0
`, msg)
	writeFile(t, filepath.Join(dir, name), script, 0o755)
}

func TestSetupErrors(t *testing.T) {
	n := newTestNet(t, netOpts{})
	ctx := testCtx(t)
	// A plugin directory without portmap, and with a plugin that fails ADD.
	bin := t.TempDir()
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if err := os.Symlink(filepath.Join(pluginDir, p), filepath.Join(bin, p)); err != nil {
			t.Fatal(err)
		}
	}
	fakePlugin(t, bin, "failing", "injected failure")
	failing := strings.Replace(n.conflist(netOpts{}), `"type":"portmap"`, `"type":"failing"`, 1)

	tests := []struct {
		name    string
		conf    string // replaces the test network's conflist
		pod     func(Pod) Pod
		wantIs  error
		wantMsg string
	}{
		{name: "plugin not installed", wantIs: errdefs.ErrFailedPrecondition, wantMsg: "portmap"},
		{name: "not a namespace", pod: func(p Pod) Pod { p.NetNS = bin; return p }, wantIs: errdefs.ErrInvalidArgument},
		{name: "unknown protocol", pod: func(p Pod) Pod {
			p.PortMappings = []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "icmp"}}
			return p
		}, wantIs: errdefs.ErrInvalidArgument},
		{name: "no pod id", pod: func(p Pod) Pod { p.ID = ""; return p }, wantIs: errdefs.ErrInvalidArgument},
		{name: "plugin fails: ADD is undone", conf: failing, wantMsg: "injected failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			confDir := t.TempDir()
			writeFile(t, filepath.Join(confDir, "10-test.conflist"), cmpOr(tt.conf, n.conflist(netOpts{})), 0o644)
			m, err := New(Config{ConfDir: confDir, BinDirs: []string{bin}, CacheDir: n.cacheDir}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			p := n.pod(t, "p")
			if tt.pod != nil {
				p = tt.pod(p)
			}
			_, err = m.Setup(ctx, p)
			if err == nil || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Setup error = %v, want %v containing %q", err, tt.wantIs, tt.wantMsg)
			}
			if ips, ports := cnitest.Allocated(t, n.dataDir, n.name), cnitest.BridgePorts(t, n.bridge); len(ips)+len(ports) != 0 {
				t.Errorf("failed Setup left addresses %v, bridge ports %v", ips, ports)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// freePort picks a TCP port no one on the host listens on.
func freePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		x, _ := rand.Int(rand.Reader, big.NewInt(20000))
		port := 20000 + int(x.Int64())
		if ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port)); err == nil {
			_ = ln.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// ipInNetNS runs ip(8) inside netns.
func ipInNetNS(t *testing.T, netns string, args ...string) {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + netns, "ip"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
}

func TestCheckNoticesMissingInterface(t *testing.T) {
	n := newTestNet(t, netOpts{})
	ctx := testCtx(t)
	p := n.pod(t, "p")
	if _, err := n.m.Setup(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := n.m.Check(ctx, p); err != nil {
		t.Fatal(err)
	}
	ipInNetNS(t, p.NetNS, "link", "del", "eth0")
	if err := n.m.Check(ctx, p); err == nil {
		t.Fatal("Check passed with eth0 deleted")
	}
}
