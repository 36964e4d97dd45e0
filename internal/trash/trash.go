package trash

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Bin is one trash directory. Its methods are safe for concurrent use.
type Bin struct {
	dir string
	seq atomic.Uint64
}

// For is the trash directory of the trees kept in dir: <parent>/trash/<base>, a
// sibling of dir (so that listing dir shows only what it keeps) and, unless dir is a
// mount point of its own, on its file system.
func For(dir string) string {
	dir = filepath.Clean(dir)
	return filepath.Join(filepath.Dir(dir), "trash", filepath.Base(dir))
}

// Open returns the bin in dir, creating dir (0700) if needed.
func Open(dir string) (*Bin, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("trash: %w", err)
	}
	return &Bin{dir: filepath.Clean(dir)}, nil
}

// Dir is the trash directory.
func (b *Bin) Dir() string { return b.dir }

// Put moves the tree at path into the bin. An absent path is not an error. When the
// bin is on another file system (EXDEV) the tree is deleted at once instead. The
// rename is not fsynced: a caller that needs the removal to survive a power failure
// syncs path's parent directory.
func (b *Bin) Put(path string) error {
	name := fmt.Sprintf("%s.%s-%d", filepath.Base(path),
		strconv.FormatInt(time.Now().UnixNano(), 36), b.seq.Add(1))
	err := os.Rename(path, filepath.Join(b.dir, name))
	switch {
	case err == nil, errors.Is(err, fs.ErrNotExist):
		return nil
	case errors.Is(err, unix.EXDEV):
		if err := os.RemoveAll(path); err != nil {
			return fmt.Errorf("trash: %w", err)
		}
		return nil
	default:
		return fmt.Errorf("trash: %w", err)
	}
}

// Empty reports whether the bin holds nothing.
func (b *Bin) Empty() bool {
	entries, err := os.ReadDir(b.dir)
	return err == nil && len(entries) == 0
}

// Sweep deletes everything in the bin: it detaches the mounts below it, then removes
// each entry that has none left. It returns the errors of the entries it could not
// remove (they stay for the next sweep).
func (b *Bin) Sweep() error {
	entries, err := os.ReadDir(b.dir)
	if err != nil || len(entries) == 0 {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	mounted, err := mountsBelow(b.dir)
	if err != nil {
		return fmt.Errorf("trash: %w", err)
	}
	var errs []error
	if len(mounted) > 0 {
		// Deepest first, so that a mount on a mount goes before the one below it.
		sort.Sort(sort.Reverse(sort.StringSlice(mounted)))
		for _, m := range mounted {
			if err := unix.Unmount(m, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil &&
				!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("trash: detach %s: %w", m, err))
			}
		}
		if mounted, err = mountsBelow(b.dir); err != nil {
			return fmt.Errorf("trash: %w", err)
		}
	}
	for _, e := range entries {
		p := filepath.Join(b.dir, e.Name())
		if holdsMount(p, mounted) {
			errs = append(errs, fmt.Errorf("trash: %s still has a mount; left for the next sweep", p))
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("trash: %w", err))
		}
	}
	return errors.Join(errs...)
}

func holdsMount(p string, mounted []string) bool {
	for _, m := range mounted {
		if m == p || strings.HasPrefix(m, p+"/") {
			return true
		}
	}
	return false
}

// mountsBelow lists the mount points strictly below dir in this mount namespace.
func mountsBelow(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint ...
		fields := strings.SplitN(sc.Text(), " ", 6)
		if len(fields) < 5 {
			continue
		}
		if m := unescape(fields[4]); strings.HasPrefix(m, dir+"/") {
			out = append(out, m)
		}
	}
	return out, sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space, and so on).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
