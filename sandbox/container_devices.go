package sandbox

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/spec"
)

// deviceNodes looks up the CRI's devices on the host; a privileged container gets every
// device node of the host's /dev instead. A device whose host path is a directory
// stands for every device node under it (as kubelet's device plugins may hand out
// /dev/dri or /dev/vfio), each at the same relative path under the container path.
func deviceNodes(devs []*runtimeapi.Device, privileged bool) ([]spec.DeviceNode, error) {
	if privileged {
		return hostDevices()
	}
	var out []spec.DeviceNode
	for _, d := range devs {
		host, ctr := d.GetHostPath(), d.GetContainerPath()
		if ctr == "" {
			ctr = host
		}
		fi, err := os.Stat(host)
		if err != nil {
			return nil, errdefs.InvalidArgument(fmt.Sprintf("device %s: %v", host, err))
		}
		if !fi.IsDir() {
			n, err := deviceNode(host, ctr, d.GetPermissions())
			if err != nil {
				return nil, err
			}
			out = append(out, n)
			continue
		}
		nodes, err := dirDevices(host, ctr, d.GetPermissions())
		if err != nil {
			return nil, err
		}
		out = append(out, nodes...)
	}
	return out, nil
}

// dirDevices lists the device nodes under the host directory dir, mapped under ctr.
// Symbolic links inside are not followed (a link could lead anywhere on the host).
func dirDevices(dir, ctr, perms string) ([]spec.DeviceNode, error) {
	var out []spec.DeviceNode
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeDevice == 0 {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		n, err := deviceNode(p, filepath.Join(ctr, rel), perms)
		if err != nil {
			return err
		}
		out = append(out, n)
		return nil
	})
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Sprintf("device directory %s: %v", dir, err))
	}
	return out, nil
}

func deviceNode(host, ctr, perms string) (spec.DeviceNode, error) {
	if ctr == "" {
		ctr = host
	}
	var st unix.Stat_t
	if err := unix.Stat(host, &st); err != nil {
		return spec.DeviceNode{}, errdefs.InvalidArgument(fmt.Sprintf("device %s: %v", host, err))
	}
	typ := ""
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return spec.DeviceNode{}, errdefs.InvalidArgument(fmt.Sprintf("device %s is not a device node", host))
	}
	return spec.DeviceNode{
		ContainerPath: ctr, Type: typ,
		Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
		FileMode: fs.FileMode(st.Mode & 0o777), UID: st.Uid, GID: st.Gid, Permissions: perms,
	}, nil
}

// hostDevices lists the device nodes under the host's /dev (not /dev/pts, whose nodes
// belong to the host's terminals, nor the console).
func hostDevices() ([]spec.DeviceNode, error) {
	var out []spec.DeviceNode
	err := filepath.WalkDir("/dev", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a node that vanished while walking
		}
		if d.IsDir() && (p == "/dev/pts" || p == "/dev/shm" || p == "/dev/mqueue") {
			return filepath.SkipDir
		}
		if d.Type()&fs.ModeDevice == 0 || p == "/dev/console" {
			return nil
		}
		n, err := deviceNode(p, p, "rwm")
		if err == nil {
			out = append(out, n)
		}
		return nil
	})
	return out, err
}
