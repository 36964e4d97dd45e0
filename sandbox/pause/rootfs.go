package pause

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// Path is where pause sits in its rootfs, and its argv[0].
const Path = "/pause"

// Args returns the process args of a pause container (a new slice on every call).
func Args() []string { return []string{Path} }

// mountpoints are made in the rootfs so that the OCI runtime never has to create a
// directory in it: the rootfs is shared by every pod and may be mounted read-only.
var mountpoints = []string{"dev", "proc", "sys"}

// image is the pause executable berth installs.
type image struct {
	// sum is the hex SHA-256 of the executable; the rootfs directory is named after it.
	sum  string
	size int64
	// code is the generated executable, or nil when pause is berthd itself (the Go
	// fallback) and self the path of berthd's static executable.
	code []byte
	self string
}

// builtin is the pause image for this process, computed once.
var builtin = sync.OnceValues(func() (image, error) {
	if code, err := Executable(runtime.GOARCH); err == nil {
		return imageOf(code), nil
	}
	return selfImage()
})

func imageOf(code []byte) image {
	sum := sha256.Sum256(code)
	return image{sum: hex.EncodeToString(sum[:]), size: int64(len(code)), code: code}
}

// selfImage is the Go fallback: berthd runs as pause itself when its executable is
// statically linked (no PT_INTERP), which a container with nothing but that file in its
// rootfs needs.
func selfImage() (image, error) {
	exe, err := os.Executable()
	if err != nil {
		return image{}, fmt.Errorf("pause: own executable: %w", err)
	}
	f, err := os.Open(exe)
	if err != nil {
		return image{}, fmt.Errorf("pause: %w", err)
	}
	defer f.Close()
	if static, err := isStatic(f); err != nil {
		return image{}, fmt.Errorf("pause: %s: %w", exe, err)
	} else if !static {
		return image{}, fmt.Errorf("pause: no built-in pause for %s and %s is dynamically linked (build it with CGO_ENABLED=0): %w",
			runtime.GOARCH, exe, errdefs.ErrUnimplemented)
	}
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return image{}, fmt.Errorf("pause: reading %s: %w", exe, err)
	}
	return image{sum: hex.EncodeToString(h.Sum(nil)), size: size, self: exe}, nil
}

// isStatic reports whether an ELF executable needs no program interpreter.
func isStatic(r io.ReaderAt) (bool, error) {
	ef, err := elf.NewFile(r)
	if err != nil {
		return false, err
	}
	defer ef.Close()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// Rootfs makes, once, a rootfs directory under dir that holds nothing but /pause and
// empty mountpoints (/dev, /proc, /sys), and returns its path. It is safe to mount
// read-only and to share between every pod.
//
// The directory is named after the SHA-256 of the executable, so a berthd with another
// pause makes a new one; older ones are left alone (a running pod may have one as its
// root, and they are a few hundred bytes). A call that finds the current rootfs costs
// one lstat. It is built in a temporary directory that is renamed into place, so a
// crash never leaves a half-made rootfs under the final name; a damaged one is
// replaced. dir must be on a file system that allows exec.
func Rootfs(dir string) (string, error) {
	img, err := builtin()
	if err != nil {
		return "", err
	}
	return install(dir, img)
}

// mu serialises the making of rootfs directories in this process.
var mu sync.Mutex

func install(dir string, img image) (string, error) {
	final := filepath.Join(dir, "pause-"+img.sum[:16])
	if current(final, img) {
		return final, nil
	}
	mu.Lock()
	defer mu.Unlock()
	if current(final, img) {
		return final, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("pause rootfs: %w", err)
	}
	if err := checkExec(dir); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, ".pause-tmp-")
	if err != nil {
		return "", fmt.Errorf("pause rootfs: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := populate(tmp, img); err != nil {
		return "", fmt.Errorf("pause rootfs %s: %w", final, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		if current(final, img) { // made meanwhile by another process
			return final, nil
		}
		// A directory under the final name that is not current: damaged, replace it.
		if rmErr := os.RemoveAll(final); rmErr != nil {
			return "", fmt.Errorf("pause rootfs: replacing %s: %w", final, rmErr)
		}
		if err := os.Rename(tmp, final); err != nil {
			return "", fmt.Errorf("pause rootfs: %w", err)
		}
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return "", fmt.Errorf("pause rootfs: %w", err)
	}
	return final, nil
}

// current reports whether root holds the pause of img.
func current(root string, img image) bool {
	fi, err := os.Lstat(filepath.Join(root, Path))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == img.size && fi.Mode().Perm()&0o111 != 0
}

// populate writes the mountpoints and the executable into the temporary rootfs root,
// and syncs them.
func populate(root string, img image) error {
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	for _, m := range mountpoints {
		if err := os.Mkdir(filepath.Join(root, m), 0o755); err != nil {
			return err
		}
	}
	var src io.Reader = bytes.NewReader(img.code)
	if img.code == nil {
		f, err := os.Open(img.self)
		if err != nil {
			return err
		}
		defer f.Close()
		src = f
	}
	if err := writeFile(filepath.Join(root, Path), src, img.size); err != nil {
		return err
	}
	return atomicfile.SyncDir(root)
}

// writeFile writes exactly size bytes of src to a new executable file and syncs it.
func writeFile(path string, src io.Reader, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o555)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, src)
	if err == nil && n != size {
		err = fmt.Errorf("wrote %d bytes, want %d (executable changed?)", n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// checkExec fails when dir is on a noexec mount: the OCI runtime could not run pause
// from it, and would only say so in obscure terms.
func checkExec(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("pause rootfs: %w", err)
	}
	if st.Flags&unix.ST_NOEXEC != 0 {
		return fmt.Errorf("pause rootfs: %s is on a noexec mount: %w", dir, errdefs.ErrFailedPrecondition)
	}
	return nil
}
