package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestContainerRemoveKillsLeftovers: in a pod that shares its PID namespace (the
// default), a container's init can exit and leave a process behind in its cgroup
// (reparented to the pod's pause). The container is EXITED, and RemoveContainer of it
// must kill that process and take its cgroup away, as a stop then remove of a running
// container does (critest's container benchmark).
func TestContainerRemoveKillsLeftovers(t *testing.T) {
	e := newCtrEnv(t)
	// A sleep no other test runs, to find it among the host's processes.
	arg := fmt.Sprintf("%d", 100000+time.Now().UnixNano()%800000)
	id := e.run(t, ctrConfig("leaves", sh("sleep "+arg+" & echo started; exit 0")))
	e.removeAtEnd(t, id) // idempotent: a no-op once the test removed it
	e.waitExited(t, id, 30*time.Second)
	left := sleepersOf(t, arg, id)
	if len(left) != 1 {
		t.Fatalf("processes 'sleep %s' in the container's cgroup: %v, want the one its init left", arg, left)
	}
	e.remove(t, id)
	deadline := time.Now().Add(10 * time.Second)
	for len(sleepersOf(t, arg, id)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the process the container left (pid %s) still runs 10s after RemoveContainer", left[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range berthCgroups() {
		if filepath.Base(c) == id {
			t.Errorf("the container's cgroup %s is left after RemoveContainer", c)
		}
	}
}

// sleepersOf lists the live (not zombie) processes `sleep arg` in container id's cgroup.
func sleepersOf(t *testing.T, arg, id string) []string {
	t.Helper()
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmdline, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil || string(cmdline) != "sleep\x00"+arg+"\x00" {
			continue
		}
		cg, _ := os.ReadFile(filepath.Join(p, "cgroup"))
		stat, _ := os.ReadFile(filepath.Join(p, "stat"))
		_, state, _ := strings.Cut(string(stat), ") ")
		if bytes.Contains(cg, []byte("/"+id)) && state != "" && state[0] != 'Z' {
			out = append(out, filepath.Base(p))
		}
	}
	return out
}
