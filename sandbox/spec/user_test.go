package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
# comment
daemon:x:1:1::/:/bin/false
app:x:1000:1000::/home/app:/bin/sh
short:x:1001
`

const testGroup = `root:x:0:
daemon:x:1:
wheel:x:10:app,daemon
audio:x:29:app
app:x:1000:
staff:x:50:
`

func writeRootfs(t *testing.T, passwd, group string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"passwd": passwd, "group": group} {
		if body == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestResolveUser(t *testing.T) {
	root := writeRootfs(t, testPasswd, testGroup)
	i64 := func(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }
	for _, tc := range []struct {
		name      string
		sc        *runtimeapi.LinuxContainerSecurityContext
		imageUser string
		want      specs.User
		wantErr   bool
	}{
		{"nothing is root", nil, "", specs.User{AdditionalGids: []uint32{0}}, false},
		{"image uid", nil, "1000", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 10, 29}}, false},
		{"image name", nil, "app", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 10, 29}}, false},
		{"image uid:gid", nil, "1000:50", specs.User{UID: 1000, GID: 50, AdditionalGids: []uint32{50, 10, 29}}, false},
		{"image name:group", nil, "daemon:staff", specs.User{UID: 1, GID: 50, AdditionalGids: []uint32{50, 10}}, false},
		{"unknown uid gets gid 0", nil, "4242", specs.User{UID: 4242, AdditionalGids: []uint32{0}}, false},
		{"short passwd line", nil, "1001", specs.User{UID: 1001, AdditionalGids: []uint32{0}}, false},
		{"unknown name", nil, "nobody", specs.User{}, true},
		{"unknown group", nil, "app:nogroup", specs.User{}, true},
		{"run_as_user wins", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1)}, "app:staff",
			specs.User{UID: 1, GID: 1, AdditionalGids: []uint32{1, 10}}, false},
		{"run_as_username", &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "app"}, "0",
			specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 10, 29}}, false},
		{"run_as_group", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1000), RunAsGroup: i64(7)}, "",
			specs.User{UID: 1000, GID: 7, AdditionalGids: []uint32{7, 10, 29}}, false},
		{"merge supplemental", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1000), SupplementalGroups: []int64{5, 10}}, "",
			specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 10, 29, 5}}, false},
		{"strict supplemental", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1000), SupplementalGroups: []int64{5},
			SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy_Strict}, "",
			specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 5}}, false},
		{"negative supplemental", &runtimeapi.LinuxContainerSecurityContext{SupplementalGroups: []int64{-1}}, "", specs.User{}, true},
		{"unknown run_as_username", &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "ghost"}, "", specs.User{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveUser(root, tc.sc, tc.imageUser)
			if tc.wantErr {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err = %v, want invalid argument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("user = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestResolveUserNoEtc(t *testing.T) {
	root := t.TempDir()
	if u, err := ResolveUser(root, nil, "123:45"); err != nil || u.UID != 123 || u.GID != 45 {
		t.Errorf("user %+v err %v", u, err)
	}
	if _, err := ResolveUser(root, nil, "app"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("err = %v, want invalid argument", err)
	}
}

// A symlinked /etc/passwd pointing at an absolute path must resolve inside
// rootfs, never on the host.
func TestResolveUserSymlinkStaysInRoot(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "passwd"), []byte("evil:x:0:0::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := writeRootfs(t, "", testGroup)
	if err := os.Symlink(filepath.Join(outside, "passwd"), filepath.Join(root, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	if _, err := ResolveUser(root, nil, "evil"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("err = %v: the symlink escaped rootfs", err)
	}
	// A relative escape is clamped at the root too.
	root2 := writeRootfs(t, "", testGroup)
	if err := os.Symlink("../../../../../../.."+filepath.Join(outside, "passwd"), filepath.Join(root2, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	if _, err := ResolveUser(root2, nil, "evil"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("err = %v: the relative symlink escaped rootfs", err)
	}
}

func TestWithUser(t *testing.T) {
	u := specs.User{UID: 1, GID: 2, AdditionalGids: []uint32{3}}
	s, err := Build(WithUser(u))
	if err != nil || !reflect.DeepEqual(s.Process.User, u) {
		t.Errorf("user %+v err %v", s.Process.User, err)
	}
}
