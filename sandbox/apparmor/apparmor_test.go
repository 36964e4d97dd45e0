package apparmor

import (
	"errors"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// fakeHost is a node with or without AppArmor and a set of loaded profiles.
type fakeHost struct {
	enabled    bool
	loaded     map[string]bool
	installErr error
	installed  []string
}

func (h *fakeHost) Enabled() bool                    { return h.enabled }
func (h *fakeHost) Loaded(name string) (bool, error) { return h.loaded[name], nil }
func (h *fakeHost) InstallDefault(name string) error {
	if h.installErr != nil {
		return h.installErr
	}
	h.installed = append(h.installed, name)
	return nil
}

func TestProfile(t *testing.T) {
	typed := func(k runtimeapi.SecurityProfile_ProfileType, ref string) *runtimeapi.LinuxContainerSecurityContext {
		return &runtimeapi.LinuxContainerSecurityContext{Apparmor: &runtimeapi.SecurityProfile{ProfileType: k, LocalhostRef: ref}}
	}
	legacy := func(name string) *runtimeapi.LinuxContainerSecurityContext {
		//lint:ignore SA1019 older kubelets and crictl still send the name form
		return &runtimeapi.LinuxContainerSecurityContext{ApparmorProfile: name}
	}
	const (
		rd    = runtimeapi.SecurityProfile_RuntimeDefault
		unc   = runtimeapi.SecurityProfile_Unconfined
		local = runtimeapi.SecurityProfile_Localhost
	)
	for _, tc := range []struct {
		name        string
		enabled     bool
		installErr  error
		sc          *runtimeapi.LinuxContainerSecurityContext
		want        string
		wantInstall bool
		wantErr     error
	}{
		{name: "off: nothing asked", sc: nil},
		{name: "off: runtime default", sc: typed(rd, "")},
		{name: "off: unconfined", sc: legacy("unconfined")},
		{name: "off: localhost refused", sc: typed(local, "mine"), wantErr: errdefs.ErrFailedPrecondition},
		{name: "off: legacy localhost refused", sc: legacy("localhost/mine"), wantErr: errdefs.ErrFailedPrecondition},
		{name: "on: nothing asked is the default", enabled: true, sc: nil, want: DefaultProfile, wantInstall: true},
		{name: "on: runtime default", enabled: true, sc: typed(rd, ""), want: DefaultProfile, wantInstall: true},
		{name: "on: legacy runtime default", enabled: true, sc: legacy("runtime/default"), want: DefaultProfile, wantInstall: true},
		{name: "on: unconfined", enabled: true, sc: typed(unc, "")},
		{name: "on: privileged unconfined", enabled: true, sc: &runtimeapi.LinuxContainerSecurityContext{Privileged: true}},
		{name: "on: privileged with a profile", enabled: true, sc: &runtimeapi.LinuxContainerSecurityContext{Privileged: true, Apparmor: &runtimeapi.SecurityProfile{ProfileType: local, LocalhostRef: "mine"}}, want: "mine"},
		{name: "on: localhost loaded", enabled: true, sc: typed(local, "mine"), want: "mine"},
		{name: "on: legacy localhost loaded", enabled: true, sc: legacy("localhost/mine"), want: "mine"},
		{name: "on: localhost not loaded", enabled: true, sc: typed(local, "other"), wantErr: errdefs.ErrFailedPrecondition},
		{name: "on: localhost without name", enabled: true, sc: typed(local, ""), wantErr: errdefs.ErrInvalidArgument},
		{name: "on: default fails to load, nothing asked", enabled: true, installErr: errors.New("no apparmor_parser"), sc: nil},
		{name: "on: default fails to load, asked for", enabled: true, installErr: errors.New("no apparmor_parser"), sc: typed(rd, ""), wantErr: errors.New("")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &fakeHost{enabled: tc.enabled, loaded: map[string]bool{"mine": true}, installErr: tc.installErr}
			got, err := Profile(h, tc.sc)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Profile = %q, want an error", got)
				}
				if tc.wantErr.Error() != "" && !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Profile = %q, %v; want %q", got, err, tc.want)
			}
			if (len(h.installed) > 0) != tc.wantInstall {
				t.Errorf("installed %v, want install %v", h.installed, tc.wantInstall)
			}
		})
	}
}
