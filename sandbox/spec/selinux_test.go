package spec

import (
	"slices"
	"testing"

	"github.com/opencontainers/selinux/go-selinux"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestSELinuxOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  *runtimeapi.SELinuxOption
		want []string
	}{
		{"none", nil, nil},
		{"level only", &runtimeapi.SELinuxOption{Level: "s0:c1,c2"}, []string{"level:s0:c1,c2"}},
		{"all", &runtimeapi.SELinuxOption{User: "u", Role: "r", Type: "t", Level: "s0"}, []string{"user:u", "role:r", "type:t", "level:s0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := selinuxOptions(tc.opt); !slices.Equal(got, tc.want) {
				t.Fatalf("selinuxOptions = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSELinuxLabelsDisabled covers nodes without SELinux (this CI): no labels, nothing
// set in the spec, relabelling a no-op.
func TestSELinuxLabelsDisabled(t *testing.T) {
	if selinux.GetEnabled() {
		t.Skip("SELinux is enabled on this node")
	}
	p, m, err := SELinuxLabels(&runtimeapi.SELinuxOption{Type: "spc_t"}, false)
	if err != nil || p != "" || m != "" {
		t.Fatalf("SELinuxLabels = %q, %q, %v; want nothing", p, m, err)
	}
	s, err := Build(WithSELinuxLabels(p, m))
	if err != nil || s.Process.SelinuxLabel != "" || s.Linux.MountLabel != "" {
		t.Fatalf("spec labels %q %q, %v", s.Process.SelinuxLabel, s.Linux.MountLabel, err)
	}
	if err := RelabelMount(&runtimeapi.Mount{HostPath: "/nonexistent", SelinuxRelabel: true}, m, false); err != nil {
		t.Fatalf("RelabelMount without a label: %v", err)
	}
	ReleaseSELinuxLabel(p)
}
