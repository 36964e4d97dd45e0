package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// WithSeccomp owns linux.seccomp. Apply it after the capability options:
// moby's profiles allow some syscalls only when the bounding set holds the
// matching capability.
//
//   - nil (no profile asked) or Unconfined: no filter;
//   - RuntimeDefault: moby's default profile;
//   - Localhost: the JSON profile at localhost_ref, which must be an absolute
//     path and, when localhostRoot is not empty, lie under it.
func WithSeccomp(profile *runtimeapi.SecurityProfile, localhostRoot string) Opt {
	return func(s *specs.Spec) error {
		if profile == nil {
			// CRI's zero ProfileType is RuntimeDefault, but an absent
			// profile means kubelet asked for none: unconfined.
			s.Linux.Seccomp = nil
			return nil
		}
		switch profile.GetProfileType() {
		case runtimeapi.SecurityProfile_Unconfined:
			s.Linux.Seccomp = nil
			return nil
		case runtimeapi.SecurityProfile_RuntimeDefault:
			sc, err := seccomp.GetDefaultProfile(s)
			if err != nil {
				return fmt.Errorf("seccomp default profile: %w", err)
			}
			s.Linux.Seccomp = sc
			return nil
		case runtimeapi.SecurityProfile_Localhost:
			body, err := readLocalhostProfile(profile.GetLocalhostRef(), localhostRoot)
			if err != nil {
				return err
			}
			sc, err := seccomp.LoadProfile(string(body), s)
			if err != nil {
				return errdefs.InvalidArgument(fmt.Sprintf("seccomp profile %s: %v", profile.GetLocalhostRef(), err))
			}
			s.Linux.Seccomp = sc
			return nil
		default:
			return errdefs.InvalidArgument(fmt.Sprintf("unknown seccomp profile type %v", profile.GetProfileType()))
		}
	}
}

func readLocalhostProfile(ref, root string) ([]byte, error) {
	if !filepath.IsAbs(ref) {
		return nil, errdefs.InvalidArgument("seccomp localhost profile " + ref + " is not an absolute path")
	}
	ref = filepath.Clean(ref)
	if root != "" {
		root = filepath.Clean(root)
		if ref != root && !strings.HasPrefix(ref, root+string(filepath.Separator)) {
			return nil, errdefs.InvalidArgument("seccomp localhost profile " + ref + " is outside " + root)
		}
	}
	body, err := os.ReadFile(ref)
	if os.IsNotExist(err) {
		return nil, errdefs.InvalidArgument("seccomp localhost profile " + ref + " does not exist")
	}
	if err != nil {
		return nil, fmt.Errorf("read seccomp profile: %w", err)
	}
	return body, nil
}
