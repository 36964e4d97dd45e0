package oomscore

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestParseCapEff(t *testing.T) {
	tests := []struct {
		name   string
		status string
		mask   uint64
		sysRes bool
		fails  bool
	}{
		{
			name:   "full root",
			status: "Name:\tberthd\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n",
			mask:   0x1ffffffffff, sysRes: true,
		},
		{
			name:   "root without CAP_SYS_RESOURCE (this project's VMs)",
			status: "CapPrm:\t000001fffeffffff\nCapEff:\t000001fffeffffff\nCapBnd:\t000001fffeffffff\n",
			mask:   0x1fffeffffff,
		},
		{name: "only CAP_SYS_RESOURCE", status: "CapEff:\t0000000001000000\n", mask: 1 << 24, sysRes: true},
		{name: "unprivileged", status: "CapEff:\t0000000000000000\n"},
		{name: "no CapEff", status: "Name:\tx\nCapPrm:\t0000000001000000\n", fails: true},
		{name: "garbage", status: "CapEff:\tzz\n", fails: true},
		{name: "empty", fails: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mask, err := parseCapEff(strings.NewReader(tt.status))
			if tt.fails {
				if err == nil {
					t.Errorf("parsed %#x", mask)
				}
				return
			}
			if err != nil || mask != tt.mask {
				t.Fatalf("got %#x, %v; want %#x", mask, err, tt.mask)
			}
			if got := hasCap(mask, capSysResource); got != tt.sysRes {
				t.Errorf("CAP_SYS_RESOURCE = %v, want %v", got, tt.sysRes)
			}
		})
	}
}

// TestClampOnThisHost checks Clamp against the host's real state, whichever it is.
func TestClampOnThisHost(t *testing.T) {
	restricted, err := lacksSysResource()
	if err != nil {
		t.Skip(err)
	}
	own, err := ownScore()
	if err != nil {
		t.Skip(err)
	}
	reason := RestrictionReason()
	t.Logf("restricted %v, own score %d, reason %q", restricted, own, reason)
	for _, want := range []int{-1000, -998, own - 1, own, own + 1, 1000} {
		got := Clamp(want)
		switch {
		case !restricted && got != want:
			t.Errorf("Clamp(%d) = %d without restriction", want, got)
		case restricted && got != max(want, own):
			t.Errorf("Clamp(%d) = %d, want %d", want, got, max(want, own))
		}
	}
	if (reason != "") != restricted {
		t.Errorf("reason %q for restricted %v", reason, restricted)
	}
}

// TestOwnScoreFollowsChanges raises the score of a child copy of this test binary (a
// raise can never be undone without the capability, so not in this process) and checks
// that Clamp follows.
func TestOwnScoreFollowsChanges(t *testing.T) {
	if os.Getenv("BERTH_OOMSCORE_CHILD") == "1" {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte("500"), 0); err != nil {
			t.Fatal(err)
		}
		restricted, _ := lacksSysResource()
		if got := Clamp(-999); restricted && got != 500 || !restricted && got != -999 {
			t.Errorf("Clamp(-999) = %d with own score 500 (restricted %v)", got, restricted)
		}
		return
	}
	if own, err := ownScore(); err != nil || own >= 500 {
		t.Skip("cannot raise the score")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOwnScoreFollowsChanges$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BERTH_OOMSCORE_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("child: %v\n%s", err, out)
	}
}
