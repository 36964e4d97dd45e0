package sandbox

import (
	"context"
	"testing"

	"github.com/berth-runtime/berth/sandbox/rootfs"
)

// TestRemoveContainerCrashThenRestart: a berthd that dies part way through a
// RemoveContainer leaves what the next start finishes. Before the commit (the record's
// removal) the container is still there as recorded, and a Remove then takes
// everything; after it the container is gone for good (not listed, its name free) and
// the next start removes its directories, trash and leases.
func TestRemoveContainerCrashThenRestart(t *testing.T) {
	tests := []struct {
		name   string
		crash  func(t *testing.T, e *fakeEnv, id string) // the part of a removal done
		listed bool
	}{
		{"before the commit, rootfs unmounted", func(t *testing.T, e *fakeEnv, id string) {
			detach(t, e, id)
		}, true},
		{"after the commit", func(t *testing.T, e *fakeEnv, id string) {
			detach(t, e, id)
			if err := e.s.ctrStore.Delete(id); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"after the directories went to the trash, leases held", func(t *testing.T, e *fakeEnv, id string) {
			detach(t, e, id)
			if err := e.s.ctrStore.Delete(id); err != nil {
				t.Fatal(err)
			}
			for _, put := range []struct {
				put func(string) error
				dir string
			}{{e.s.rwTrash.Put, e.s.rwDirOf(id)}, {e.s.stateTrash.Put, e.s.ctrDir(id)}} {
				if err := put.put(put.dir); err != nil {
					t.Fatal(err)
				}
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFakeEnv(t)
			podID, err := e.s.RunPod(context.Background(), basePodConfig(), "")
			if err != nil {
				t.Fatal(err)
			}
			cfg := baseContainerConfig()
			id, err := e.s.CreateContainer(context.Background(), podID, cfg)
			if err != nil {
				t.Fatal(err)
			}
			tt.crash(t, e, id)
			e.restart(t)

			listed := len(e.s.ListContainers(nil)) == 1
			if listed != tt.listed {
				t.Fatalf("listed after the restart: %v, want %v", listed, tt.listed)
			}
			if listed {
				if err := e.s.RemoveContainer(context.Background(), id); err != nil {
					t.Fatal(err)
				}
			}
			e.checkNoContainerLeft(t)
			// Nothing resurrected holds the name.
			id2, err := e.s.CreateContainer(context.Background(), podID, cfg)
			if err != nil {
				t.Fatalf("CreateContainer of the same name after the restart: %v", err)
			}
			if err := e.s.RemoveContainer(context.Background(), id2); err != nil {
				t.Fatal(err)
			}
			e.checkNoContainerLeft(t)
		})
	}
}

// detach unmounts the container's rootfs, as a removal does before its commit.
func detach(t *testing.T, e *fakeEnv, id string) {
	t.Helper()
	if err := rootfs.Detach(e.s.rwDirOf(id), e.s.rootfsOf(id)); err != nil {
		t.Fatal(err)
	}
}

// restart replaces the env's Service by a new one on the same directories, as the
// next berthd after a crash. The old one is closed first (its goroutines would
// otherwise outlive the test); nothing is queued for its reaper, so its Close does
// nothing a crash would not have done. The fake monitors go too: a real one, waiting
// for a start, is told to quit on its socket (monitor.Abort), which a fake has not.
func (e *fakeEnv) restart(t *testing.T) {
	t.Helper()
	cfg := e.s.cfg
	e.s.Close(context.Background())
	killMonitors(e.monitor)
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.s = s
}
