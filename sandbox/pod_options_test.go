package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/nspin"
	"github.com/berth-runtime/berth/sandbox/cgroups"
	"github.com/berth-runtime/berth/sandbox/runtime"
)

// Short names of the namespace modes for the tables.
const (
	nsPod       = runtimeapi.NamespaceMode_POD
	nsContainer = runtimeapi.NamespaceMode_CONTAINER
	nsNode      = runtimeapi.NamespaceMode_NODE
	nsTarget    = runtimeapi.NamespaceMode_TARGET
)

func testService(t *testing.T) *Service {
	t.Helper()
	cgm, err := cgroups.NewManager(cgroups.Options{Root: t.TempDir(), Mode: cgroups.ModeUnified})
	if err != nil {
		t.Fatal(err)
	}
	return &Service{cfg: Config{
		DefaultHandler: "runc",
		Handlers: map[string]Handler{
			"runc":        {},
			"runc-userns": {Features: runtime.Features{UserNamespaces: true}},
			"crun":        {Err: errors.New("crun: executable file not found")},
		},
		Cgroups: cgm,
	}}
}

func TestParse(t *testing.T) {
	s := testService(t)
	node, _ := os.Hostname()
	tests := []struct {
		name  string
		edit  func(*runtimeapi.PodSandboxConfig)
		check func(*testing.T, *options)
	}{
		{name: "defaults: every namespace the pod's", check: func(t *testing.T, o *options) {
			if o.handler != "runc" || o.hostNetwork || o.hostIPC || !o.sharedPID || o.hostname != "p" {
				t.Errorf("%+v", o)
			}
		}},
		{name: "host network takes the node's hostname, drops ports", edit: func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = nsConfig(nsNode, nsContainer, nsNode)
			c.PortMappings = []*runtimeapi.PortMapping{{HostPort: 80, ContainerPort: 80}}
		}, check: func(t *testing.T, o *options) {
			if !o.hostNetwork || !o.hostIPC || o.sharedPID || o.hostname != node || len(o.ports) != 0 {
				t.Errorf("%+v", o)
			}
		}},
		{name: "PID TARGET is per container for the pod", edit: func(c *runtimeapi.PodSandboxConfig) { c.Linux = nsConfig(nsPod, nsTarget, nsPod) },
			check: func(t *testing.T, o *options) {
				if o.sharedPID {
					t.Error("TARGET made a shared PID namespace")
				}
			}},
		{name: "ports, protocols, bandwidth", edit: func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{
				{HostPort: 8080, ContainerPort: 80, Protocol: runtimeapi.Protocol_UDP, HostIp: "127.0.0.1"},
				{ContainerPort: 9090},
			}
			c.Annotations = map[string]string{"kubernetes.io/egress-bandwidth": "10M"}
		}, check: func(t *testing.T, o *options) {
			if len(o.ports) != 1 || o.ports[0].Protocol != "udp" || o.ports[0].HostIP != "127.0.0.1" {
				t.Errorf("ports %+v", o.ports)
			}
			if o.bandwidth == nil || o.bandwidth.EgressRate != 10_000_000 {
				t.Errorf("bandwidth %+v", o.bandwidth)
			}
		}},
		{name: "user namespace of the pod", edit: userns(nsPod, idMapping(0, 1000, 100000)), check: func(t *testing.T, o *options) {
			if o.userns == nil || o.userns.uids[0].HostID != 1000 || o.userns.gids[0].Size != 100000 {
				t.Fatalf("userns %+v", o.userns)
			}
			if uid, gid := o.userns.hostRoot(); uid != 1000 || gid != 1000 || o.userns.pauseID() != 65535 {
				t.Errorf("root %d:%d, pause %d", uid, gid, o.userns.pauseID())
			}
		}},
		{name: "pod resources with overhead", edit: func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.CgroupParent = "/kubepods/pod1"
			c.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuShares: 100}
			c.Linux.Overhead = &runtimeapi.LinuxContainerResources{CpuShares: 10}
		}, check: func(t *testing.T, o *options) {
			if o.cgroupParent != "/kubepods/pod1" || o.resources.CPUShares != 110 {
				t.Errorf("%+v %+v", o, o.resources)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := basePodConfig()
			if tc.edit != nil {
				tc.edit(cfg)
			}
			handler := ""
			if cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions() != nil {
				handler = "runc-userns"
			}
			o, err := s.parse(cfg, handler)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

// TestParseRefuses: each request is refused with the error class kubelet must see.
func TestParseRefuses(t *testing.T) {
	s := testService(t)
	tests := []struct {
		name    string
		handler string
		edit    func(*runtimeapi.PodSandboxConfig)
		class   error
	}{
		{name: "unknown handler", handler: "kata", class: errdefs.ErrInvalidArgument},
		{name: "handler without its binary", handler: "crun", class: errdefs.ErrFailedPrecondition},
		{name: "no namespace", edit: func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = "" }, class: errdefs.ErrInvalidArgument},
		{name: "IPC per container", edit: func(c *runtimeapi.PodSandboxConfig) { c.Linux = nsConfig(nsPod, nsPod, nsContainer) }, class: errdefs.ErrInvalidArgument},
		{name: "network TARGET", edit: func(c *runtimeapi.PodSandboxConfig) { c.Linux = nsConfig(nsTarget, nsPod, nsPod) }, class: errdefs.ErrInvalidArgument},
		{name: "user namespace, runtime without idmapped mounts", edit: userns(nsPod, idMapping(0, 1000, 65536)),
			class: errdefs.ErrFailedPrecondition},
		{name: "user namespace without maps", handler: "runc-userns", edit: userns(nsPod), class: errdefs.ErrInvalidArgument},
		{name: "user namespace, two ranges", handler: "runc-userns",
			edit: userns(nsPod, idMapping(0, 1000, 100000), idMapping(0, 2000, 100000)), class: errdefs.ErrInvalidArgument},
		{name: "user namespace, root not mapped", handler: "runc-userns", edit: userns(nsPod, idMapping(1, 1000, 100000)),
			class: errdefs.ErrInvalidArgument},
		{name: "user namespace, empty range", handler: "runc-userns", edit: userns(nsPod, idMapping(0, 1000, 0)),
			class: errdefs.ErrInvalidArgument},
		{name: "user namespace, range past the last id", handler: "runc-userns",
			edit: userns(nsPod, idMapping(0, 0xffff0000, 0x10000)), class: errdefs.ErrInvalidArgument},
		{name: "user namespace mode CONTAINER", handler: "runc-userns", edit: userns(nsContainer), class: errdefs.ErrInvalidArgument},
		{name: "user namespace mode TARGET", handler: "runc-userns", edit: userns(nsTarget), class: errdefs.ErrInvalidArgument},
		{name: "node's user namespace with maps", handler: "runc-userns", edit: userns(nsNode, idMapping(0, 1000, 65536)),
			class: errdefs.ErrInvalidArgument},
		{name: "user namespace with the node's network", handler: "runc-userns", edit: func(c *runtimeapi.PodSandboxConfig) {
			userns(nsPod, idMapping(0, 1000, 65536))(c)
			c.Linux.SecurityContext.NamespaceOptions.Network = nsNode
		}, class: errdefs.ErrInvalidArgument},
		{name: "IPC sysctl in the node's IPC namespace", edit: func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = nsConfig(nsPod, nsPod, nsNode)
			c.Linux.Sysctls = map[string]string{"kernel.msgmax": "1"}
		}, class: errdefs.ErrInvalidArgument},
		{name: "systemd slice under cgroupfs", edit: func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = "kubepods.slice" }, class: errdefs.ErrInvalidArgument},
		{name: "log directory with ..", edit: func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "/var/log/pods/../../etc" }, class: errdefs.ErrInvalidArgument},
		{name: "container port 0 with a host port", edit: func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{HostPort: 80}}
		}, class: errdefs.ErrInvalidArgument},
		{name: "DNS server not an address", edit: func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"dns.local"}}
		}, class: errdefs.ErrInvalidArgument},
		{name: "bad resources", edit: func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuQuota: 5}
		}, class: errdefs.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := basePodConfig()
			if tc.edit != nil {
				tc.edit(cfg)
			}
			if _, err := s.parse(cfg, tc.handler); !errors.Is(err, tc.class) {
				t.Fatalf("parse = %v, want an error of class %v", err, tc.class)
			}
		})
	}
}

// userns sets the pod's user namespace mode and (the same) uid and gid maps.
func userns(mode runtimeapi.NamespaceMode, maps ...*runtimeapi.IDMapping) func(*runtimeapi.PodSandboxConfig) {
	return func(c *runtimeapi.PodSandboxConfig) {
		c.Linux = nsConfig(nsPod, nsPod, nsPod)
		c.Linux.SecurityContext.NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: mode, Uids: maps, Gids: maps}
	}
}

func idMapping(ctr, host, length uint32) *runtimeapi.IDMapping {
	return &runtimeapi.IDMapping{ContainerId: ctr, HostId: host, Length: length}
}

func basePodConfig() *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u"},
		Hostname: "p",
		Linux:    &runtimeapi.LinuxPodSandboxConfig{},
	}
}

func nsConfig(network, pid, ipc runtimeapi.NamespaceMode) *runtimeapi.LinuxPodSandboxConfig {
	return &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: network, Pid: pid, Ipc: ipc},
	}}
}

func TestFingerprint(t *testing.T) {
	cfg := func() *runtimeapi.PodSandboxConfig {
		return &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u"},
			Labels:   map[string]string{"a": "1", "b": "2", "c": "3"},
		}
	}
	a, _ := fingerprint(cfg(), "runc")
	b, _ := fingerprint(cfg(), "runc") // maps are encoded in a fixed order
	if a != b {
		t.Fatal("the same request has two fingerprints")
	}
	changed := cfg()
	changed.Labels["a"] = "x"
	for _, other := range []func() (string, error){
		func() (string, error) { return fingerprint(changed, "runc") },
		func() (string, error) { return fingerprint(cfg(), "crun") },
	} {
		if c, _ := other(); c == a {
			t.Error("a different request has the same fingerprint")
		}
	}
	if got := nameKey(cfg().Metadata); got != "p_ns_u_0" {
		t.Errorf("nameKey = %q", got)
	}
}

func TestCheckContainerUserns(t *testing.T) {
	maps := []*runtimeapi.IDMapping{idMapping(0, 1000, 65536)}
	other := []*runtimeapi.IDMapping{idMapping(0, 2000, 65536)}
	pod := &runtimeapi.UserNamespace{Mode: nsPod, Uids: maps, Gids: maps}
	node := &runtimeapi.UserNamespace{Mode: nsNode}
	for _, tc := range []struct {
		name     string
		pod, ctr *runtimeapi.UserNamespace
		ok       bool
	}{
		{"container says nothing", pod, nil, true},
		{"same as the pod", pod, &runtimeapi.UserNamespace{Mode: nsPod, Uids: maps, Gids: maps}, true},
		{"node, pod says nothing", nil, node, true},
		{"node in a user-namespaced pod", pod, node, false},
		{"own namespace in a node pod", nil, &runtimeapi.UserNamespace{Mode: nsPod, Uids: maps, Gids: maps}, false},
		{"other maps", pod, &runtimeapi.UserNamespace{Mode: nsPod, Uids: other, Gids: maps}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkContainerUserns(tc.pod, tc.ctr)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, errdefs.ErrInvalidArgument)) {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestSearchableByOthers(t *testing.T) {
	top := t.TempDir()
	open := filepath.Join(top, "open", "state")
	closed := filepath.Join(top, "closed", "state")
	for _, d := range []string{open, closed} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Dir(closed), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{top, filepath.Dir(top)} { // testing's temporary directories are 0700
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	if err := searchableByOthers(open, filepath.Join(open, "not-yet")); err != nil {
		t.Errorf("open: %v", err)
	}
	err := searchableByOthers(closed)
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), filepath.Dir(closed)) {
		t.Errorf("closed: %v, want FailedPrecondition naming %s", err, filepath.Dir(closed))
	}
}

func TestUsernsCheckMapped(t *testing.T) {
	m := []nspin.IDMap{{HostID: 1000, Size: 65536}}
	u := &podUserns{uids: m, gids: m}
	for _, tc := range []struct {
		user specs.User
		ok   bool
	}{
		{specs.User{UID: 0, GID: 0}, true},
		{specs.User{UID: 65535, GID: 65535, AdditionalGids: []uint32{1, 2}}, true},
		{specs.User{UID: 65536, GID: 0}, false},
		{specs.User{UID: 0, GID: 70000}, false},
		{specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{65536}}, false},
	} {
		err := u.checkMapped(tc.user)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, errdefs.ErrInvalidArgument)) {
			t.Errorf("%+v: %v, want ok %v", tc.user, err, tc.ok)
		}
	}
	var none *podUserns
	if err := none.checkMapped(specs.User{UID: 1 << 31}); err != nil {
		t.Errorf("without a user namespace: %v", err)
	}
}
