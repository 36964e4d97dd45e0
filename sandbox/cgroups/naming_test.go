package cgroups

import (
	"strings"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestContainerNames(t *testing.T) {
	tests := []struct {
		name   string
		driver Driver
		parent string
		id     string
		want   Names
	}{
		{
			name: "cgroupfs burstable", driver: DriverCgroupfs,
			parent: "/kubepods/burstable/pod123", id: "abc",
			want: Names{
				PodPath:       "/kubepods/burstable/pod123",
				CgroupsPath:   "/kubepods/burstable/pod123/abc",
				ContainerPath: "/kubepods/burstable/pod123/abc",
			},
		},
		{
			name: "cgroupfs guaranteed with uid", driver: DriverCgroupfs,
			parent: "/kubepods/pod0f6b2c1e-7d4a-4c8e-9b1a-2f3e4d5c6b7a", id: "deadbeef",
			want: Names{
				PodPath:       "/kubepods/pod0f6b2c1e-7d4a-4c8e-9b1a-2f3e4d5c6b7a",
				CgroupsPath:   "/kubepods/pod0f6b2c1e-7d4a-4c8e-9b1a-2f3e4d5c6b7a/deadbeef",
				ContainerPath: "/kubepods/pod0f6b2c1e-7d4a-4c8e-9b1a-2f3e4d5c6b7a/deadbeef",
			},
		},
		{
			name: "cgroupfs empty parent (critest)", driver: DriverCgroupfs, parent: "", id: "abc",
			want: Names{PodPath: "", CgroupsPath: "/berth/abc", ContainerPath: "/berth/abc"},
		},
		{
			name: "systemd burstable", driver: DriverSystemd,
			parent: "kubepods-burstable-pod123.slice", id: "abc",
			want: Names{
				PodPath:       "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod123.slice",
				CgroupsPath:   "kubepods-burstable-pod123.slice:berth:abc",
				ContainerPath: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod123.slice/berth-abc.scope",
			},
		},
		{
			name: "systemd guaranteed, uid with underscores", driver: DriverSystemd,
			parent: "kubepods-pod0f6b2c1e_7d4a.slice", id: "abc",
			want: Names{
				PodPath:       "/kubepods.slice/kubepods-pod0f6b2c1e_7d4a.slice",
				CgroupsPath:   "kubepods-pod0f6b2c1e_7d4a.slice:berth:abc",
				ContainerPath: "/kubepods.slice/kubepods-pod0f6b2c1e_7d4a.slice/berth-abc.scope",
			},
		},
		{
			name: "systemd critest default slice", driver: DriverSystemd, parent: "system.slice", id: "abc",
			want: Names{
				PodPath:       "/system.slice",
				CgroupsPath:   "system.slice:berth:abc",
				ContainerPath: "/system.slice/berth-abc.scope",
			},
		},
		{
			name: "systemd parent as a path (critest)", driver: DriverSystemd, parent: "/test.slice", id: "abc",
			want: Names{
				PodPath:       "/test.slice",
				CgroupsPath:   "test.slice:berth:abc",
				ContainerPath: "/test.slice/berth-abc.scope",
			},
		},
		{
			name: "systemd parent as a full path", driver: DriverSystemd,
			parent: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice", id: "abc",
			want: Names{
				PodPath:       "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice",
				CgroupsPath:   "kubepods-burstable-pod1.slice:berth:abc",
				ContainerPath: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/berth-abc.scope",
			},
		},
		{
			name: "systemd empty parent", driver: DriverSystemd, parent: "", id: "abc",
			want: Names{CgroupsPath: "system.slice:berth:abc", ContainerPath: "/system.slice/berth-abc.scope"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ContainerNames(tt.driver, tt.parent, tt.id)
			if err != nil {
				t.Fatalf("ContainerNames: %v", err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestContainerNamesInvalid(t *testing.T) {
	tests := []struct {
		name   string
		driver Driver
		parent string
		id     string
	}{
		{"unknown driver", "docker", "/kubepods", "abc"},
		{"unknown driver empty parent", "", "", "abc"},
		{"cgroupfs relative", DriverCgroupfs, "kubepods/pod1", "abc"},
		{"cgroupfs dotdot", DriverCgroupfs, "/kubepods/../../etc", "abc"},
		{"cgroupfs trailing slash", DriverCgroupfs, "/kubepods/pod1/", "abc"},
		{"cgroupfs double slash", DriverCgroupfs, "/kubepods//pod1", "abc"},
		{"cgroupfs root", DriverCgroupfs, "/", "abc"},
		{"cgroupfs control char", DriverCgroupfs, "/kubepods/pod\n1", "abc"},
		{"cgroupfs interface file", DriverCgroupfs, "/kubepods/cgroup.procs", "abc"},
		{"cgroupfs slice name", DriverCgroupfs, "kubepods.slice", "abc"},
		{"systemd path", DriverSystemd, "/kubepods/burstable/pod1", "abc"},
		{"systemd no suffix", DriverSystemd, "kubepods-pod1", "abc"},
		{"systemd only suffix", DriverSystemd, ".slice", "abc"},
		{"systemd double dash", DriverSystemd, "kubepods--pod1.slice", "abc"},
		{"systemd leading dash", DriverSystemd, "-kubepods.slice", "abc"},
		{"systemd trailing dash", DriverSystemd, "kubepods-.slice", "abc"},
		{"systemd slash", DriverSystemd, "kube/pods.slice", "abc"},
		{"systemd root path", DriverSystemd, "/", "abc"},
		{"systemd path trailing slash", DriverSystemd, "/test.slice/", "abc"},
		{"systemd path of non-slices", DriverSystemd, "/kubepods/pod1.slice", "abc"},
		{"systemd path with dotdot", DriverSystemd, "/../test.slice", "abc"},
		{"systemd colon", DriverSystemd, "kube:pods.slice", "abc"},
		{"systemd escape", DriverSystemd, `kube\x2dpods.slice`, "abc"},
		{"systemd root slice", DriverSystemd, "-.slice", "abc"},
		{"systemd too long", DriverSystemd, strings.Repeat("a", 250) + ".slice", "abc"},
		{"empty id", DriverCgroupfs, "/kubepods", ""},
		{"id with slash", DriverCgroupfs, "/kubepods", "a/b"},
		{"id dotdot", DriverCgroupfs, "/kubepods", ".."},
		{"id with colon", DriverSystemd, "kubepods.slice", "a:b"},
		{"id leading dash", DriverSystemd, "kubepods.slice", "-a"},
		{"id too long", DriverCgroupfs, "/kubepods", strings.Repeat("a", 129)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ContainerNames(tt.driver, tt.parent, tt.id)
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("ContainerNames(%q, %q, %q) = %+v, %v; want an invalid argument error",
					tt.driver, tt.parent, tt.id, got, err)
			}
		})
	}
}

func TestExpandSlice(t *testing.T) {
	tests := []struct{ in, want string }{
		{"-.slice", "/"},
		{"system.slice", "/system.slice"},
		{"kubepods.slice", "/kubepods.slice"},
		{"a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice"},
		{"kubepods-besteffort-pod1_2.slice", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1_2.slice"},
		{"a.b-c.slice", "/a.b.slice/a.b-c.slice"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ExpandSlice(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("ExpandSlice(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseDriver(t *testing.T) {
	for _, s := range []string{"cgroupfs", "systemd"} {
		if d, err := ParseDriver(s); err != nil || string(d) != s {
			t.Errorf("ParseDriver(%q) = %q, %v", s, d, err)
		}
	}
	for _, s := range []string{"", "Systemd", "cgroupfs "} {
		if _, err := ParseDriver(s); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseDriver(%q) err = %v; want invalid argument", s, err)
		}
	}
}

func FuzzPodPath(f *testing.F) {
	for _, s := range []string{"/kubepods/burstable/pod1", "kubepods-pod1.slice", "/a/../b", "-.slice", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, parent string) {
		for _, d := range []Driver{DriverCgroupfs, DriverSystemd} {
			p, err := PodPath(d, parent)
			if err != nil {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("PodPath(%q, %q): error of the wrong class: %v", d, parent, err)
				}
				continue
			}
			if parent == "" {
				continue
			}
			if !strings.HasPrefix(p, "/") || p == "/" || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
				t.Fatalf("PodPath(%q, %q) = %q: not a safe path below the root", d, parent, p)
			}
		}
	})
}
