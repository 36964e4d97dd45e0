package sandbox

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestPauseSecurity(t *testing.T) {
	id := func(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }
	type sc = runtimeapi.LinuxSandboxSecurityContext
	for _, tc := range []struct {
		name        string
		sc          *sc
		wantUser    *specs.User
		wantSeccomp bool
		invalid     bool
	}{
		{name: "nothing set", sc: nil},
		{name: "user", sc: &sc{RunAsUser: id(1000)}, wantUser: &specs.User{UID: 1000, GID: 1000}},
		{name: "user and group", sc: &sc{RunAsUser: id(1000), RunAsGroup: id(2000), SupplementalGroups: []int64{3000, 4000}},
			wantUser: &specs.User{UID: 1000, GID: 2000, AdditionalGids: []uint32{3000, 4000}}},
		{name: "root", sc: &sc{RunAsUser: id(0)}, wantUser: &specs.User{}},
		{name: "group alone keeps the overflow uid", sc: &sc{RunAsGroup: id(2000)}, wantUser: &specs.User{UID: 65535, GID: 2000}},
		{name: "negative user", sc: &sc{RunAsUser: id(-1)}, invalid: true},
		{name: "negative group", sc: &sc{SupplementalGroups: []int64{-5}}, invalid: true},
		{name: "runtime default seccomp", sc: &sc{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}}, wantSeccomp: true},
		//lint:ignore SA1019 older kubelets and crictl still send the path form
		{name: "legacy runtime default", sc: &sc{SeccompProfilePath: "runtime/default"}, wantSeccomp: true},
		{name: "unconfined", sc: &sc{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}}},
		{name: "privileged pod: no filter", sc: &sc{Privileged: true, Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}}},
		{name: "missing localhost profile", sc: &sc{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/nonexistent/profile.json"}}, invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user, seccomp, err := pauseSecurity(tc.sc)
			if tc.invalid {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("pauseSecurity = %v, want InvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(user, tc.wantUser) {
				t.Errorf("user = %+v, want %+v", user, tc.wantUser)
			}
			if (seccomp != nil) != tc.wantSeccomp {
				t.Errorf("seccomp = %v, want a filter: %v", seccomp != nil, tc.wantSeccomp)
			}
			if seccomp != nil && seccomp.DefaultAction != specs.ActErrno {
				t.Errorf("default action %s, want the default profile's errno", seccomp.DefaultAction)
			}
		})
	}
}
