package podfiles

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestValidateDNS(t *testing.T) {
	tests := []struct {
		name string
		dns  *DNS
		ok   bool
	}{
		{"nil", nil, true},
		{"typical", &DNS{Servers: []string{"10.96.0.10", "fd00::10"}, Searches: []string{"ns.svc.cluster.local", "cluster.local"}, Options: []string{"ndots:5", "edns0"}}, true},
		{"server not an address", &DNS{Servers: []string{"dns.example"}}, false},
		{"newline in a search domain", &DNS{Searches: []string{"a\nnameserver 6.6.6.6"}}, false},
		{"blank in an option", &DNS{Options: []string{"ndots:5 rotate"}}, false},
		{"empty search domain", &DNS{Searches: []string{""}}, false},
		{"too many search domains", &DNS{Searches: strings.Split(strings.Repeat("a ", 33), " ")[:33]}, false},
		{"search line too long", &DNS{Searches: []string{strings.Repeat("a", 2049)}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateDNS(tc.dns)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateDNS = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errdefs.IsInvalidArgument(err) {
				t.Fatalf("error %v is not InvalidArgument", err)
			}
		})
	}
}

func TestValidateHostname(t *testing.T) {
	for h, ok := range map[string]bool{
		"":                      true,
		"web-0":                 true,
		"a.b.c":                 true,
		strings.Repeat("h", 64): true,
		strings.Repeat("h", 65): false,
		"two words":             false,
		"new\nline":             false,
		"a/b":                   false,
		"a#b":                   false,
	} {
		if err := ValidateHostname(h); (err == nil) != ok {
			t.Errorf("ValidateHostname(%q) = %v, want ok %v", h, err, ok)
		}
	}
}

func TestRenderResolvConf(t *testing.T) {
	got := string(RenderResolvConf(&DNS{
		Servers:  []string{"10.96.0.10", "10.96.0.11"},
		Searches: []string{"default.svc.cluster.local", "svc.cluster.local"},
		Options:  []string{"ndots:5", "timeout:1"},
	}))
	want := "# Written by berth from the pod's DNS configuration.\n" +
		"search default.svc.cluster.local svc.cluster.local\n" +
		"nameserver 10.96.0.10\n" +
		"nameserver 10.96.0.11\n" +
		"options ndots:5 timeout:1\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := string(RenderResolvConf(&DNS{Servers: []string{"1.2.3.4"}})); strings.Contains(got, "search") || strings.Contains(got, "options") {
		t.Fatalf("empty lists rendered: %q", got)
	}
}

func TestRenderHosts(t *testing.T) {
	got := string(RenderHosts("web-0", []string{"10.1.0.5", "fd00::5"}))
	for _, line := range []string{"127.0.0.1\tlocalhost\n", "::1\tlocalhost ip6-localhost ip6-loopback\n", "10.1.0.5\tweb-0\n", "fd00::5\tweb-0\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("hosts lacks %q:\n%s", line, got)
		}
	}
	if got := string(RenderHosts("", []string{"10.1.0.5"})); strings.Contains(got, "10.1.0.5") {
		t.Errorf("address without a hostname rendered:\n%s", got)
	}
}

func TestWrite(t *testing.T) {
	node := t.TempDir()
	NodeHosts, NodeResolvConf = filepath.Join(node, "hosts"), filepath.Join(node, "resolv.conf")
	t.Cleanup(func() { NodeHosts, NodeResolvConf = "/etc/hosts", "/etc/resolv.conf" })
	writeFile(t, NodeHosts, "127.0.0.1 localhost node-1\n")
	writeFile(t, NodeResolvConf, "nameserver 192.0.2.53\n")

	tests := []struct {
		name                 string
		files                Files
		wantHosts, wantResol string
	}{
		{
			name:      "pod network, DNS config",
			files:     Files{Hostname: "web", IPs: []string{"10.1.0.5"}, DNS: &DNS{Servers: []string{"10.96.0.10"}}},
			wantHosts: "10.1.0.5\tweb\n", wantResol: "nameserver 10.96.0.10\n",
		},
		{
			name:      "pod network, no DNS config",
			files:     Files{Hostname: "web", IPs: []string{"10.1.0.5"}, DNS: &DNS{}},
			wantHosts: "10.1.0.5\tweb\n", wantResol: "nameserver 192.0.2.53\n",
		},
		{
			name:      "host network",
			files:     Files{Hostname: "node-1", HostNetwork: true},
			wantHosts: "127.0.0.1 localhost node-1\n", wantResol: "nameserver 192.0.2.53\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := Write(dir, tc.files); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, filepath.Join(dir, HostnameFile)); got != tc.files.Hostname+"\n" {
				t.Errorf("hostname = %q", got)
			}
			if got := readFile(t, filepath.Join(dir, HostsFile)); !strings.Contains(got, tc.wantHosts) {
				t.Errorf("hosts = %q, want it to contain %q", got, tc.wantHosts)
			}
			if got := readFile(t, filepath.Join(dir, ResolvConfFile)); !strings.Contains(got, tc.wantResol) {
				t.Errorf("resolv.conf = %q, want it to contain %q", got, tc.wantResol)
			}
		})
	}
}

func TestShm(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a tmpfs")
	}
	dir := t.TempDir()
	path, err := MountShm(dir, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(path, unix.MNT_DETACH) })
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.TMPFS_MAGIC || uint64(st.Blocks)*uint64(st.Bsize) != 8<<20 {
		t.Fatalf("shm: type %#x, size %d", st.Type, uint64(st.Blocks)*uint64(st.Bsize))
	}
	for range 2 { // idempotent
		if err := UnmountShm(path); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("mount point left: %v", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
