package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// idmapDir is the directory under rwDir where the idmapped layers are mounted while the
// overlay is being made.
const idmapDir = "idmap"

// Owner is who owns the root of a container's filesystem on the host: a user-namespaced
// pod's root (its namespace's uid and gid 0 as the host sees them).
type Owner struct {
	UID, GID int
}

// MountIDMapped is Mount (read-write) for a container in a user namespace: each lower
// layer is seen through an idmapped mount of the namespace pinned at userns, so that the
// image's files, owned by the ids of the image, are owned by the same ids inside the
// namespace, and the upper directory belongs to the namespace's root (owner), so that
// the container's root can write its root directory. Nothing on disk is chowned: the
// layers stay shared with every other container.
//
// The idmapped layers are attached under rwDir/idmap only while the overlay is mounted
// (overlayfs keeps private clones of its layers), then detached again.
func MountIDMapped(lowers []string, rwDir, target, userns string, owner Owner) error {
	upper := filepath.Join(rwDir, "upper")
	if err := os.MkdirAll(upper, 0o755); err != nil {
		return fmt.Errorf("mount rootfs %s: %w", target, err)
	}
	if err := os.Chown(upper, owner.UID, owner.GID); err != nil {
		return fmt.Errorf("mount rootfs %s: %w", target, err)
	}
	if len(lowers) == 0 {
		empty := filepath.Join(rwDir, "lower")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return fmt.Errorf("mount rootfs %s: empty layer: %w", target, err)
		}
		return Mount([]string{empty}, rwDir, target, false)
	}
	ns, err := os.Open(userns)
	if err != nil {
		return fmt.Errorf("mount rootfs %s: user namespace: %w", target, err)
	}
	defer ns.Close()
	mapped := make([]string, 0, len(lowers))
	var mountErr error
	for i, l := range lowers {
		dst := filepath.Join(rwDir, idmapDir, strconv.Itoa(i))
		if mountErr = idmapBind(l, dst, int(ns.Fd())); mountErr != nil {
			mountErr = fmt.Errorf("mount rootfs %s: %w", target, mountErr)
			break
		}
		mapped = append(mapped, dst)
	}
	if mountErr == nil {
		mountErr = Mount(mapped, rwDir, target, false)
	}
	// The overlay holds clones of its layers: the attached ones go either way.
	return errors.Join(mountErr, detachIDMapped(rwDir))
}

// idmapBind attaches at dst a clone of the mount tree at src whose ids are mapped through
// the user namespace usernsFD.
func idmapBind(src, dst string, usernsFD int) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", src, err)
	}
	defer unix.Close(tree)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(usernsFD)}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return fmt.Errorf("idmap %s: %w", src, err)
	}
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount %s on %s: %w", src, dst, err)
	}
	return nil
}

// detachIDMapped unmounts whatever is mounted under rwDir/idmap and removes the
// directory. Idempotent; Remove calls it first, so that a crash between the two steps
// of MountIDMapped never has RemoveAll walk into an image layer.
func detachIDMapped(rwDir string) error {
	dir := filepath.Join(rwDir, idmapDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("idmapped layers: %w", err)
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if err := unix.Unmount(p, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount idmapped layer %s: %w", p, err))
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
