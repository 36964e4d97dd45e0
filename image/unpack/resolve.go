package unpack

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"sync/atomic"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// resolveFlags confine every lookup to the layer root: ".." and absolute symlinks
// resolve as if root were "/", magic links (/proc/self/...) are refused and mount points
// are not crossed, so no path component an image controls can lead outside the root.
const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// openat2Missing is set once openat2 returned ENOSYS (kernel older than 5.6); from then
// on lookups use securejoin's userspace emulation of RESOLVE_IN_ROOT.
var openat2Missing atomic.Bool

// cleanPath confines an archive name to the root: it is cleaned as if rooted at "/", so
// "../../x", "/x" and "./x" all become "x". "" is the root itself.
func cleanPath(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// splitPath returns the directory (""=root) and final component of a cleaned, non-root
// path.
func splitPath(rel string) (dir, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

// rootDir is the layer directory, held open so every lookup is relative to it and a
// rename of the directory's path cannot redirect later writes.
type rootDir struct {
	f  *os.File // owns fd; securejoin's fallback wants an *os.File
	fd int
}

func openRoot(dir string) (*rootDir, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("unpack: open root %q: %w", dir, err)
	}
	return &rootDir{f: os.NewFile(uintptr(fd), dir), fd: fd}, nil
}

func (r *rootDir) close() { r.f.Close() }

// openDir opens the directory rel ("" = root) as an O_PATH descriptor, following
// symlinks only as if the root were "/". The caller closes the descriptor.
func (r *rootDir) openDir(rel string) (int, error) {
	if rel == "" {
		rel = "."
	}
	if !openat2Missing.Load() {
		how := unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: resolveFlags,
		}
		for i := 0; ; i++ {
			fd, err := unix.Openat2(r.fd, rel, &how)
			// The kernel asks for a retry when a concurrent rename could have let ".."
			// escape; nothing else renames inside our root, so a few tries suffice.
			if (err == unix.EAGAIN && i < 16) || err == unix.EINTR {
				continue
			}
			if err != unix.ENOSYS {
				return fd, err
			}
			openat2Missing.Store(true)
			break
		}
	}
	return r.openDirFallback(rel)
}

// openDirFallback is openDir for kernels without openat2.
func (r *rootDir) openDirFallback(rel string) (int, error) {
	f, err := pathrs.OpenatInRoot(r.f, rel) // an O_PATH handle
	if err != nil {
		return -1, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return -1, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return -1, unix.ENOTDIR
	}
	return unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
}

// dirFD returns an O_PATH descriptor of directory rel, creating it and any missing
// parents with mode 0755 when absent, as tar does for entries whose parents the archive
// does not list. The descriptor is borrowed from the applier's dirCache: do not close it.
func (a *applier) dirFD(rel string) (int, error) {
	return a.cachedDir(rel, true)
}

// lookupDir is dirFD for a directory that must exist already.
func (a *applier) lookupDir(rel string) (int, error) {
	return a.cachedDir(rel, false)
}

func (a *applier) cachedDir(rel string, create bool) (int, error) {
	if fd, ok := a.cache.get(rel); ok {
		return fd, nil
	}
	fd, err := a.root.openDir(rel)
	if create && errors.Is(err, unix.ENOENT) {
		fd, err = a.mkdirAll(rel)
	}
	if err != nil {
		return -1, err
	}
	a.cache.put(rel, fd)
	return fd, nil
}

// removeAt removes name from dirfd with everything below it (removeAllAt). A removal
// may change what paths resolve to, so the directory cache is emptied first.
func (a *applier) removeAt(dirfd int, name string) error {
	a.cache.invalidate()
	return removeAllAt(dirfd, name)
}

// mkdirAll walks rel one component at a time from the root. A component that is a
// real directory is entered directly; a missing one is created with mkdirat in the
// directory reached so far; a symlink sends the walk back through openDir for the
// whole prefix, so it keeps its in-root meaning. A symlink that resolves to nothing
// is refused rather than guessing where it should lead. Entering real directories
// directly keeps this linear in the depth, where resolving every prefix from the root
// would let a deep path cost quadratic time.
func (a *applier) mkdirAll(rel string) (int, error) {
	const dirFlags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := a.root.openDir("")
	if err != nil {
		return -1, err
	}
	comps := strings.Split(rel, "/") // cleaned: no "", "." or ".." components
	for i, c := range comps {
		next, err := unix.Openat(fd, c, dirFlags, 0)
		switch err {
		case nil:
		case unix.ENOENT:
			if err = unix.Mkdirat(fd, c, 0o755); err == nil {
				a.stats.Inodes++
				next, err = unix.Openat(fd, c, dirFlags, 0)
			}
		default: // ENOTDIR or ELOOP: a symlink, or not a directory at all
			prefix := strings.Join(comps[:i+1], "/")
			next, err = a.root.openDir(prefix)
			if errors.Is(err, unix.ENOENT) {
				err = fmt.Errorf("parent %q is a dangling symlink: %w", prefix, err)
			}
		}
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

// lstatAt stats name in dirfd without following it. ok is false when it does not exist.
func lstatAt(dirfd int, name string) (st unix.Stat_t, ok bool, err error) {
	err = unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.ENOENT {
		return st, false, nil
	}
	return st, err == nil, err
}

func isDir(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }

// removeAllAt removes name from dirfd, recursing into directories through
// descriptors opened with O_NOFOLLOW: a symlink inside is unlinked, never followed.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	// Read every name before removing any: getdents offsets are not stable while the
	// directory shrinks.
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := removeAllAt(fd, n); err != nil {
			return err
		}
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}
