package spec

import (
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// DeviceNode is a host device the caller has already looked up (stat of the
// CRI's host_path); this package does no I/O of its own for devices.
type DeviceNode struct {
	// ContainerPath is where the node appears in the container.
	ContainerPath string
	// Type is "c" (character) or "b" (block).
	Type         string
	Major, Minor int64
	FileMode     os.FileMode
	UID, GID     uint32
	// Permissions is the CRI's cgroup access, any of "rwm"; empty is "rwm".
	Permissions string
}

// WithDevices owns linux.devices and the device rules of
// linux.resources.devices: deny everything, then allow each node with its
// permissions. privileged allows every device instead of listing rules (the
// caller passes the host's nodes to have them created).
func WithDevices(privileged bool, nodes []DeviceNode) Opt {
	return func(s *specs.Spec) error {
		rules := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
		if privileged {
			rules = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		}
		var devs []specs.LinuxDevice
		for _, n := range nodes {
			d, access, err := checkDevice(n)
			if err != nil {
				return err
			}
			devs = append(devs, d)
			if !privileged {
				major, minor := n.Major, n.Minor
				rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: n.Type, Major: &major, Minor: &minor, Access: access})
			}
		}
		s.Linux.Devices = devs
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		s.Linux.Resources.Devices = rules
		return nil
	}
}

func checkDevice(n DeviceNode) (specs.LinuxDevice, string, error) {
	if !path.IsAbs(n.ContainerPath) {
		return specs.LinuxDevice{}, "", errdefs.InvalidArgument(fmt.Sprintf("device container path %q is not absolute", n.ContainerPath))
	}
	if n.Type != "c" && n.Type != "b" {
		return specs.LinuxDevice{}, "", errdefs.InvalidArgument(fmt.Sprintf("device %s: type %q is neither c nor b", n.ContainerPath, n.Type))
	}
	access := n.Permissions
	if access == "" {
		access = "rwm"
	}
	if strings.Trim(access, "rwm") != "" {
		return specs.LinuxDevice{}, "", errdefs.InvalidArgument(fmt.Sprintf("device %s: permissions %q not in rwm", n.ContainerPath, n.Permissions))
	}
	mode, uid, gid := n.FileMode, n.UID, n.GID
	return specs.LinuxDevice{
		Path: path.Clean(n.ContainerPath), Type: n.Type, Major: n.Major, Minor: n.Minor,
		FileMode: &mode, UID: &uid, GID: &gid,
	}, access, nil
}
