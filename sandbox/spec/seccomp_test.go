package spec

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestWithSeccomp(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	profile := `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}`
	if err := os.WriteFile(good, []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	sp := func(typ runtimeapi.SecurityProfile_ProfileType, ref string) *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: typ, LocalhostRef: ref}
	}
	for _, tc := range []struct {
		name    string
		profile *runtimeapi.SecurityProfile
		root    string
		check   func(*testing.T, *specs.LinuxSeccomp)
		wantErr bool
	}{
		{"nil is unconfined", nil, "", func(t *testing.T, sc *specs.LinuxSeccomp) {
			if sc != nil {
				t.Errorf("seccomp %+v, want nil", sc)
			}
		}, false},
		{"unconfined", sp(runtimeapi.SecurityProfile_Unconfined, ""), "", func(t *testing.T, sc *specs.LinuxSeccomp) {
			if sc != nil {
				t.Errorf("seccomp %+v, want nil", sc)
			}
		}, false},
		{"runtime default", sp(runtimeapi.SecurityProfile_RuntimeDefault, ""), "", func(t *testing.T, sc *specs.LinuxSeccomp) {
			if sc == nil || sc.DefaultAction != specs.ActErrno || len(sc.Syscalls) == 0 {
				t.Fatalf("seccomp %+v", sc)
			}
		}, false},
		{"localhost", sp(runtimeapi.SecurityProfile_Localhost, good), dir, func(t *testing.T, sc *specs.LinuxSeccomp) {
			if sc == nil || len(sc.Syscalls) != 1 || !slices.Equal(sc.Syscalls[0].Names, []string{"read", "write"}) {
				t.Fatalf("seccomp %+v", sc)
			}
		}, false},
		{"localhost relative", sp(runtimeapi.SecurityProfile_Localhost, "good.json"), "", nil, true},
		{"localhost outside root", sp(runtimeapi.SecurityProfile_Localhost, good), "/nonexistent", nil, true},
		{"localhost dotdot escape", sp(runtimeapi.SecurityProfile_Localhost, filepath.Join(dir, "sub", "..", "..", "x.json")), filepath.Join(dir, "sub"), nil, true},
		{"localhost missing", sp(runtimeapi.SecurityProfile_Localhost, filepath.Join(dir, "none.json")), "", nil, true},
		{"localhost malformed", sp(runtimeapi.SecurityProfile_Localhost, bad), "", nil, true},
		{"unknown type", sp(runtimeapi.SecurityProfile_ProfileType(42), ""), "", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := buildOrInvalid(t, tc.wantErr, WithSeccomp(tc.profile, tc.root))
			if s == nil {
				return
			}
			tc.check(t, s.Linux.Seccomp)
		})
	}
}

// The default profile allows CAP_SYS_ADMIN-gated syscalls only when the
// capability is in the bounding set, so capabilities must come first.
func TestSeccompFollowsCapabilities(t *testing.T) {
	has := func(sc *specs.LinuxSeccomp, name string) bool {
		for _, r := range sc.Syscalls {
			if r.Action == specs.ActAllow && slices.Contains(r.Names, name) {
				return true
			}
		}
		return false
	}
	def := &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	plain, err := Build(WithSeccomp(def, ""))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := Build(WithCapabilities(false, []string{"SYS_ADMIN"}, nil), WithSeccomp(def, ""))
	if err != nil {
		t.Fatal(err)
	}
	if has(plain.Linux.Seccomp, "mount") || !has(admin.Linux.Seccomp, "mount") {
		t.Errorf("mount allowed: default %v, with CAP_SYS_ADMIN %v", has(plain.Linux.Seccomp, "mount"), has(admin.Linux.Seccomp, "mount"))
	}
}
