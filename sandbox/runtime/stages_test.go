package runtime_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/sandbox/runtime"
)

// TestReapStages makes orphaned zombies under the test process (a child subreaper, as
// berthd is) named like runc's init stages and like anything else: only the stages
// are reaped.
func TestReapStages(t *testing.T) {
	sleepPath := lookSleep(t)
	dir := t.TempDir()
	tests := []struct {
		name   string
		reaped bool
	}{
		{"runc:[0:PARENT]", true},
		{"runc:[1:CHILD]", true},
		{"runc:[2:INIT]", false}, // becomes the container's process: waited for by pid
		{"runc", false},          // what berthd starts itself, waited for by os/exec
		{"sleep", false},
	}
	setSubreaper(t, true)
	defer setSubreaper(t, false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pid := orphanZombie(t, sleepPath, filepath.Join(dir, tt.name))
			waitZombie(t, pid)
			runtime.ReapStages()
			_, statErr := os.Stat("/proc/" + strconv.Itoa(pid))
			if gone := os.IsNotExist(statErr); gone != tt.reaped {
				t.Errorf("reaped = %v, want %v", gone, tt.reaped)
			}
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil) // the test's own cleanup
		})
	}
}

// waitZombie waits until pid is a zombie child of this process.
func waitZombie(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			t.Fatalf("process %d is gone: %v", pid, err)
		}
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if fields[0] == "Z" && fields[1] == strconv.Itoa(os.Getpid()) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d never became a zombie child of the test", pid)
}

// TestWatchStages: with the watcher running, a stage's zombie goes without anyone
// calling ReapStages.
func TestWatchStages(t *testing.T) {
	setSubreaper(t, true)
	defer setSubreaper(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go runtime.WatchStages(ctx, nil)
	time.Sleep(50 * time.Millisecond) // let it subscribe to SIGCHLD
	pid := orphanZombie(t, lookSleep(t), filepath.Join(t.TempDir(), "runc:[1:CHILD]"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			t.Fatal("the stage's zombie was not reaped")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lookSleep(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1)")
	}
	return p
}

// orphanZombie runs sleep under the name link (the exec'd file's name becomes the
// process's comm) from a shell that then becomes a longer sleep that never waits for
// it: the zombie is handed to this process (a subreaper) when that ends. It returns
// its pid; callers that must see the zombie wait for it (waitZombie).
func orphanZombie(t *testing.T, sleepPath, link string) int {
	t.Helper()
	if err := os.Symlink(sleepPath, link); err != nil {
		t.Fatal(err)
	}
	sh := exec.Command("sh", "-c", `"$0" 0.05 & echo $!; exec sleep 0.2`, link)
	out, err := sh.Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}
