package spec

import (
	"testing"
)

func TestWithDevices(t *testing.T) {
	fuse := DeviceNode{ContainerPath: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: 0o666, Permissions: "rw"}
	for _, tc := range []struct {
		name       string
		privileged bool
		nodes      []DeviceNode
		wantRules  int
		wantAllow0 bool
		wantErr    bool
	}{
		{"none denies all", false, nil, 1, false, false},
		{"one node", false, []DeviceNode{fuse}, 2, false, false},
		{"default permissions", false, []DeviceNode{{ContainerPath: "/dev/x", Type: "b", Major: 8, Minor: 0}}, 2, false, false},
		{"privileged allows all", true, []DeviceNode{fuse}, 1, true, false},
		{"relative path", false, []DeviceNode{{ContainerPath: "dev/x", Type: "c"}}, 0, false, true},
		{"bad type", false, []DeviceNode{{ContainerPath: "/dev/x", Type: "p"}}, 0, false, true},
		{"bad permissions", false, []DeviceNode{{ContainerPath: "/dev/x", Type: "c", Permissions: "rx"}}, 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := buildOrInvalid(t, tc.wantErr, WithDevices(tc.privileged, tc.nodes))
			if s == nil {
				return
			}
			rules := s.Linux.Resources.Devices
			if len(rules) != tc.wantRules || rules[0].Allow != tc.wantAllow0 || rules[0].Access != "rwm" {
				t.Fatalf("rules %+v", rules)
			}
			if len(s.Linux.Devices) != len(tc.nodes) {
				t.Fatalf("devices %+v", s.Linux.Devices)
			}
			if !tc.privileged && len(tc.nodes) == 1 {
				r, d := rules[1], s.Linux.Devices[0]
				want := tc.nodes[0].Permissions
				if want == "" {
					want = "rwm"
				}
				if !r.Allow || r.Type != d.Type || *r.Major != d.Major || *r.Minor != d.Minor || r.Access != want {
					t.Errorf("rule %+v for device %+v", r, d)
				}
			}
		})
	}
}

// WithResources after WithDevices keeps the device rules.
func TestDevicesSurviveResources(t *testing.T) {
	s, err := Build(WithDevices(false, nil), WithResources(nil))
	if err != nil || s.Linux.Resources == nil || len(s.Linux.Resources.Devices) != 1 {
		t.Fatalf("resources %+v err %v", s.Linux.Resources, err)
	}
}
