package runtime_test

import (
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
	sleepPath, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1)")
	}
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
			// The exec'd file's name becomes the process's comm.
			link := filepath.Join(dir, tt.name)
			if err := os.Symlink(sleepPath, link); err != nil {
				t.Fatal(err)
			}
			// sh starts it, then becomes a longer sleep that never waits for it: the
			// zombie is handed to us when that ends.
			sh := exec.Command("sh", "-c", `"$0" 0.05 & echo $!; exec sleep 0.2`, link)
			out, err := sh.Output()
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
			if err != nil {
				t.Fatal(err)
			}
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
