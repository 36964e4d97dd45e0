package unpack

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Every creator below works on (parent descriptor, final component): the parent was
// resolved inside the root, and the final component is created with O_EXCL/NOFOLLOW
// semantics, so whatever the archive put at that name before cannot redirect the write.

// create runs mk, which creates parent/base with O_EXCL semantics, and reports errors
// as failures of op. Most names of a layer are new, so mk is tried first; only when the
// name exists does replace look at what is there and remove it, or keep it (a directory
// over a directory: kept is true and mk is not run again).
func (a *applier) create(e *entry, parent int, base, op string, mk func() error) (kept bool, err error) {
	err = mk()
	if err == unix.EEXIST {
		if kept, err = a.replace(e, parent, base); err != nil || kept {
			return kept, err
		}
		err = mk()
	}
	if err != nil {
		return false, e.fail(op, err)
	}
	return false, nil
}

func (a *applier) dir(e *entry) error {
	var parent int
	var base string
	var err error
	if e.rel == "" {
		// "./": the archive describes the root itself.
		base = "."
		if parent, err = a.lookupDir(""); err != nil {
			return e.fail("open root", err)
		}
	} else {
		if parent, base, err = a.parentOf(e); err != nil {
			return err
		}
		// Private until finishDirs applies the real mode.
		kept, err := a.create(e, parent, base, "mkdir", func() error { return unix.Mkdirat(parent, base, 0o700) })
		if err != nil {
			return err
		}
		if !kept {
			a.stats.Inodes++
		}
	}
	fd, err := unix.Openat(parent, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return e.fail("open", err)
	}
	defer unix.Close(fd)
	if err := unix.Fchown(fd, e.hdr.Uid, e.hdr.Gid); err != nil {
		return e.fail("chown", err)
	}
	if err := a.setXattrs(e, fdXattr(fd), true); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return e.fail("stat", err)
	}
	a.dirs = append(a.dirs, dirMeta{
		name: e.hdr.Name, rel: e.rel, dev: st.Dev, ino: st.Ino,
		mode: perm(e.hdr), times: times(e.hdr),
	})
	return nil
}

func (a *applier) file(e *entry, r io.Reader) error {
	if err := a.checkSize(e); err != nil {
		return err
	}
	parent, base, err := a.parentOf(e)
	if err != nil {
		return err
	}
	var fd int
	_, err = a.create(e, parent, base, "create", func() (err error) {
		fd, err = unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return err
	}
	a.stats.Inodes++
	f := os.NewFile(uintptr(fd), e.rel)
	err = a.fill(e, f, fd, r)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = e.fail("close", cerr)
	}
	if err != nil {
		return err
	}
	// After close: nothing writes the file any more, so the mtime stays.
	if err := unix.UtimesNanoAt(parent, base, times(e.hdr), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return e.fail("utimes", err)
	}
	return nil
}

// fill writes the content, then ownership, mode and xattrs in that order: writing
// drops security.capability and chown drops setuid/setgid, so each step must come
// after the ones that would undo it.
func (a *applier) fill(e *entry, f *os.File, fd int, r io.Reader) error {
	// io.Copy hands the tar reader a WriteSeeker, so holes of sparse entries are
	// skipped with Seek instead of written as zeroes.
	n, err := io.Copy(ctxWriter{a.ctx, f}, r)
	a.stats.Bytes += n
	if err != nil {
		return e.fail("write", err)
	}
	if a.opts.Writeback && n >= WritebackMin {
		// A hint: an error here only means the data goes to disk later, at the flush.
		_ = unix.SyncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	if err := unix.Fchown(fd, e.hdr.Uid, e.hdr.Gid); err != nil {
		return e.fail("chown", err)
	}
	if err := unix.Fchmod(fd, perm(e.hdr)); err != nil {
		return e.fail("chmod", err)
	}
	return a.setXattrs(e, fdXattr(fd), true)
}

// ctxWriter lets a long file copy notice cancellation between chunks.
type ctxWriter struct {
	ctx context.Context
	f   *os.File
}

func (w ctxWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.f.Write(p)
}

func (w ctxWriter) Seek(off int64, whence int) (int64, error) { return w.f.Seek(off, whence) }

func (a *applier) symlink(e *entry) error {
	parent, base, err := a.parentOf(e)
	if err != nil {
		return err
	}
	// The target is kept verbatim: it is only ever interpreted inside the container,
	// or by our own lookups, which resolve it inside the root.
	_, err = a.create(e, parent, base, "symlink", func() error { return unix.Symlinkat(e.hdr.Linkname, parent, base) })
	if err != nil {
		return err
	}
	a.stats.Inodes++
	return a.finishNode(e, parent, base, false)
}

func (a *applier) node(e *entry) error {
	h := e.hdr
	if h.Devmajor < 0 || h.Devminor < 0 || h.Devmajor > math.MaxUint32 || h.Devminor > math.MaxUint32 {
		return e.fail("mknod", fmt.Errorf("invalid device number %d:%d", h.Devmajor, h.Devminor))
	}
	typ := uint32(unix.S_IFIFO)
	switch h.Typeflag {
	case tar.TypeChar:
		typ = unix.S_IFCHR
	case tar.TypeBlock:
		typ = unix.S_IFBLK
	}
	parent, base, err := a.parentOf(e)
	if err != nil {
		return err
	}
	dev := unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))
	_, err = a.create(e, parent, base, "mknod", func() error { return unix.Mknodat(parent, base, typ|perm(h), int(dev)) })
	if err != nil {
		return err
	}
	a.stats.Inodes++
	return a.finishNode(e, parent, base, true)
}

func (a *applier) hardlink(e *entry) error {
	target := cleanPath(e.hdr.Linkname)
	if target == "" {
		return e.fail("link", errors.New("target is the layer root"))
	}
	parent, base, err := a.parentOf(e)
	if err != nil {
		return err
	}
	// The target's directory is resolved inside the root like any other path, so a
	// target such as "../../etc/passwd" or "dir-symlink-to-/etc/passwd" names a file
	// in the root (usually a missing one), never a host file.
	tdir, tbase := splitPath(target)
	tparent, err := a.lookupDir(tdir)
	if err != nil {
		return e.fail("link", fmt.Errorf("target %q: %w", e.hdr.Linkname, err))
	}
	// Flags 0: a symlink target is linked itself, not followed. linkat fails when the
	// name exists, the target is missing or is a directory; all of those take the
	// careful path below, which explains or handles them.
	if unix.Linkat(tparent, tbase, parent, base, 0) == nil {
		return nil
	}
	tst, ok, err := lstatAt(tparent, tbase)
	switch {
	case err != nil:
		return e.fail("link", fmt.Errorf("target %q: %w", e.hdr.Linkname, err))
	case !ok:
		return e.fail("link", fmt.Errorf("target %q: %w", e.hdr.Linkname, unix.ENOENT))
	case isDir(&tst):
		return e.fail("link", fmt.Errorf("target %q is a directory", e.hdr.Linkname))
	}
	if st, ok, err := lstatAt(parent, base); err != nil {
		return e.fail("lstat", err)
	} else if ok {
		if st.Dev == tst.Dev && st.Ino == tst.Ino {
			return nil // already that inode (e.g. a link to itself)
		}
		if err := a.removeAt(parent, base); err != nil {
			return e.fail("remove existing", err)
		}
	}
	// Flags 0: a symlink target is linked itself, not followed.
	if err := unix.Linkat(tparent, tbase, parent, base, 0); err != nil {
		return e.fail("link", err)
	}
	return nil
}

// finishNode gives a symlink, device or fifo its metadata without following it.
func (a *applier) finishNode(e *entry, parent int, base string, chmod bool) error {
	if err := unix.Fchownat(parent, base, e.hdr.Uid, e.hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return e.fail("chown", err)
	}
	// Symlink modes mean nothing on Linux; devices and fifos need a chmod because
	// mknod applied the umask.
	if chmod {
		if err := chmodNoFollow(parent, base, perm(e.hdr)); err != nil {
			return e.fail("chmod", err)
		}
	}
	if err := a.setXattrs(e, procXattr(parent, base), false); err != nil {
		return err
	}
	if err := unix.UtimesNanoAt(parent, base, times(e.hdr), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return e.fail("utimes", err)
	}
	return nil
}

// chmodNoFollow uses fchmodat2's AT_SYMLINK_NOFOLLOW (Linux 6.6). Older kernels
// lack it; falling back to plain fchmodat is safe here because the callers just
// created base as a device or fifo and nothing else writes the root.
func chmodNoFollow(parent int, base string, mode uint32) error {
	err := unix.Fchmodat(parent, base, mode, unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		err = unix.Fchmodat(parent, base, mode, 0)
	}
	return err
}

type xattrSetter func(key string, val []byte) error

func fdXattr(fd int) xattrSetter {
	return func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) }
}

// procXattr sets xattrs on parent/base without following base. Symlinks and device
// nodes cannot be opened for fsetxattr, and an O_PATH descriptor does not take
// xattrs; lsetxattr through the parent's /proc/self/fd entry reaches exactly that
// directory and does not follow the final component.
func procXattr(parent int, base string) xattrSetter {
	p := fmt.Sprintf("/proc/self/fd/%d/%s", parent, base)
	return func(k string, v []byte) error { return unix.Lsetxattr(p, k, v, 0) }
}

const paxXattrPrefix = "SCHILY.xattr."

// setXattrs applies the PAX xattr records of e. regular is true for files and
// directories, the only inodes on which Linux allows user.* xattrs.
func (a *applier) setXattrs(e *entry, set xattrSetter, regular bool) error {
	var keys []string
	for k := range e.hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, paxXattrPrefix); ok && !overlayXattr(name) {
			keys = append(keys, name)
		}
	}
	sort.Strings(keys) // deterministic order, and deterministic errors
	for _, k := range keys {
		err := set(k, []byte(e.hdr.PAXRecords[paxXattrPrefix+k]))
		switch {
		case err == nil:
		case errors.Is(err, unix.EOPNOTSUPP):
			// The filesystem (or this namespace on it) has no xattrs.
		case strings.HasPrefix(k, "security."):
			// LSM-owned: the kernel may refuse labels or capabilities it does not
			// accept here; the layer is still usable without them.
		case !regular && strings.HasPrefix(k, "user.") && errors.Is(err, unix.EPERM):
			// user.* xattrs cannot exist on symlinks and devices.
		default:
			return e.fail("setxattr "+k, err)
		}
	}
	return nil
}

// overlayXattr reports xattrs in overlayfs's own namespaces (redirects, metacopy,
// origin, opacity), which an untrusted layer must not be able to plant.
func overlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}
