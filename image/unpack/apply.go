package unpack

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Options bound one Apply.
type Options struct {
	// MaxSize caps the total bytes of regular file content written (0 = no cap). Past it
	// Apply fails with an error wrapping ErrTooLarge (a gzip bomb must be refused cleanly).
	MaxSize int64
	// Writeback starts writing each file's data to disk as soon as it is written
	// (sync_file_range SYNC_FILE_RANGE_WRITE, which does not wait), for files of at least
	// WritebackMin bytes: a flush after Apply then finds most of the data on disk
	// already. It changes nothing about durability; only a later fsync or syncfs does.
	Writeback bool
}

// WritebackMin is the smallest file Options.Writeback starts writing early: below it the
// system call costs more than it saves, and the final flush batches small files anyway.
const WritebackMin = 64 << 10

// Stats says what one Apply wrote.
type Stats struct {
	// Bytes is the regular file content written (logical size: sparse holes count).
	Bytes int64
	// Inodes counts the filesystem objects created: files, directories (including
	// parents the archive did not list), symlinks, device nodes, fifos and whiteouts.
	// Hardlinks share an inode and are not counted.
	Inodes int64
}

// ErrTooLarge is wrapped by the error Apply returns when Options.MaxSize is exceeded.
var ErrTooLarge = errors.New("layer exceeds the unpacked size limit")

// Whiteout names, from the OCI image layer specification.
const (
	whPrefix     = ".wh."
	whMetaPrefix = ".wh..wh."
	whOpaque     = ".wh..wh..opq"
)

// applier is the state of one Apply.
type applier struct {
	ctx   context.Context
	root  *rootDir
	cache dirCache // borrowed directory descriptors, see dirCache
	opts  Options
	stats Stats
	// dirs holds directory modes and times, applied after the last entry because
	// creating children changes a directory's mtime (and, for a directory without
	// write permission, would need it to be writable first).
	dirs []dirMeta
}

type dirMeta struct {
	name     string // the header's name, for errors
	rel      string
	dev, ino uint64 // identifies the directory, in case a later entry replaced it
	mode     uint32
	times    []unix.Timespec
}

// entry is one tar header being applied.
type entry struct {
	hdr *tar.Header
	rel string // cleaned, confined path; "" is the root
}

// fail names the entry and the operation that failed, so a broken layer can be
// diagnosed from the error alone.
func (e *entry) fail(op string, err error) error {
	return fmt.Errorf("unpack %q: %s: %w", e.hdr.Name, op, err)
}

// Apply reads an uncompressed tar layer from r and writes it below root (an existing,
// empty directory). It honours ctx cancellation between entries (and while writing a
// file). On error the root holds a partial layer; the caller discards it.
func Apply(ctx context.Context, root string, r io.Reader, opts Options) (Stats, error) {
	if opts.MaxSize < 0 {
		return Stats{}, fmt.Errorf("unpack: negative MaxSize %d", opts.MaxSize)
	}
	rd, err := openRoot(root)
	if err != nil {
		return Stats{}, err
	}
	defer rd.close()
	a := &applier{ctx: ctx, root: rd, opts: opts}
	defer a.cache.close()
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return a.stats, fmt.Errorf("unpack: %w", err)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a.stats, fmt.Errorf("unpack: read tar header: %w", err)
		}
		err = a.apply(&entry{hdr: hdr, rel: cleanPath(hdr.Name)}, tr)
		a.cache.release()
		if err != nil {
			return a.stats, err
		}
	}
	return a.stats, a.finishDirs()
}

// apply dispatches one entry on its name (whiteouts) and then its type.
func (a *applier) apply(e *entry, r io.Reader) error {
	if e.hdr.Typeflag == tar.TypeXGlobalHeader {
		// Global PAX headers only carry defaults, which archive/tar does not apply.
		return nil
	}
	if underAufsMeta(e.rel) {
		return nil
	}
	if err := checkOwner(e.hdr); err != nil {
		return e.fail("chown", err)
	}
	if _, base := splitPath(e.rel); e.rel != "" && strings.HasPrefix(base, whPrefix) {
		return a.whiteout(e, base)
	}
	if e.rel == "" && e.hdr.Typeflag != tar.TypeDir {
		return e.fail("create", errors.New("only a directory can describe the layer root"))
	}
	switch e.hdr.Typeflag {
	case tar.TypeDir:
		return a.dir(e)
	case tar.TypeReg, tar.TypeGNUSparse:
		return a.file(e, r)
	case tar.TypeSymlink:
		return a.symlink(e)
	case tar.TypeLink:
		return a.hardlink(e)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return a.node(e)
	}
	return e.fail("create", fmt.Errorf("unsupported tar entry type %q", e.hdr.Typeflag))
}

// underAufsMeta reports entries inside aufs metadata directories (".wh..wh.plnk/..."),
// which have no meaning for overlayfs and must not appear in the snapshot.
func underAufsMeta(rel string) bool {
	dir, _ := splitPath(rel)
	for _, c := range strings.Split(dir, "/") {
		if strings.HasPrefix(c, whMetaPrefix) {
			return true
		}
	}
	return false
}

func checkOwner(hdr *tar.Header) error {
	// -1 would mean "leave unchanged" to chown; anything out of uint32 range is corrupt.
	if hdr.Uid < 0 || hdr.Gid < 0 || int64(hdr.Uid) >= math.MaxUint32 || int64(hdr.Gid) >= math.MaxUint32 {
		return fmt.Errorf("invalid owner %d:%d", hdr.Uid, hdr.Gid)
	}
	return nil
}

// whiteout converts a ".wh." entry to overlayfs form in this layer's own directory.
func (a *applier) whiteout(e *entry, base string) error {
	dir, _ := splitPath(e.rel)
	if base == whOpaque {
		return a.opaque(e, dir)
	}
	if strings.HasPrefix(base, whMetaPrefix) {
		return nil // aufs metadata, see underAufsMeta
	}
	name := strings.TrimPrefix(base, whPrefix)
	if name == "" || name == "." || name == ".." {
		return e.fail("whiteout", errors.New("invalid whiteout name"))
	}
	parent, err := a.dirFD(dir)
	if err != nil {
		return e.fail("mkdir parent", err)
	}
	if _, ok, err := lstatAt(parent, name); err != nil {
		return e.fail("lstat", err)
	} else if ok {
		// The name was written by this same layer: a whiteout only hides lower layers.
		return nil
	}
	if err := unix.Mknodat(parent, name, unix.S_IFCHR, 0); err != nil {
		return e.fail("mknod whiteout", err)
	}
	a.stats.Inodes++
	if err := unix.Fchownat(parent, name, e.hdr.Uid, e.hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return e.fail("chown", err)
	}
	return nil
}

// opaque marks dir (created if needed) so overlayfs hides lower layers' contents of it.
func (a *applier) opaque(e *entry, dir string) error {
	pfd, err := a.dirFD(dir)
	if err != nil {
		return e.fail("mkdir", err)
	}
	// fsetxattr needs a real descriptor; reopening "." through the O_PATH one cannot
	// land anywhere else.
	fd, err := unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return e.fail("open", err)
	}
	defer unix.Close(fd)
	if err := unix.Fsetxattr(fd, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		return e.fail("setxattr trusted.overlay.opaque", err)
	}
	return nil
}

// finishDirs sets directory modes and times, children first, the last header for a
// directory winning. A directory a later entry replaced is skipped: the recorded inode
// no longer sits at that path.
func (a *applier) finishDirs() error {
	done := make(map[string]bool, len(a.dirs))
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		if done[d.rel] {
			continue
		}
		done[d.rel] = true
		dir, base := splitPath(d.rel)
		if d.rel == "" {
			base = "."
		}
		parent, err := a.root.openDir(dir)
		if err != nil {
			continue // an ancestor was replaced by a non-directory
		}
		err = a.finishDir(parent, base, d)
		unix.Close(parent)
		if err != nil {
			return fmt.Errorf("unpack %q: %w", d.name, err)
		}
	}
	return nil
}

func (a *applier) finishDir(parent int, base string, d dirMeta) error {
	// O_NOFOLLOW plus the inode check: whatever now sits at this name, only the
	// directory recorded earlier gets the mode and times.
	fd, err := unix.Openat(parent, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil // replaced by a non-directory
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if st.Dev != d.dev || st.Ino != d.ino {
		return nil // replaced by another directory, which has its own record
	}
	if err := unix.Fchmod(fd, d.mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := unix.UtimesNanoAt(parent, base, d.times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("utimes: %w", err)
	}
	return nil
}

// perm is the part of a tar mode that chmod understands, setuid/setgid/sticky included.
func perm(hdr *tar.Header) uint32 { return uint32(hdr.Mode) & 0o7777 }

// times returns atime and mtime for utimensat; a missing atime takes the mtime.
func times(hdr *tar.Header) []unix.Timespec {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	return []unix.Timespec{timespec(at), timespec(hdr.ModTime)}
}

// timespec avoids UnixNano, which overflows outside 1678..2262.
func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// parentOf returns an O_PATH descriptor of e's parent directory (created if missing;
// borrowed from the cache, not to be closed) and e's final component.
func (a *applier) parentOf(e *entry) (int, string, error) {
	dir, base := splitPath(e.rel)
	fd, err := a.dirFD(dir)
	if err != nil {
		return -1, "", e.fail("mkdir parent", err)
	}
	return fd, base, nil
}

// replace makes room for e at parent/base: an existing entry is removed (a directory
// with everything below it) unless both it and the new entry are directories, in
// which case it is kept and reported by the true result.
func (a *applier) replace(e *entry, parent int, base string) (kept bool, err error) {
	st, ok, err := lstatAt(parent, base)
	if err != nil {
		return false, e.fail("lstat", err)
	}
	if !ok {
		return false, nil
	}
	if isDir(&st) && e.hdr.Typeflag == tar.TypeDir {
		return true, nil
	}
	if err := a.removeAt(parent, base); err != nil {
		return false, e.fail("remove existing", err)
	}
	return false, nil
}

// checkSize refuses a file before any of it is written when its declared size would
// take the layer past MaxSize: archive/tar yields exactly hdr.Size bytes (the logical
// size for sparse files), so this is the earliest point the cap can be enforced.
func (a *applier) checkSize(e *entry) error {
	if e.hdr.Size < 0 {
		return e.fail("write", fmt.Errorf("negative size %d", e.hdr.Size))
	}
	if a.opts.MaxSize > 0 && e.hdr.Size > a.opts.MaxSize-a.stats.Bytes {
		return fmt.Errorf("unpack %q: %w (%d bytes, %d already written, limit %d)",
			e.hdr.Name, ErrTooLarge, e.hdr.Size, a.stats.Bytes, a.opts.MaxSize)
	}
	return nil
}
