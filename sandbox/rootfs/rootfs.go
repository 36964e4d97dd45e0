package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// maxLayers is overlayfs's limit on lower layers (OVL_MAX_STACK).
const maxLayers = 500

// indexParam is where the overlay module says whether "index" is on by default.
var indexParam = "/sys/module/overlay/parameters/index"

// Mount mounts at target an overlay whose lower layers are lowers (base layer first, as
// the image store lists its snapshots) and whose upper and work directories are made
// under rwDir (rwDir/upper 0755, rwDir/work 0700); paths are absolute. target is
// created if missing. With
// readOnly there is no upper or work directory: a read-only overlay, or with a single
// layer a read-only bind mount, as overlayfs wants two lowers when it has no upper. An
// image with no layers gets an empty lower directory, rwDir/lower.
//
// The options are lowerdir, upperdir and workdir alone, plus index=off when the
// kernel turns the inode index on by default (CONFIG_OVERLAY_FS_INDEX): the index
// ties an upper directory to the lower layers it was first mounted on and refuses the
// mount otherwise, while layers shared between containers may be re-extracted or
// moved by the image store. redirect_dir, metacopy and xino keep the kernel's defaults.
func Mount(lowers []string, rwDir, target string, readOnly bool) error {
	if len(lowers) > maxLayers {
		return fmt.Errorf("mount rootfs %s: image has too many layers for overlayfs (%d, at most %d): %w",
			target, len(lowers), maxLayers, errdefs.ErrFailedPrecondition)
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("mount rootfs: %w", err)
	}
	if len(lowers) == 0 {
		empty := filepath.Join(rwDir, "lower")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return fmt.Errorf("mount rootfs %s: empty layer: %w", target, err)
		}
		lowers = []string{empty}
	}
	if readOnly && len(lowers) == 1 {
		return bindReadOnly(lowers[0], target)
	}
	// overlayfs lists the top layer first.
	top := slices.Clone(lowers)
	slices.Reverse(top)
	var upper, work string
	if !readOnly {
		upper, work = filepath.Join(rwDir, "upper"), filepath.Join(rwDir, "work")
		if err := os.MkdirAll(upper, 0o755); err != nil {
			return fmt.Errorf("mount rootfs %s: %w", target, err)
		}
		if err := os.MkdirAll(work, 0o700); err != nil {
			return fmt.Errorf("mount rootfs %s: %w", target, err)
		}
	}
	indexOff := indexOnByDefault()

	data, ok := mountData(top, upper, work, indexOff)
	if ok {
		var flags uintptr
		if readOnly {
			flags = unix.MS_RDONLY
		}
		if err := unix.Mount("overlay", target, "overlay", flags, data); err != nil {
			return fmt.Errorf("mount overlay on %s (%d layers): %w", target, len(top), err)
		}
		return nil
	}
	return fsMount(top, upper, work, target, readOnly, indexOff)
}

// mountData is the mount(2) option string, and whether mount(2) can take it: the
// kernel copies one page of it, and a comma or colon in a path would be taken for a
// separator (overlayfs's escapes differ between kernels, so fsMount takes those).
func mountData(top []string, upper, work string, indexOff bool) (string, bool) {
	paths := append(slices.Clone(top), upper, work)
	for _, p := range paths {
		if strings.ContainsAny(p, ",:\\") {
			return "", false
		}
	}
	opts := []string{"lowerdir=" + strings.Join(top, ":")}
	if upper != "" {
		opts = append(opts, "upperdir="+upper, "workdir="+work)
	}
	if indexOff {
		opts = append(opts, "index=off")
	}
	data := strings.Join(opts, ",")
	return data, len(data) < os.Getpagesize()
}

// fsMount mounts the overlay with the new mount API, one layer at a time, which has no
// limit on the options' length but "lowerdir+" needs Linux 6.8.
func fsMount(top []string, upper, work, target string, readOnly, indexOff bool) (err error) {
	fs, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("mount overlay on %s: fsopen: %w", target, err)
	}
	defer unix.Close(fs)
	dirs := make([][2]string, 0, len(top)+2)
	for _, l := range top {
		dirs = append(dirs, [2]string{"lowerdir+", l})
	}
	if upper != "" {
		dirs = append(dirs, [2]string{"upperdir", upper}, [2]string{"workdir", work})
	}
	for _, d := range dirs {
		if err := setDir(fs, d[0], d[1]); err != nil {
			if errors.Is(err, unix.EINVAL) {
				// Before Linux 6.8 overlayfs knows no "lowerdir+"; before 6.13 it takes
				// no descriptors, and fsconfig copies at most 255 bytes of a string.
				return fmt.Errorf("mount overlay on %s: image has too many layers for this kernel (%d layers, more than a page of options; %s=%s: %v): %w",
					target, len(top), d[0], d[1], err, errdefs.ErrFailedPrecondition)
			}
			return fmt.Errorf("mount overlay on %s: %s=%s: %w", target, d[0], d[1], err)
		}
	}
	if indexOff {
		if err := unix.FsconfigSetString(fs, "index", "off"); err != nil {
			return fmt.Errorf("mount overlay on %s: index=off: %w", target, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return fmt.Errorf("mount overlay on %s (%d layers): %w", target, len(top), err)
	}
	var attr int
	if readOnly {
		attr = unix.MOUNT_ATTR_RDONLY
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return fmt.Errorf("mount overlay on %s: fsmount: %w", target, err)
	}
	defer unix.Close(mnt)
	if err := unix.MoveMount(mnt, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount overlay on %s: move_mount: %w", target, err)
	}
	return nil
}

// setDir sets a directory option of an overlay's fs context: by descriptor (Linux ≥
// 6.13), which has no length limit, else by path string, which fsconfig truncates past
// 255 bytes and so refuses here.
func setDir(fs int, key, path string) error {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	err = unix.FsconfigSetFd(fs, key, fd)
	if errors.Is(err, unix.EINVAL) && len(path) < 256 {
		err = unix.FsconfigSetString(fs, key, path)
	}
	return err
}

// bindReadOnly bind mounts src on target read-only. A bind mount takes its flags from
// its source, so read-only needs a remount.
func bindReadOnly(src, target string) error {
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount %s on %s: %w", src, target, err)
	}
	if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		_ = Unmount(target)
		return fmt.Errorf("remount %s read-only: %w", target, err)
	}
	return nil
}

// indexOnByDefault reports whether overlayfs turns the inode index on by default.
func indexOnByDefault() bool {
	data, err := os.ReadFile(indexParam)
	return err == nil && strings.TrimSpace(string(data)) == "Y"
}

// How long Unmount retries a busy mount before it detaches it.
const (
	busyRetries = 10
	busyDelay   = 50 * time.Millisecond
)

// Unmount unmounts target, every mount stacked on it. Idempotent: a target that is not
// mounted, or absent, is fine. A busy mount (a process still in it) is retried
// briefly, then detached (MNT_DETACH): it goes once its last user does.
func Unmount(target string) error {
	for busy := 0; ; {
		err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
		switch {
		case err == nil:
			continue // another mount may be stacked below
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil // not a mount point (any more), or absent
		case errors.Is(err, unix.EBUSY) && busy < busyRetries:
			busy++
			time.Sleep(busyDelay)
		case errors.Is(err, unix.EBUSY):
			if err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW|unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("unmount %s (detach): %w", target, err)
			}
			busy = 0
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}

// Detach unmounts target and the idmapped layers kept in rwDir, and leaves both
// directories for the caller to delete (Remove deletes them). Idempotent.
func Detach(rwDir, target string) error {
	if err := Unmount(target); err != nil {
		return err
	}
	if err := detachIDMapped(rwDir); err != nil {
		return fmt.Errorf("remove rootfs %s: %w", rwDir, err)
	}
	return nil
}

// Remove unmounts target and removes rwDir and target. Idempotent.
func Remove(rwDir, target string) error {
	if err := Detach(rwDir, target); err != nil {
		return err
	}
	// target was the mount point: once unmounted it is an empty directory, and Remove
	// (not RemoveAll) makes sure nothing mounted there is ever deleted through it.
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove rootfs %s: %w", target, err)
	}
	if err := os.RemoveAll(rwDir); err != nil {
		return fmt.Errorf("remove rootfs %s: %w", rwDir, err)
	}
	return nil
}
