package diskusage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Usage is the size of one tree: Bytes of disk it occupies (allocated blocks, as du
// counts them, so a sparse file counts what it holds) and Inodes it uses, each
// hard-linked inode counted once.
type Usage struct {
	Bytes  uint64
	Inodes uint64
}

// Add returns u plus v.
func (u Usage) Add(v Usage) Usage {
	return Usage{Bytes: u.Bytes + v.Bytes, Inodes: u.Inodes + v.Inodes}
}

// Measure walks dir (not following symbolic links) and returns its usage, the directory
// itself included. A missing dir is zero usage; entries that vanish during the walk are
// left out, as a container keeps writing while it is measured.
func Measure(dir string) (Usage, error) {
	var u Usage
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if st.Nlink > 1 && !d.IsDir() {
			key := inode{uint64(st.Dev), st.Ino}
			if seen[key] {
				return nil
			}
			seen[key] = true
		}
		u.Inodes++
		u.Bytes += uint64(st.Blocks) * 512 // st_blocks is in 512-byte units whatever the fs
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return Usage{}, nil
	}
	return u, err
}
