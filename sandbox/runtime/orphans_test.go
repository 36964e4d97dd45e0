package runtime

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		comm     string
		state    byte
		ok       bool
	}{
		{name: "runc stage", in: "27285 (runc:[2:INIT]) Z 29840 27285 27232 0", comm: "runc:[2:INIT]", state: 'Z', ok: true},
		{name: "spaces and parentheses in the name", in: "12 (a) b (c)) S 1 12", comm: "a) b (c)", state: 'S', ok: true},
		{name: "truncated after the name", in: "12 (sh)", ok: false},
		{name: "no name", in: "12 S 1", ok: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			comm, state, ok := parseStat([]byte(tc.in))
			if ok != tc.ok || (ok && (comm != tc.comm || state != tc.state)) {
				t.Errorf("got %q %q %v, want %q %q %v", comm, state, ok, tc.comm, tc.state, tc.ok)
			}
		})
	}
}

// TestReapOrphans: exited orphans named like runc's stages are reaped, other
// children are left to whoever waits for them.
func TestReapOrphans(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a child subreaper: %v", err)
	}
	t.Cleanup(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	// A process's command name is the base name of the path it was executed by.
	orphan := func(name string) int {
		t.Helper()
		link := filepath.Join(dir, name)
		if err := os.Symlink(truePath, link); err != nil {
			t.Fatal(err)
		}
		// sh starts it in the background and exits: the orphan is adopted by us.
		out, err := exec.Command("sh", "-c", `"$0" & echo $!`, link).Output()
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; {
			if _, state, ok := procStat(pid); ok && state == 'Z' && slices.Contains(childPids(), pid) {
				return pid
			}
			if time.Now().After(deadline) {
				t.Fatalf("pid %d never became our zombie child", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	stage := orphan("runc:[2:INIT]")
	other := orphan("other")
	t.Cleanup(func() {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(other, &ws, unix.WNOHANG, nil)
	})

	reaped := reapOrphans()
	if !slices.Contains(reaped, stage) {
		t.Errorf("reaped %v, want the runc stage %d among them", reaped, stage)
	}
	if slices.Contains(reaped, other) {
		t.Errorf("reaped %d, which is no runc stage", other)
	}
	if _, _, ok := procStat(stage); ok {
		t.Errorf("pid %d is still there", stage)
	}
	if _, state, ok := procStat(other); !ok || state != 'Z' {
		t.Errorf("pid %d: state %q, want it left a zombie for its owner", other, state)
	}
}
