package sandbox

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/internal/nspin"
)

const netDevHeader = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
`

func TestParseNetDev(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    []ifaceStats
		invalid bool
	}{
		{
			name: "pod with eth0",
			in: netDevHeader +
				"    lo:     120       2    0    0    0     0          0         0      120       2    0    0    0     0       0          0\n" +
				"  eth0: 1500123    1200    3    0    0     0          0         0    90210     800    1    0    0     0       0          0\n",
			want: []ifaceStats{{name: "eth0", rxBytes: 1500123, rxErrors: 3, txBytes: 90210, txErrors: 1}},
		},
		{
			name: "no space after the colon, two interfaces",
			in: netDevHeader +
				"eth0:4294967296 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0\n" +
				"net1:      10 1 2 0 0 0 0 0 20 1 4 0 0 0 0 0\n",
			want: []ifaceStats{
				{name: "eth0", rxBytes: 4294967296, txBytes: 7},
				{name: "net1", rxBytes: 10, rxErrors: 2, txBytes: 20, txErrors: 4},
			},
		},
		{name: "loopback only", in: netDevHeader + "lo: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"},
		{name: "headers only", in: netDevHeader},
		{name: "short line", in: netDevHeader + "eth0: 1 2 3\n", invalid: true},
		{name: "no colon", in: netDevHeader + "eth0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", invalid: true},
		{name: "not a number", in: netDevHeader + "eth0: x 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n", invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseNetDev(strings.NewReader(tc.in))
			if tc.invalid {
				if err == nil {
					t.Fatalf("parseNetDev = %v, want an error", got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parseNetDev = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestNetworkUsageDefaultInterface(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ifs         []ifaceStats
		wantDefault string
	}{
		{name: "eth0 is the default", ifs: []ifaceStats{{name: "net1"}, {name: "eth0", rxBytes: 5}}, wantDefault: "eth0"},
		{name: "no eth0, no default", ifs: []ifaceStats{{name: "net1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := networkUsage(1, tc.ifs)
			if len(n.Interfaces) != len(tc.ifs) || n.DefaultInterface.GetName() != tc.wantDefault {
				t.Fatalf("networkUsage = %v; want %d interfaces, default %q", n, len(tc.ifs), tc.wantDefault)
			}
		})
	}
}

// A fresh network namespace has only its loopback: reading it must not show the host's
// interfaces, which is what /proc/net/dev (the main thread's namespace) would.
func TestNetnsInterfacesReadsThePodNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	p, err := nspin.Pin(filepath.Join(t.TempDir(), "ns"), nspin.Net)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Remove() })
	ifs, err := netnsInterfaces(p.Net)
	if err != nil || len(ifs) != 0 {
		t.Fatalf("netnsInterfaces of a fresh namespace = %+v, %v; want none", ifs, err)
	}
}

// FuzzParseNetDev feeds arbitrary /proc/net/dev contents: no panic, and every
// interface reported has a name.
func FuzzParseNetDev(f *testing.F) {
	f.Add("Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
		"  eth0:    1296      16    0    0    0     0          0         0      726       9    0    0    0     0       0          0\n")
	f.Add("garbage\n:\n eth0: x y z\n")
	// Found by this fuzzer: a line with counters but no name.
	f.Add("\n\n: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
	f.Fuzz(func(t *testing.T, data string) {
		ifs, err := parseNetDev(strings.NewReader(data))
		if err != nil {
			return
		}
		for _, i := range ifs {
			if i.name == "" {
				t.Fatalf("interface without a name from %q", data)
			}
		}
	})
}
