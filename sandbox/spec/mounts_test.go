package spec

import (
	"errors"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestWithMounts(t *testing.T) {
	type M = runtimeapi.Mount
	const (
		private = runtimeapi.MountPropagation_PROPAGATION_PRIVATE
		slave   = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
		shared  = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
	)
	for _, tc := range []struct {
		name     string
		mounts   []*M
		rro      bool
		wantOpts map[string][]string // destination -> options
		wantProp string
		wantErr  error
	}{
		{"rw private", []*M{{ContainerPath: "/data", HostPath: "/h/data"}}, false,
			map[string][]string{"/data": {"rbind", "rprivate", "rw"}}, "", nil},
		{"ro slave", []*M{{ContainerPath: "/d", HostPath: "/h", Readonly: true, Propagation: slave}}, false,
			map[string][]string{"/d": {"rbind", "rslave", "ro"}}, "rslave", nil},
		{"shared wins rootfs", []*M{{ContainerPath: "/a", HostPath: "/h", Propagation: shared}, {ContainerPath: "/b", HostPath: "/h", Propagation: slave}}, false,
			map[string][]string{"/a": {"rbind", "rshared", "rw"}, "/b": {"rbind", "rslave", "rw"}}, "rshared", nil},
		{"rro", []*M{{ContainerPath: "/r", HostPath: "/h", Readonly: true, RecursiveReadOnly: true}}, true,
			map[string][]string{"/r": {"rbind", "rprivate", "ro", "rro"}}, "", nil},
		{"rro unsupported", []*M{{ContainerPath: "/r", HostPath: "/h", Readonly: true, RecursiveReadOnly: true}}, false, nil, "", errdefs.ErrInvalidArgument},
		{"rro without ro", []*M{{ContainerPath: "/r", HostPath: "/h", RecursiveReadOnly: true}}, true, nil, "", errdefs.ErrInvalidArgument},
		{"rro with propagation", []*M{{ContainerPath: "/r", HostPath: "/h", Readonly: true, RecursiveReadOnly: true, Propagation: slave}}, true, nil, "", errdefs.ErrInvalidArgument},
		{"relative container path", []*M{{ContainerPath: "data", HostPath: "/h"}}, false, nil, "", errdefs.ErrInvalidArgument},
		{"relative host path", []*M{{ContainerPath: "/data", HostPath: "h"}}, false, nil, "", errdefs.ErrInvalidArgument},
		{"duplicate", []*M{{ContainerPath: "/d", HostPath: "/a"}, {ContainerPath: "/d/", HostPath: "/b"}}, false, nil, "", errdefs.ErrInvalidArgument},
		{"bad propagation", []*M{{ContainerPath: "/d", HostPath: "/a", Propagation: 7}}, false, nil, "", errdefs.ErrInvalidArgument},
		{"image volume", []*M{{ContainerPath: "/d", Image: &runtimeapi.ImageSpec{Image: "busybox"}}}, false, nil, "", errdefs.ErrUnimplemented},
		{"idmap without gid mappings", []*M{{ContainerPath: "/d", HostPath: "/h", UidMappings: []*runtimeapi.IDMapping{{HostId: 1000, Length: 10}}}}, false, nil, "", errdefs.ErrInvalidArgument},
		{"idmap empty range", []*M{{ContainerPath: "/d", HostPath: "/h", UidMappings: []*runtimeapi.IDMapping{{HostId: 1000}},
			GidMappings: []*runtimeapi.IDMapping{{HostId: 1000, Length: 10}}}}, false, nil, "", errdefs.ErrInvalidArgument},
		{"mount options", []*M{{ContainerPath: "/o", HostPath: "/h", MountOptions: []string{"noexec", "nodev", "nosuid", "noexec", "noatime"}}}, false,
			map[string][]string{"/o": {"rbind", "rprivate", "rw", "noexec", "nodev", "nosuid", "noatime"}}, "", nil},
		{"mount option not a flag", []*M{{ContainerPath: "/o", HostPath: "/h", MountOptions: []string{"size=1m"}}}, false, nil, "", errdefs.ErrInvalidArgument},
		{"mount option rw", []*M{{ContainerPath: "/o", HostPath: "/h", Readonly: true, MountOptions: []string{"rw"}}}, false, nil, "", errdefs.ErrInvalidArgument},
		{"replaces /dev/shm", []*M{{ContainerPath: "/dev/shm", HostPath: "/run/pod/shm"}}, false,
			map[string][]string{"/dev/shm": {"rbind", "rprivate", "rw"}}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Build(WithMounts(tc.mounts, tc.rro))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			count := map[string]int{}
			for _, m := range s.Mounts {
				count[m.Destination]++
				if m.Type == "bind" {
					got[m.Destination] = m.Options
				}
			}
			for d, n := range count {
				if n > 1 {
					t.Errorf("%d mounts at %s", n, d)
				}
			}
			if !reflect.DeepEqual(got, tc.wantOpts) {
				t.Errorf("bind mounts %v, want %v", got, tc.wantOpts)
			}
			if s.Linux.RootfsPropagation != tc.wantProp {
				t.Errorf("rootfs propagation %q, want %q", s.Linux.RootfsPropagation, tc.wantProp)
			}
		})
	}
}

func TestWithMountsParentsFirst(t *testing.T) {
	s, err := Build(WithMounts([]*runtimeapi.Mount{
		{ContainerPath: "/a/b/c", HostPath: "/h1"},
		{ContainerPath: "/a", HostPath: "/h2"},
		{ContainerPath: "/a/b", HostPath: "/h3"},
	}, false))
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, m := range s.Mounts {
		if m.Type == "bind" {
			order = append(order, m.Destination)
		}
	}
	if !reflect.DeepEqual(order, []string{"/a", "/a/b", "/a/b/c"}) {
		t.Errorf("order %v", order)
	}
}

func TestWithMountsIDMapped(t *testing.T) {
	ids := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 1000, Length: 65536}}
	s, err := Build(WithMounts([]*runtimeapi.Mount{{ContainerPath: "/v", HostPath: "/h", UidMappings: ids, GidMappings: ids}}, false))
	if err != nil {
		t.Fatal(err)
	}
	want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 65536}}
	for _, m := range s.Mounts {
		if m.Destination == "/v" {
			if !reflect.DeepEqual(m.UIDMappings, want) || !reflect.DeepEqual(m.GIDMappings, want) {
				t.Errorf("maps %v %v, want %v", m.UIDMappings, m.GIDMappings, want)
			}
			return
		}
	}
	t.Fatal("no mount at /v")
}

func TestWithUserNamespace(t *testing.T) {
	s, err := Build(WithNamespaces("/ns/net", "", "", PIDContainer, ""), WithUserNamespace("/ns/user"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			n++
			if ns.Path != "/ns/user" {
				t.Errorf("user namespace path %q", ns.Path)
			}
		}
	}
	if n != 1 || len(s.Linux.UIDMappings) != 0 {
		t.Errorf("%d user namespaces, uid maps %v", n, s.Linux.UIDMappings)
	}
	if _, err := Build(WithUserNamespace("ns/user")); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("relative path: %v", err)
	}
}
