package diskusage

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func write(t *testing.T, path string, size int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMeasure(t *testing.T) {
	tests := []struct {
		name       string
		build      func(t *testing.T, dir string)
		minBytes   uint64
		maxBytes   uint64
		wantInodes uint64
	}{
		{"missing directory", func(t *testing.T, dir string) { os.Remove(dir) }, 0, 0, 0},
		{"empty directory", func(*testing.T, string) {}, 0, 64 << 10, 1},
		{"files and a subdirectory", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "a"), 1<<20)
			write(t, filepath.Join(dir, "sub", "b"), 3<<20)
		}, 4 << 20, 5 << 20, 4},
		{"a hard link counts once", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "a"), 2<<20)
			if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
				t.Fatal(err)
			}
		}, 2 << 20, 3 << 20, 2},
		{"a sparse file counts its blocks", func(t *testing.T, dir string) {
			f, err := os.Create(filepath.Join(dir, "sparse"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(1 << 30); err != nil {
				t.Fatal(err)
			}
		}, 0, 1 << 20, 2},
		{"a symlink is not followed", func(t *testing.T, dir string) {
			if err := os.Symlink("/usr", filepath.Join(dir, "l")); err != nil {
				t.Fatal(err)
			}
		}, 0, 1 << 20, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tree")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			tt.build(t, dir)
			u, err := Measure(dir)
			if err != nil {
				t.Fatal(err)
			}
			if u.Bytes < tt.minBytes || u.Bytes > tt.maxBytes || u.Inodes != tt.wantInodes {
				t.Fatalf("Measure = %+v, want bytes in [%d, %d] and %d inodes", u, tt.minBytes, tt.maxBytes, tt.wantInodes)
			}
		})
	}
}

func TestCacheFollowsTheTrees(t *testing.T) {
	root := t.TempDir()
	var mu sync.Mutex
	trees := map[string]string{"a": filepath.Join(root, "a"), "b": filepath.Join(root, "b")}
	c := NewCache(0, func() map[string]string {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]string{}
		for k, v := range trees {
			out[k] = v
		}
		return out
	}, nil)
	if c.Interval() != DefaultInterval {
		t.Fatalf("interval %v, want the default", c.Interval())
	}
	if _, ok := c.Get("a"); ok {
		t.Fatal("figures before the first refresh")
	}
	write(t, filepath.Join(root, "a", "f"), 1<<20)
	write(t, filepath.Join(root, "b", "f"), 2<<20)
	c.Refresh()
	a, ok := c.Get("a")
	if !ok || a.Bytes < 1<<20 || a.Inodes != 2 || a.Time.IsZero() {
		t.Fatalf("a = %+v %v", a, ok)
	}
	if total := c.Total(); total.Bytes < 3<<20 || total.Inodes != 4 {
		t.Fatalf("total = %+v", total)
	}
	// Figures change only at a refresh: reading is never a walk.
	write(t, filepath.Join(root, "a", "g"), 4<<20)
	if again, _ := c.Get("a"); again != a {
		t.Fatalf("figures changed without a refresh: %+v", again)
	}
	mu.Lock()
	delete(trees, "b")
	mu.Unlock()
	c.Refresh()
	if _, ok := c.Get("b"); ok {
		t.Fatal("a removed tree is still reported")
	}
	if a, _ := c.Get("a"); a.Bytes < 5<<20 {
		t.Fatalf("a after refresh = %+v", a)
	}
}

func TestCacheIntervalIsBounded(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		time.Millisecond: MinInterval, time.Hour: MaxInterval, 30 * time.Second: 30 * time.Second,
	} {
		if got := NewCache(in, func() map[string]string { return nil }, nil).Interval(); got != want {
			t.Errorf("NewCache(%v).Interval() = %v, want %v", in, got, want)
		}
	}
}

func TestRunRefreshesUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	c := NewCache(MinInterval, func() map[string]string { return map[string]string{"x": dir} }, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := c.Get("x"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not refresh")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not end with its context")
	}
}

func TestNilCacheHasNoFigures(t *testing.T) {
	var c *Cache
	if _, ok := c.Get("x"); ok {
		t.Fatal("a nil cache has figures")
	}
	if total := c.Total(); total != (Sample{}) {
		t.Fatalf("a nil cache's total = %+v", total)
	}
}
