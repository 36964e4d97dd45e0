package spec

import (
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/selinux/go-selinux"
	"github.com/opencontainers/selinux/go-selinux/label"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// SELinuxLabels decides a container's process and mount labels from the CRI's
// SELinuxOption, through opencontainers/selinux: a fresh MCS pair unless the option
// names a level, the option's user, role and type on top. A privileged container's
// process runs with the runtime's default (unconfined for the node's policy) and its
// files get the privileged-container mount label. On a node with SELinux disabled both
// labels are empty and nothing is reserved. Labels returned must be handed back with
// ReleaseSELinuxLabel when the container goes.
func SELinuxLabels(opt *runtimeapi.SELinuxOption, privileged bool) (process, mount string, err error) {
	var opts []string
	if privileged {
		opts = []string{"disable"}
	} else {
		opts = selinuxOptions(opt)
	}
	process, mount, err = label.InitLabels(opts)
	if err != nil {
		return "", "", errdefs.InvalidArgument(fmt.Sprintf("SELinux options %v: %v", opts, err))
	}
	return process, mount, nil
}

// selinuxOptions turns the CRI's option into InitLabels' "key:value" list.
func selinuxOptions(opt *runtimeapi.SELinuxOption) []string {
	var opts []string
	for _, kv := range []struct{ key, value string }{
		{"user", opt.GetUser()}, {"role", opt.GetRole()}, {"type", opt.GetType()}, {"level", opt.GetLevel()},
	} {
		if kv.value != "" {
			opts = append(opts, kv.key+":"+kv.value)
		}
	}
	return opts
}

// ReleaseSELinuxLabel frees the MCS level a process label reserved; "" is a no-op.
func ReleaseSELinuxLabel(process string) {
	if process != "" {
		selinux.ReleaseLabel(process)
	}
}

// WithSELinuxLabels sets process.selinuxLabel and linux.mountLabel; empty labels
// leave them unset.
func WithSELinuxLabels(process, mount string) Opt {
	return func(s *specs.Spec) error {
		s.Process.SelinuxLabel = process
		s.Linux.MountLabel = mount
		return nil
	}
}

// RelabelMount gives a CRI mount's host path the container's mount label when the
// mount asks for it (selinux_relabel); shared keeps the level off so that other
// containers can use the path too. A no-op without SELinux or without a label.
func RelabelMount(m *runtimeapi.Mount, mountLabel string, shared bool) error {
	if !m.GetSelinuxRelabel() || mountLabel == "" {
		return nil
	}
	if err := label.Relabel(m.GetHostPath(), mountLabel, shared); err != nil {
		return fmt.Errorf("relabel %s: %w", m.GetHostPath(), err)
	}
	return nil
}
