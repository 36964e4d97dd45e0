package monitor

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestOOMKills(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		want   uint64
		wantOK bool
	}{
		{name: "v1 killed", data: "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", want: 2, wantOK: true},
		{name: "v1 not killed", data: "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", want: 0, wantOK: true},
		{name: "v2 events", data: "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n", want: 1, wantOK: true},
		{name: "old kernel without the line", data: "oom_kill_disable 0\nunder_oom 0\n", wantOK: false},
		{name: "oom_kill_disable is not oom_kill", data: "oom_kill_disable 1\n", wantOK: false},
		{name: "garbage value", data: "oom_kill x\n", wantOK: false},
		{name: "empty", data: "", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ok := oomKills([]byte(tt.data))
			if n != tt.want || ok != tt.wantOK {
				t.Errorf("oomKills = %d, %v; want %d, %v", n, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestOOMKilled(t *testing.T) {
	dir := t.TempDir()
	killed := filepath.Join(dir, "killed")
	_ = os.WriteFile(killed, []byte("oom_kill 1\n"), 0o600)
	tests := []struct {
		path string
		want bool
	}{
		{killed, true},
		{"", false},
		{filepath.Join(dir, "missing"), false},
	}
	for _, tt := range tests {
		if got := watchOOM(tt.path).killed(false); got != tt.want {
			t.Errorf("watchOOM(%q).killed() = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// TestOOMWatchOutlivesTheFile: under the systemd driver the scope, memory.events with
// it, is gone when the container has exited; the kill seen while it ran still counts.
func TestOOMWatchOutlivesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "memory.events")
	if err := os.WriteFile(path, []byte("oom 0\noom_kill 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := watchOOM(path)
	if err := os.WriteFile(path, []byte("oom 1\noom_kill 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for w.seen.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if !w.killed(false) {
		t.Error("killed() = false after the file reported a kill and went away")
	}
}

// TestOOMKilledInParent: when the container's scope is gone before its memory.events
// could be read, the parent's count, taken before the container ran, decides.
func TestOOMKilledInParent(t *testing.T) {
	tests := []struct {
		name        string
		removeScope bool
		parentAfter string
		want        bool
	}{
		{name: "scope gone, parent counted a kill", removeScope: true, parentAfter: "oom 1\noom_kill 3\n", want: true},
		{name: "scope gone, parent unchanged", removeScope: true, parentAfter: "oom 0\noom_kill 2\n", want: false},
		{name: "scope still there: its own count decides", removeScope: false, parentAfter: "oom 1\noom_kill 3\n", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			scope := filepath.Join(parent, "berth-x.scope")
			if err := os.Mkdir(scope, 0o700); err != nil {
				t.Fatal(err)
			}
			write := func(path, data string) {
				if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write(filepath.Join(parent, "memory.events"), "oom 0\noom_kill 2\n")
			write(filepath.Join(scope, "memory.events"), "oom 0\noom_kill 0\n")
			w := watchOOM(filepath.Join(scope, "memory.events"))
			if tt.removeScope {
				if err := os.RemoveAll(scope); err != nil {
					t.Fatal(err)
				}
			}
			write(filepath.Join(parent, "memory.events"), tt.parentAfter)
			if w.killed(false) {
				t.Fatal("killed() = true, want false: the scope's own count is 0")
			}
			if got := w.killedInParent(); got != tt.want {
				t.Fatalf("killedInParent() = %v, want %v", got, tt.want)
			}
		})
	}
}
