package spec

import (
	"reflect"
	"slices"
	"testing"
)

func TestWithCapabilities(t *testing.T) {
	plus := func(extra ...string) []string { return append(slices.Clone(defaultCaps), extra...) }
	minus := func(gone ...string) []string {
		return slices.DeleteFunc(slices.Clone(defaultCaps), func(c string) bool { return slices.Contains(gone, c) })
	}
	for _, tc := range []struct {
		name       string
		privileged bool
		add, drop  []string
		want       []string
		wantErr    bool
	}{
		{"defaults", false, nil, nil, defaultCaps, false},
		{"privileged", true, nil, []string{"ALL"}, grantableCaps(), false},
		{"add without prefix", false, []string{"net_admin"}, nil, plus("CAP_NET_ADMIN"), false},
		{"add with prefix", false, []string{"CAP_SYS_ADMIN"}, nil, plus("CAP_SYS_ADMIN"), false},
		{"add existing once", false, []string{"CHOWN"}, nil, defaultCaps, false},
		{"drop", false, nil, []string{"CHOWN", "cap_kill"}, minus("CAP_CHOWN", "CAP_KILL"), false},
		{"drop all add one", false, []string{"NET_BIND_SERVICE"}, []string{"ALL"}, []string{"CAP_NET_BIND_SERVICE"}, false},
		{"drop all", false, nil, []string{"all"}, nil, false},
		{"add all", false, []string{"ALL"}, nil, grantableCaps(), false},
		{"add all drop one", false, []string{"ALL"}, []string{"SYS_ADMIN"},
			slices.DeleteFunc(slices.Clone(grantableCaps()), func(c string) bool { return c == "CAP_SYS_ADMIN" }), false},
		{"drop wins over add", false, []string{"NET_ADMIN"}, []string{"NET_ADMIN"}, defaultCaps, false},
		{"unknown add", false, []string{"FLY"}, nil, nil, true},
		{"unknown drop", false, nil, []string{"CAP_FLY"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := buildOrInvalid(t, tc.wantErr, WithCapabilities(tc.privileged, tc.add, tc.drop))
			if s == nil {
				return
			}
			c := s.Process.Capabilities
			for name, got := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
				if len(got) != len(tc.want) || !reflect.DeepEqual(sorted(got), sorted(tc.want)) {
					t.Errorf("%s = %v, want %v", name, got, tc.want)
				}
			}
			if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
				t.Errorf("inheritable %v ambient %v, want empty", c.Inheritable, c.Ambient)
			}
		})
	}
}

func TestWithAmbientCapabilities(t *testing.T) {
	for _, tc := range []struct {
		name      string
		drop      []string
		ambient   []string
		wantSets  []string // bounding, effective, permitted
		wantAmb   []string // inheritable and ambient
		wantError bool
	}{
		{"none", nil, nil, defaultCaps, nil, false},
		{"one new", nil, []string{"net_admin"}, append(slices.Clone(defaultCaps), "CAP_NET_ADMIN"), []string{"CAP_NET_ADMIN"}, false},
		{"one default", nil, []string{"CAP_CHOWN", "chown"}, defaultCaps, []string{"CAP_CHOWN"}, false},
		{"after drop all", []string{"ALL"}, []string{"NET_BIND_SERVICE"}, []string{"CAP_NET_BIND_SERVICE"}, []string{"CAP_NET_BIND_SERVICE"}, false},
		{"all refused", nil, []string{"ALL"}, nil, nil, true},
		{"unknown", nil, []string{"FLY"}, nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := buildOrInvalid(t, tc.wantError, WithCapabilities(false, nil, tc.drop), WithAmbientCapabilities(tc.ambient))
			if s == nil {
				return
			}
			c := s.Process.Capabilities
			for name, got := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
				if !reflect.DeepEqual(sorted(got), sorted(tc.wantSets)) {
					t.Errorf("%s = %v, want %v", name, got, tc.wantSets)
				}
			}
			for name, got := range map[string][]string{"inheritable": c.Inheritable, "ambient": c.Ambient} {
				if !reflect.DeepEqual(sorted(got), sorted(tc.wantAmb)) {
					t.Errorf("%s = %v, want %v", name, got, tc.wantAmb)
				}
			}
		})
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func TestWithPrivileged(t *testing.T) {
	s, err := Build(WithMaskedPaths([]string{"/x"}), WithPrivileged())
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Errorf("masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if len(s.Process.Capabilities.Bounding) != len(grantableCaps()) {
		t.Errorf("caps %v", s.Process.Capabilities.Bounding)
	}
	for _, m := range s.Mounts {
		if (m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup") && (slices.Contains(m.Options, "ro") || !slices.Contains(m.Options, "rw")) {
			t.Errorf("%s options %v", m.Destination, m.Options)
		}
	}
	// The base must not have been modified through shared option slices.
	b, _ := Build()
	for _, m := range b.Mounts {
		if m.Destination == "/sys" && !slices.Contains(m.Options, "ro") {
			t.Error("privileged leaked into the base /sys mount")
		}
	}
}

func TestPathsAndReadonlyRootfs(t *testing.T) {
	for _, tc := range []struct {
		name         string
		masked, ro   []string
		wantMasked   []string
		wantReadonly []string
		wantErr      bool
	}{
		{"nil keeps defaults", nil, nil, defaultMaskedPaths, defaultReadonlyPaths, false},
		{"empty clears", []string{}, []string{}, []string{}, []string{}, false},
		{"replace", []string{"/a"}, []string{"/b"}, []string{"/a"}, []string{"/b"}, false},
		{"relative masked", []string{"a"}, nil, nil, nil, true},
		{"relative readonly", nil, []string{"b"}, nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := buildOrInvalid(t, tc.wantErr, WithMaskedPaths(tc.masked), WithReadonlyPaths(tc.ro), WithReadonlyRootfs(true))
			if s == nil {
				return
			}
			if !reflect.DeepEqual(s.Linux.MaskedPaths, tc.wantMasked) || !reflect.DeepEqual(s.Linux.ReadonlyPaths, tc.wantReadonly) {
				t.Errorf("masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
			}
			if !s.Root.Readonly {
				t.Error("root not read-only")
			}
		})
	}
}

func TestBoundedBy(t *testing.T) {
	for _, tc := range []struct {
		name string
		mask uint64
		want int
	}{
		{"none", 0, 0},
		{"chown only", 1, 1},
		{"everything", ^uint64(0), len(allCaps)},
		{"all but CAP_SYS_RESOURCE", ^uint64(0) &^ (1 << 24), len(allCaps) - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := boundedBy(tc.mask)
			if len(got) != tc.want {
				t.Fatalf("boundedBy(%#x) = %d caps, want %d", tc.mask, len(got), tc.want)
			}
			if tc.mask&(1<<24) == 0 && slices.Contains(got, "CAP_SYS_RESOURCE") {
				t.Fatal("CAP_SYS_RESOURCE granted without its bit")
			}
		})
	}
}

func TestWithAppArmorProfile(t *testing.T) {
	for _, name := range []string{"", "berth-default", "mine"} {
		s, err := Build(WithAppArmorProfile(name))
		if err != nil || s.Process.ApparmorProfile != name {
			t.Errorf("WithAppArmorProfile(%q): profile %q, %v", name, s.Process.ApparmorProfile, err)
		}
	}
}
