package sysctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/nspin"
)

func TestValidate(t *testing.T) {
	own := Namespaces{Net: true, IPC: true}
	tests := []struct {
		name    string
		sysctls map[string]string
		ns      Namespaces
		wantErr string // "" = valid
	}{
		{"none", nil, Namespaces{}, ""},
		{"net with pod network", map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}, own, ""},
		{"net in slash form, dotted interface", map[string]string{"net/ipv4/conf/eth0.100/rp_filter": "1"}, own, ""},
		{"net on the node's network", map[string]string{"net.ipv4.ip_forward": "1"}, Namespaces{IPC: true}, "node's network"},
		{"shm with pod IPC", map[string]string{"kernel.shm_rmid_forced": "1"}, own, ""},
		{"msg, sem with pod IPC", map[string]string{"kernel.msgmax": "8192", "kernel.sem": "250 32000 32 128"}, own, ""},
		{"mqueue with pod IPC", map[string]string{"fs.mqueue.msg_max": "100"}, own, ""},
		{"mqueue in the node's IPC", map[string]string{"fs.mqueue.msg_max": "100"}, Namespaces{Net: true}, "node's IPC"},
		{"shm in the node's IPC", map[string]string{"kernel.shmmax": "1"}, Namespaces{Net: true}, "node's IPC"},
		{"hostname", map[string]string{"kernel.hostname": "x"}, own, "hostname field"},
		{"domainname", map[string]string{"kernel.domainname": "x"}, own, "hostname field"},
		{"node-wide kernel", map[string]string{"kernel.panic": "1"}, own, "not a namespaced"},
		{"node-wide vm", map[string]string{"vm.swappiness": "1"}, own, "not a namespaced"},
		{"other fs", map[string]string{"fs.file-max": "1"}, own, "not a namespaced"},
		{"escape with dots", map[string]string{"net/../kernel/panic": "1"}, own, "not a sysctl name"},
		{"empty component", map[string]string{"net..ipv4": "1"}, own, "not a sysctl name"},
		{"single component", map[string]string{"net": "1"}, own, "not a sysctl name"},
		{"newline in value", map[string]string{"net.ipv4.ip_forward": "1\n0"}, own, "newline"},
		{"huge value", map[string]string{"net.ipv4.ip_forward": strings.Repeat("1", 4097)}, own, "longer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.sysctls, tc.ns)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errdefs.IsInvalidArgument(err) {
				t.Fatalf("Validate = %v, want InvalidArgument containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestApply sets sysctls in freshly pinned namespaces and reads them back from inside,
// and checks that the node's values did not change.
func TestApply(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: pins namespaces")
	}
	dir := filepath.Join(t.TempDir(), "ns")
	pinned, err := nspin.Pin(dir, nspin.Net, nspin.IPC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pinned.Remove() })

	const portStart = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
	const msgMax = "/proc/sys/fs/mqueue/msg_max"
	nodePort, nodeMsg := read(t, portStart), read(t, msgMax)

	err = Apply(map[string]string{
		"net.ipv4.ip_unprivileged_port_start": "53",
		"net/ipv4/conf/lo/forwarding":         "1",
		"fs.mqueue.msg_max":                   "77",
		"kernel.shm_rmid_forced":              "1",
	}, pinned)
	if err != nil {
		t.Fatal(err)
	}
	inside := func(kind nspin.Kind, path string) string {
		var v string
		if err := nspin.Run(pinned.Path(kind), kind, func() error { v = read(t, path); return nil }); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		kind       nspin.Kind
		path, want string
	}{
		{nspin.Net, portStart, "53"},
		{nspin.Net, "/proc/sys/net/ipv4/conf/lo/forwarding", "1"},
		{nspin.IPC, msgMax, "77"},
		{nspin.IPC, "/proc/sys/kernel/shm_rmid_forced", "1"},
	} {
		if got := inside(c.kind, c.path); got != c.want {
			t.Errorf("%s inside the pod = %q, want %q", c.path, got, c.want)
		}
	}
	if read(t, portStart) != nodePort || read(t, msgMax) != nodeMsg {
		t.Fatal("Apply changed the node's values")
	}

	for name, value := range map[string]string{
		"net.ipv4.no_such_thing": "1",    // not in the namespace
		"fs.mqueue.msg_max":      "zero", // refused by the kernel
	} {
		err := Apply(map[string]string{name: value}, pinned)
		if !errdefs.IsInvalidArgument(err) {
			t.Errorf("Apply(%s=%s) = %v, want InvalidArgument", name, value, err)
		}
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}
