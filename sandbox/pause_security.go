package sandbox

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/infra"
	"github.com/berth-runtime/berth/sandbox/spec"
)

// pauseSecurity reads the parts of a pod's security context that apply to its pause
// process: the user (run_as_user, run_as_group, supplemental_groups; nil when unset,
// keeping pause's overflow ids) and the seccomp profile (nil for none). The pause rootfs
// is read-only whatever readonly_rootfs says, and pause has no capabilities to drop.
func pauseSecurity(sc *runtimeapi.LinuxSandboxSecurityContext) (*specs.User, *specs.LinuxSeccomp, error) {
	user, err := pauseUser(sc)
	if err != nil {
		return nil, nil, err
	}
	profile := sc.GetSeccomp()
	//lint:ignore SA1019 older kubelets and crictl still send the path form
	if legacy := sc.GetSeccompProfilePath(); profile == nil && legacy != "" {
		profile = legacySeccomp(legacy)
	}
	if profile == nil || sc.GetPrivileged() {
		return user, nil, nil
	}
	// Built on pause's own (empty) capability set, so that the default profile allows
	// nothing a capability would.
	scratch := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}, Linux: &specs.Linux{}}
	if err := spec.WithSeccomp(profile, "")(scratch); err != nil {
		return nil, nil, err
	}
	return user, scratch.Linux.Seccomp, nil
}

// pauseUser is the pod's run_as_user, run_as_group and supplemental groups; a group
// without a user keeps pause's overflow uid. Nil when the pod sets none.
func pauseUser(sc *runtimeapi.LinuxSandboxSecurityContext) (*specs.User, error) {
	id := func(what string, v int64) (uint32, error) {
		if v < 0 || v > 1<<32-2 {
			return 0, errdefs.InvalidArgument(fmt.Sprintf("pod security context: %s %d is out of range", what, v))
		}
		return uint32(v), nil
	}
	u, g, groups := sc.GetRunAsUser(), sc.GetRunAsGroup(), sc.GetSupplementalGroups()
	if u == nil && g == nil && len(groups) == 0 {
		return nil, nil
	}
	user := &specs.User{UID: infra.DefaultID, GID: infra.DefaultID}
	var err error
	if u != nil {
		if user.UID, err = id("run_as_user", u.GetValue()); err != nil {
			return nil, err
		}
		user.GID = user.UID
	}
	if g != nil {
		if user.GID, err = id("run_as_group", g.GetValue()); err != nil {
			return nil, err
		}
	}
	for _, sg := range groups {
		n, err := id("supplemental group", sg)
		if err != nil {
			return nil, err
		}
		user.AdditionalGids = append(user.AdditionalGids, n)
	}
	return user, nil
}
