package pause_test

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-runtime/berth/sandbox/pause"
	"github.com/berth-runtime/berth/sandbox/runtime"
	"github.com/berth-runtime/berth/sandbox/runtime/runtimetest"
)

// memory is what /proc/<pid>/smaps_rollup says of a process, in kB.
type memory struct{ rss, pss int }

func measure(t *testing.T, pid int) memory {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		t.Skipf("no smaps_rollup: %v", err)
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		n, _ := strconv.Atoi(fields[1])
		switch fields[0] {
		case "Rss:":
			m.rss = n
		case "Pss:":
			m.pss = n
		}
	}
	return m
}

// TestUnderRunc runs pause as a pod's infra container would be run: from the rootfs
// berth makes, through the OCI runtime, as pid 1 of its own PID namespace. It reaps
// what is orphaned into that namespace, stops on SIGTERM, and stays tiny.
func TestUnderRunc(t *testing.T) {
	tests := []struct {
		name   string
		rootfs func(dir string) (string, error)
		// maxPSS is the bound in kB on the proportional set size of one pause.
		maxPSS int
	}{
		{name: "generated", rootfs: pause.Rootfs, maxPSS: 64},
		{name: "go-fallback", rootfs: pause.RootfsOfSelf, maxPSS: 8 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := runtimetest.NewEnv(t, "runc")
			rootfs, err := tt.rootfs(t.TempDir())
			if err != nil {
				t.Skip(err) // the Go fallback needs a static test binary
			}
			rt := &runtime.Runtime{Name: "runc", Path: env.Runtime, Root: env.Root}
			ctx := context.Background()
			const id = "infra"
			bundle := env.Bundle(env.Spec(id, rootfs, pause.Args()...))
			pid, err := rt.Run(ctx, id, runtime.CreateOptions{Bundle: bundle})
			if err != nil {
				t.Fatal(err)
			}
			waitSleeping(t, pid)
			m := measure(t, pid)
			t.Logf("%s pause: RSS %d kB, PSS %d kB", tt.name, m.rss, m.pss)
			if m.pss > tt.maxPSS {
				t.Errorf("PSS %d kB, want at most %d kB", m.pss, tt.maxPSS)
			}
			if !reapsOrphans(t, pid) {
				t.Errorf("orphans not reaped: children %v", children(t, pid))
			}
			if err := rt.Kill(ctx, id, syscall.SIGTERM, false); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				st, err := rt.State(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if st.Status == runtime.StatusStopped {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("still %s after SIGTERM", st.Status)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := rt.Delete(ctx, id, false); err != nil {
				t.Fatal(err)
			}
			if containers, cgroups := env.Leftovers(); len(containers)+len(cgroups) > 0 {
				t.Errorf("left %q %q", containers, cgroups)
			}
		})
	}
}
