package integration

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRemovedContainersLeaveNothing: RemoveContainer commits by renaming the record,
// the writable layer and the state directory into trash directories and deletes them
// in the background. With a real berthd: the trash empties shortly after a removal;
// and a berthd killed right after removals (its trash perhaps not swept yet) leaves
// nothing to the next one, which sweeps at start.
func TestRemovedContainersLeaveNothing(t *testing.T) {
	e := newCtrEnv(t)
	// Files in the writable layer, so that deleting it is real work.
	script := `for i in 1 2 3 4 5 6 7 8; do mkdir -p /data/$i; head -c 65536 /dev/zero >/data/$i/f; done; sleep 1000`
	remove := func(name string) {
		t.Helper()
		id := e.run(t, ctrConfig(name, sh(script)))
		e.waitFile(t, id, "/data/8/f")
		e.stop(t, id, 0)
		e.remove(t, id)
	}
	remove("first")
	waitTrashEmpty(t, e.d, 30*time.Second)

	for _, name := range []string{"second", "third"} {
		remove(name)
	}
	e.d.kill()
	d2 := startDaemon(t, daemonOptions{Dir: e.d.dir, Config: e.config})
	d2.cleanupPods(t, e.pod)
	e.d = d2
	if got := listContainers(t, e, nil); len(got) != 0 {
		t.Errorf("removed containers listed after the restart: %v", got)
	}
	waitTrashEmpty(t, e.d, 30*time.Second)
	if tr := containerTraces(t, e.d); len(tr.Records)+len(tr.StateDirs)+len(tr.RWDirs) != 0 {
		t.Errorf("removed containers left traces: %+v", tr)
	}
}

// waitFile waits until path exists in the container (its script got that far).
func (e *ctrEnv) waitFile(t *testing.T, id, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if res, err := e.execErr(t, id, 10, "test", "-e", path); err == nil && res.ExitCode == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared in container %s", path, id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitTrashEmpty waits until every trash directory of berthd's is empty.
func waitTrashEmpty(t *testing.T, d *daemon, timeout time.Duration) {
	t.Helper()
	bins := []string{
		filepath.Join(d.root(), "trash", "containers"),
		filepath.Join(d.root(), "trash", "rw"),
		filepath.Join(d.dir, "state", "trash", "containers"),
	}
	deadline := time.Now().Add(timeout)
	for {
		var left []string
		for _, b := range bins {
			entries, err := os.ReadDir(b)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			for _, en := range entries {
				left = append(left, filepath.Join(b, en.Name()))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("trash not emptied after %s: %v", timeout, left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
