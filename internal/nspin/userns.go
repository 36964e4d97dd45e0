package nspin

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// IDMap is one range of a user namespace's uid or gid map: Size ids from ContainerID
// inside are HostID... outside.
type IDMap struct {
	ContainerID uint32 `json:"containerID"`
	HostID      uint32 `json:"hostID"`
	Size        uint32 `json:"size"`
}

// holderName is argv[0] of the process that holds a new user namespace while PinUser
// pins it: this same executable, stopped in init before anything else runs.
const holderName = "berth-userns-holder"

func init() {
	if len(os.Args) > 0 && os.Args[0] == holderName {
		holdNamespaces()
	}
}

// holdNamespaces is all a holder does: it waits until PinUser closes its stdin (or
// berthd dies and the kernel closes it), then exits.
func holdNamespaces() {
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// PinUser creates a user namespace with the given maps and new namespaces of kinds owned
// by it, and pins each one to dir/<kind>, like Pin.
//
// A process cannot unshare(2) a user namespace once it has threads, and every Go
// program has, so a short-lived child makes them: this executable is started again as
// holderName with CLONE_NEWUSER and the kinds' flags in one clone(2), which creates the
// user namespace first and the others owned by it (which is what lets a container's root
// administer its pod's network, mount sysfs and mqueue). The parent writes the maps
// (setgroups allowed: containers set their supplementary groups), bind-mounts
// /proc/<child>/ns/<kind>, and lets the child go. Executing /proc/self/exe needs no
// access to the directories above the executable, which the namespace's root would
// lack.
func PinUser(dir string, uids, gids []IDMap, kinds ...Kind) (Pinned, error) {
	p := Pinned{Dir: dir}
	if len(uids) == 0 || len(gids) == 0 {
		return p, errors.New("nspin: a user namespace needs uid and gid maps")
	}
	flags := unix.CLONE_NEWUSER
	for _, k := range kinds {
		f, err := k.flag()
		if err != nil {
			return p, err
		}
		if flags&f != 0 {
			return p, fmt.Errorf("nspin: namespace kind %q given twice", string(k))
		}
		flags |= f
	}
	all := append([]Kind{User}, kinds...)
	if err := p.createMountPoints(all); err != nil {
		return Pinned{Dir: dir}, err
	}
	if err := pinFromHolder(flags, uids, gids, p, all); err != nil {
		_ = p.Remove()
		return Pinned{Dir: dir}, err
	}
	return p, nil
}

// pinFromHolder starts a holder in new namespaces (flags) and bind-mounts each of its
// namespaces of kinds onto p's files.
func pinFromHolder(flags int, uids, gids []IDMap, p Pinned, kinds []Kind) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("nspin: %w", err)
	}
	defer r.Close()
	cmd := &exec.Cmd{
		Path: "/proc/self/exe", Args: []string{holderName}, Dir: "/", Env: []string{},
		Stdin: r,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:                 uintptr(flags),
			UidMappings:                sysIDMaps(uids),
			GidMappings:                sysIDMaps(gids),
			GidMappingsEnableSetgroups: true,
		},
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("nspin: start the process that makes the user namespace: %w", err)
	}
	var mountErr error
	for _, k := range kinds {
		src := fmt.Sprintf("/proc/%d/ns/%s", cmd.Process.Pid, k)
		if err := unix.Mount(src, p.Path(k), "", unix.MS_BIND, ""); err != nil {
			mountErr = fmt.Errorf("nspin: bind-mount %s on %s: %w", src, p.Path(k), err)
			break
		}
	}
	w.Close()
	if err := cmd.Wait(); err != nil && mountErr == nil {
		mountErr = fmt.Errorf("nspin: the process that made the user namespace: %w", err)
	}
	return mountErr
}

func sysIDMaps(m []IDMap) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, r := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(r.ContainerID), HostID: int(r.HostID), Size: int(r.Size)}
	}
	return out
}
