package network

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/network/cnitest"
)

// defaultListShape is what a test reads back from a rendered default network.
type defaultListShape struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Plugins    []struct {
		Type   string `json:"type"`
		Bridge string `json:"bridge"`
		IPMasq *bool  `json:"ipMasq"`
		IPAM   struct {
			Type    string                `json:"type"`
			Ranges  [][]map[string]string `json:"ranges"`
			Routes  []map[string]string   `json:"routes"`
			DataDir string                `json:"dataDir"`
		} `json:"ipam"`
		Capabilities map[string]bool `json:"capabilities"`
	} `json:"plugins"`
}

func TestDefaultNetworkConfList(t *testing.T) {
	tests := []struct {
		name       string
		def        DefaultNetwork
		wantName   string
		wantBridge string
		wantMasq   bool
		wantRanges []string
		wantRoutes []string
		wantErr    bool
	}{
		{name: "zero value is the node default", wantName: "berth", wantBridge: "berth0", wantMasq: true,
			wantRanges: []string{"10.88.0.0/16"}, wantRoutes: []string{"0.0.0.0/0"}},
		{name: "test network", def: DefaultNetwork{Name: "t", Bridge: "bt0", Subnets: []string{"10.199.1.0/24"}, NoIPMasq: true, DataDir: "/x"},
			wantName: "t", wantBridge: "bt0", wantRanges: []string{"10.199.1.0/24"}, wantRoutes: []string{"0.0.0.0/0"}},
		{name: "dual stack", def: DefaultNetwork{Subnets: []string{"10.1.0.0/16", "fd00:1::/64"}}, wantName: "berth", wantBridge: "berth0",
			wantMasq: true, wantRanges: []string{"10.1.0.0/16", "fd00:1::/64"}, wantRoutes: []string{"0.0.0.0/0", "::/0"}},
		{name: "bridge name too long", def: DefaultNetwork{Bridge: "a-very-long-bridge"}, wantErr: true},
		{name: "bad subnet", def: DefaultNetwork{Subnets: []string{"10.1.0.0"}}, wantErr: true},
		{name: "bad network name", def: DefaultNetwork{Name: "a b"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.def.confList()
			if tt.wantErr {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err = %v, want invalid argument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var l defaultListShape
			if err := json.Unmarshal(b, &l); err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, p := range l.Plugins {
				types = append(types, p.Type)
			}
			if l.CNIVersion != "1.0.0" || l.Name != tt.wantName || !slices.Equal(types, []string{"bridge", "portmap", "bandwidth"}) {
				t.Fatalf("list %s", b)
			}
			br := l.Plugins[0]
			var ranges, routes []string
			for _, r := range br.IPAM.Ranges {
				ranges = append(ranges, r[0]["subnet"])
			}
			for _, r := range br.IPAM.Routes {
				routes = append(routes, r["dst"])
			}
			if br.Bridge != tt.wantBridge || br.IPMasq == nil || *br.IPMasq != tt.wantMasq || br.IPAM.Type != "host-local" ||
				br.IPAM.DataDir != tt.def.DataDir || !slices.Equal(ranges, tt.wantRanges) || !slices.Equal(routes, tt.wantRoutes) {
				t.Errorf("bridge plugin %+v", br)
			}
			if !l.Plugins[1].Capabilities["portMappings"] || !l.Plugins[2].Capabilities["bandwidth"] {
				t.Errorf("capabilities not declared: %s", b)
			}
		})
	}
}

// fakeBin makes a plugin directory of shell scripts that succeed at everything except
// the commands listed in fail.
func fakeBin(t *testing.T, plugins []string, fail map[string]string) string {
	dir := t.TempDir()
	for _, p := range plugins {
		script := "#!/bin/sh\n"
		if cmd, ok := fail[p]; ok {
			script += `if [ "$CNI_COMMAND" = ` + cmd + ` ]; then echo '{"cniVersion": "1.1.0", "code": 50, "msg": "` + p + ` not ready"}'; exit 1; fi` + "\n"
		}
		script += "exit 0\n"
		writeFile(t, filepath.Join(dir, p), script, 0o755)
	}
	return dir
}

func TestReloadFollowsTheDirectory(t *testing.T) {
	confDir := t.TempDir()
	bin := fakeBin(t, []string{"bridge", "host-local", "portmap", "bandwidth", "loopback", "ptp", "static"}, nil)
	m, err := New(Config{ConfDir: confDir, BinDirs: []string{bin}, CacheDir: t.TempDir(), Default: DefaultNetwork{Enabled: true}}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	using := func(want string) {
		t.Helper()
		c := m.current()
		if c.err != nil {
			t.Fatalf("config error: %v", c.err)
		}
		if got := c.list.Name + "@" + filepath.Base(c.source); got != want {
			t.Fatalf("using %s, want %s", got, want)
		}
	}
	using("berth@embedded default")

	conf := filepath.Join(confDir, "10-net.conflist")
	writeFile(t, conf, testConflist, 0o644)
	using("n@10-net.conflist")

	writeFile(t, filepath.Join(confDir, "05-broken.conf"), "{", 0o644)
	using("n@10-net.conflist") // broken files are skipped

	// Edited in place with the same size and possibly the same mtime granule: the
	// stamp still changes once the mtime does.
	time.Sleep(25 * time.Millisecond)
	writeFile(t, conf, strings.Replace(testConflist, `"name": "n"`, `"name": "m"`, 1), 0o644)
	using("m@10-net.conflist")

	writeFile(t, filepath.Join(confDir, "00-first.conf"), `{"cniVersion": "1.0.0", "name": "single", "type": "ptp"}`, 0o644)
	using("single@00-first.conf")
	if !m.current().ownLoopback {
		t.Error("a network without loopback must get berth's")
	}

	for _, f := range []string{"00-first.conf", "05-broken.conf", "10-net.conflist"} {
		if err := os.Remove(filepath.Join(confDir, f)); err != nil {
			t.Fatal(err)
		}
	}
	using("berth@embedded default")
}

func TestStatus(t *testing.T) {
	list := func(version string) string {
		return `{"cniVersion": "` + version + `", "name": "n", "plugins": [{"type": "ptp", "ipam": {"type": "static"}}, {"type": "loopback"}]}`
	}
	all := []string{"ptp", "static", "loopback"}
	tests := []struct {
		name    string
		conf    string
		plugins []string
		fail    map[string]string
		wantErr string
	}{
		{name: "ready", conf: list("1.0.0"), plugins: all},
		{name: "plugin missing", conf: list("1.0.0"), plugins: []string{"ptp", "loopback"}, wantErr: "static"},
		{name: "broken config", conf: "{", plugins: all, wantErr: "no valid CNI configuration"},
		{name: "CNI 1.1 STATUS succeeds", conf: list("1.1.0"), plugins: all},
		{name: "CNI 1.1 STATUS fails", conf: list("1.1.0"), plugins: all, fail: map[string]string{"ptp": "STATUS"}, wantErr: "ptp not ready"},
		{name: "STATUS is not sent before 1.1", conf: list("1.0.0"), plugins: all, fail: map[string]string{"ptp": "STATUS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			confDir := t.TempDir()
			writeFile(t, filepath.Join(confDir, "10-net.conflist"), tt.conf, 0o644)
			m, err := New(Config{ConfDir: confDir, BinDirs: []string{fakeBin(t, tt.plugins, tt.fail)}, CacheDir: t.TempDir()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = m.Status(testCtx(t))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Fatalf("Status = %v, want a failed precondition mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewRejectsIncompleteConfig(t *testing.T) {
	for _, cfg := range []Config{
		{BinDirs: []string{"/b"}, CacheDir: "/c"},
		{ConfDir: "/a", CacheDir: "/c"},
		{ConfDir: "/a", BinDirs: []string{"/b"}},
		{ConfDir: "/a", BinDirs: []string{"/b"}, CacheDir: "/c", Default: DefaultNetwork{Subnets: []string{"x"}}},
	} {
		if _, err := New(cfg, nil); !errdefs.IsInvalidArgument(err) {
			t.Errorf("New(%+v) = %v, want invalid argument", cfg, err)
		}
	}
}

// TestDefaultNetworkSetup runs the embedded default network for real, on a test bridge
// and subnet without masquerading.
func TestDefaultNetworkSetup(t *testing.T) {
	n := newTestNet(t, netOpts{}) // for its bridge, subnet and cleanups
	m, err := New(Config{
		ConfDir: t.TempDir(), BinDirs: []string{pluginDir}, CacheDir: n.cacheDir,
		Default: DefaultNetwork{Enabled: true, Name: n.name, Bridge: n.bridge, Subnets: []string{n.subnet}, DataDir: n.dataDir, NoIPMasq: true},
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	n.m = m // pod cleanups tear down through the default network
	if c := m.current(); c.source != "embedded default" || !c.ownLoopback {
		t.Fatalf("not using the default network: %+v", c)
	}
	ctx := testCtx(t)
	p := n.pod(t, "p")
	r, err := m.Setup(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.IPs) != 1 || !strings.HasPrefix(r.IPs[0].String(), strings.TrimSuffix(n.subnet, "0/24")) {
		t.Fatalf("IPs %v, want one in %s", r.IPs, n.subnet)
	}
	if !loopbackUp(t, p.NetNS) {
		t.Error("lo is down")
	}
	if rules := cnitest.IPTablesMentions(t, n.subnet); len(rules) != 0 {
		t.Errorf("masquerade rules although NoIPMasq: %q", rules)
	}
	if err := m.Teardown(ctx, p); err != nil {
		t.Fatal(err)
	}
	if ips := cnitest.Allocated(t, n.dataDir, n.name); len(ips) != 0 {
		t.Errorf("addresses left: %v", ips)
	}
}

// TestDisabledDefaultWaitsForConfig: with the embedded network off, an empty directory
// is "no network yet" (a failed precondition that says why and how to turn it on), and
// a configuration written later is picked up by the next call, without a Reload.
func TestDisabledDefaultWaitsForConfig(t *testing.T) {
	parent := t.TempDir()
	confDir := filepath.Join(parent, "net.d") // absent at first, as on a fresh node
	bin := fakeBin(t, []string{"ptp", "static", "loopback"}, nil)
	m, err := New(Config{ConfDir: confDir, BinDirs: []string{bin}, CacheDir: t.TempDir()}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	for _, prepare := range []func(){func() {}, func() {
		if err := os.Mkdir(confDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}} {
		prepare()
		err := m.Status(ctx)
		if err == nil || !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "default_network") {
			t.Fatalf("Status with no configuration = %v, want a failed precondition naming default_network", err)
		}
		// A refused pod's undo finds nothing to tear down, rather than a failure that
		// would keep the pod listed.
		if err := m.Teardown(ctx, Pod{ID: "refused", Name: "p", Namespace: "ns"}); err != nil {
			t.Fatalf("Teardown with no configuration and nothing cached = %v, want nil", err)
		}
	}
	writeFile(t, filepath.Join(confDir, "10-net.conflist"), testConflist, 0o644)
	if err := m.Status(ctx); err != nil {
		t.Fatalf("Status after the configuration was written: %v", err)
	}
	if c := m.current(); c.err != nil || c.list.Name != "n" {
		t.Fatalf("using %+v, want network n", c)
	}
}
