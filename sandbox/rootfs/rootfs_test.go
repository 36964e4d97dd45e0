package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// layer makes a layer directory holding files (name → content; content "whiteout"
// makes an overlayfs whiteout, a 0:0 character device).
func layer(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if content == "whiteout" {
			err = unix.Mknod(p, unix.S_IFCHR, 0) // device 0:0, mode 000
		} else {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
}

// mountForTest mounts and makes sure the test unmounts, whatever happens.
func mountForTest(t *testing.T, lowers []string, readOnly bool) (rwDir, target string, err error) {
	t.Helper()
	base := t.TempDir()
	rwDir, target = filepath.Join(base, "rw"), filepath.Join(base, "rootfs")
	t.Cleanup(func() {
		if err := Remove(rwDir, target); err != nil {
			t.Error(err)
		}
	})
	return rwDir, target, Mount(lowers, rwDir, target, readOnly)
}

func TestMount(t *testing.T) {
	requireRoot(t)
	base := map[string]string{"etc/os": "base", "etc/gone": "x", "bin/tool": "v1"}
	top := map[string]string{"bin/tool": "v2", "etc/gone": "whiteout"}
	tests := []struct {
		name     string
		layers   []map[string]string
		readOnly bool
		want     map[string]string // file → content; "" means absent
	}{
		{name: "two layers", layers: []map[string]string{base, top}, want: map[string]string{"etc/os": "base", "bin/tool": "v2", "etc/gone": ""}},
		{name: "two layers read-only", layers: []map[string]string{base, top}, readOnly: true, want: map[string]string{"etc/os": "base", "bin/tool": "v2", "etc/gone": ""}},
		{name: "one layer", layers: []map[string]string{base}, want: map[string]string{"etc/os": "base", "etc/gone": "x"}},
		{name: "one layer read-only", layers: []map[string]string{base}, readOnly: true, want: map[string]string{"etc/os": "base"}},
		{name: "no layers", want: map[string]string{"etc/os": ""}},
		{name: "no layers read-only", readOnly: true, want: map[string]string{"etc/os": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lowers []string
			for _, l := range tt.layers {
				lowers = append(lowers, layer(t, l))
			}
			rwDir, target, err := mountForTest(t, lowers, tt.readOnly)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.want {
				got, err := os.ReadFile(filepath.Join(target, name))
				if want == "" && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s: %q, %v; want it absent", name, got, err)
				} else if want != "" && string(got) != want {
					t.Errorf("%s: %q, %v; want %q", name, got, err, want)
				}
			}
			err = os.WriteFile(filepath.Join(target, "new"), []byte("data"), 0o644)
			if tt.readOnly {
				if !errors.Is(err, unix.EROFS) {
					t.Errorf("write to a read-only rootfs: %v, want EROFS", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(filepath.Join(rwDir, "upper", "new")); string(got) != "data" {
				t.Errorf("upper/new: %q, %v", got, err)
			}
			for _, l := range lowers {
				if _, err := os.Stat(filepath.Join(l, "new")); err == nil {
					t.Errorf("write landed in layer %s", l)
				}
			}
		})
	}
}

func TestManyLayers(t *testing.T) {
	requireRoot(t)
	long := strings.Repeat("l", 200)
	tests := []struct {
		name    string
		layers  int
		wantErr error
	}{
		// 40 paths of over 200 bytes: more than a page of options for mount(2).
		{name: "options over a page", layers: 40},
		{name: "deeper than overlayfs stacks", layers: maxLayers + 1, wantErr: errdefs.ErrFailedPrecondition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var lowers []string
			for i := range tt.layers {
				l := filepath.Join(dir, fmt.Sprintf("%s-%03d", long, i))
				if err := os.MkdirAll(l, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(l, "layer"), []byte(fmt.Sprint(i)), 0o644); err != nil {
					t.Fatal(err)
				}
				lowers = append(lowers, l)
			}
			_, target, err := mountForTest(t, lowers, false)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("mount: %v, want %v", err, tt.wantErr)
				}
				return
			}
			if errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Skipf("kernel without lowerdir+: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			// The last layer listed is the top one.
			if got, _ := os.ReadFile(filepath.Join(target, "layer")); string(got) != fmt.Sprint(tt.layers-1) {
				t.Errorf("top layer file %q, want %d", got, tt.layers-1)
			}
		})
	}
}

func TestUnmountAndRemoveIdempotent(t *testing.T) {
	requireRoot(t)
	rwDir, target, err := mountForTest(t, []string{layer(t, map[string]string{"a": "1"}), layer(t, nil)}, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := Unmount(target); err != nil {
			t.Fatalf("unmount #%d: %v", i+1, err)
		}
	}
	if _, err := os.Stat(filepath.Join(target, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("still mounted: %v", err)
	}
	for i := range 2 {
		if err := Remove(rwDir, target); err != nil {
			t.Fatalf("remove #%d: %v", i+1, err)
		}
	}
	for _, p := range []string{rwDir, target} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left: %v", p, err)
		}
	}
	if err := Unmount(filepath.Join(t.TempDir(), "absent")); err != nil {
		t.Errorf("unmount of an absent path: %v", err)
	}
}
