package nspin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/network/cnitest"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates namespaces and mounts")
	}
}

// inode returns the inode of a namespace file (the namespace's identity).
func inode(t testing.TB, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// hostNS records the test process's namespaces, as seen from the calling thread.
func hostNS(t testing.TB) map[Kind]uint64 {
	t.Helper()
	m := map[Kind]uint64{}
	for _, k := range []Kind{Net, IPC, UTS} {
		m[k] = inode(t, "/proc/thread-self/ns/"+string(k))
	}
	return m
}

func TestPinAndRemove(t *testing.T) {
	requireRoot(t)
	host := hostNS(t)
	dir := filepath.Join(t.TempDir(), "ns")
	p, err := Pin(dir, Net, IPC, UTS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Remove() })

	for _, k := range []Kind{Net, IPC, UTS} {
		path := p.Path(k)
		if path != filepath.Join(dir, string(k)) {
			t.Errorf("Path(%s) = %q", k, path)
		}
		if ok, err := IsPinned(path); err != nil || !ok {
			t.Errorf("IsPinned(%s) = %v, %v; want true", path, ok, err)
		}
		if inode(t, path) == host[k] {
			t.Errorf("%s namespace is the host's", k)
		}
	}
	if got := len(cnitest.MountsUnder(t, dir)); got != 3 {
		t.Errorf("%d mounts under %s, want 3", got, dir)
	}
	if after := hostNS(t); fmt.Sprint(after) != fmt.Sprint(host) {
		t.Errorf("host namespaces changed: %v -> %v", host, after)
	}

	for i := range 2 { // twice: Remove is idempotent
		if err := p.Remove(); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	if m := cnitest.MountsUnder(t, dir); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir left behind: %v", err)
	}
	if ok, err := IsPinned(p.Net); err != nil || ok {
		t.Errorf("IsPinned after Remove = %v, %v", ok, err)
	}
}

func TestPinErrors(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name  string
		kinds []Kind
		setup func(dir string)
	}{
		{name: "no kinds"},
		{name: "unknown kind", kinds: []Kind{"pid"}},
		{name: "kind twice", kinds: []Kind{Net, Net}},
		{name: "file exists", kinds: []Kind{Net, UTS}, setup: func(dir string) {
			_ = os.MkdirAll(dir, 0o700)
			_ = os.WriteFile(filepath.Join(dir, "uts"), nil, 0o600)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ns")
			if tt.setup != nil {
				tt.setup(dir)
			}
			p, err := Pin(dir, tt.kinds...)
			if err == nil {
				_ = p.Remove()
				t.Fatal("Pin succeeded")
			}
			if m := cnitest.MountsUnder(t, dir); len(m) != 0 {
				t.Errorf("mounts left after failed Pin: %v", m)
			}
			if _, err := os.Stat(filepath.Join(dir, "net")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("net mount point left after failed Pin")
			}
		})
	}
}

// TestPinConcurrentLeavesThreadsAlone pins and removes from many goroutines while others
// keep checking that whatever thread they run on is still in the host's namespaces.
func TestPinConcurrentLeavesThreadsAlone(t *testing.T) {
	requireRoot(t)
	host := hostNS(t)
	root := t.TempDir()
	stop := make(chan struct{})
	var watchers sync.WaitGroup
	var bad sync.Map
	for range 8 {
		watchers.Add(1)
		go func() {
			defer watchers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for k, want := range host {
					var st unix.Stat_t
					if err := unix.Stat("/proc/thread-self/ns/"+string(k), &st); err == nil && st.Ino != want {
						bad.Store(k, st.Ino)
					}
				}
				time.Sleep(50 * time.Microsecond)
			}
		}()
	}
	var pinners sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		pinners.Add(1)
		go func() {
			defer pinners.Done()
			p, err := Pin(filepath.Join(root, fmt.Sprint(i)), Net, IPC, UTS)
			if err != nil {
				errs <- err
				return
			}
			if err := p.Remove(); err != nil {
				errs <- err
			}
		}()
	}
	pinners.Wait()
	close(stop)
	watchers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	bad.Range(func(k, v any) bool {
		t.Errorf("a thread was seen in %s namespace %v, not the host's %d", k, v, host[k.(Kind)])
		return true
	})
	if after := hostNS(t); fmt.Sprint(after) != fmt.Sprint(host) {
		t.Errorf("host namespaces changed: %v -> %v", host, after)
	}
	if m := cnitest.MountsUnder(t, root); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
}

func TestRun(t *testing.T) {
	requireRoot(t)
	host := hostNS(t)
	p, err := Pin(filepath.Join(t.TempDir(), "ns"), Net, UTS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Remove() })

	want := inode(t, p.Net)
	var got uint64
	err = Run(p.Net, Net, func() error {
		got = inode(t, "/proc/thread-self/ns/net")
		return nil
	})
	if err != nil || got != want {
		t.Fatalf("Run: err %v, inside netns %d, want %d", err, got, want)
	}
	// UTS: a hostname set inside stays inside.
	err = Run(p.UTS, UTS, func() error { return unix.Sethostname([]byte("berth-nspin-test")) })
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := os.Hostname(); h == "berth-nspin-test" {
		t.Fatal("hostname leaked to the host")
	}
	sentinel := errors.New("from fn")
	if err := Run(p.Net, Net, func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Run error = %v, want fn's", err)
	}
	if err := Run(p.Net, UTS, func() error { return nil }); err == nil {
		t.Error("Run entered a network namespace as UTS")
	}
	if err := Run(filepath.Join(t.TempDir(), "absent"), Net, func() error { return nil }); err == nil {
		t.Error("Run on an absent path succeeded")
	}
	if after := hostNS(t); fmt.Sprint(after) != fmt.Sprint(host) {
		t.Errorf("host namespaces changed: %v -> %v", host, after)
	}
}

func TestUnpinAbsentAndPlainFile(t *testing.T) {
	dir := t.TempDir()
	if err := Unpin(filepath.Join(dir, "absent")); err != nil {
		t.Errorf("Unpin(absent) = %v", err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, err := IsPinned(plain); err != nil || ok {
		t.Errorf("IsPinned(plain file) = %v, %v", ok, err)
	}
	if os.Geteuid() == 0 {
		if err := Unpin(plain); err != nil {
			t.Errorf("Unpin(plain file) = %v", err)
		}
	}
}

func BenchmarkPinRemove(b *testing.B) {
	requireRoot(b)
	root := b.TempDir()
	for i := 0; b.Loop(); i++ {
		p, err := Pin(filepath.Join(root, fmt.Sprint(i)), Net, IPC, UTS)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Remove(); err != nil {
			b.Fatal(err)
		}
	}
}
