package monitor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestPrepared(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		abort bool
		want  Exit // FinishedAt ignored
	}{
		{name: "start", args: []string{"sh", "-c", "echo up; exit 5"}, want: Exit{ExitCode: 5, Reason: ReasonError}},
		{name: "abort", args: []string{"sleep", "1000"}, abort: true},
		{name: "start fails", args: []string{"/no/such/program"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			cfg := h.config(h.spec(newID(t), tc.args...))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			mpid, err := Prepare(ctx, h.bin, cfg)
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			t.Cleanup(func() { Kill(mpid) })
			if err := exec.Command(h.env.Runtime, "--root="+h.env.Root, "state", cfg.ID).Run(); err == nil {
				t.Fatal("the runtime has the container before Start")
			}
			if Invoked(cfg.Dir) {
				t.Fatal("Invoked before Start")
			}
			if tc.abort {
				if err := Abort(ctx, cfg.Dir, mpid); err != nil {
					t.Fatalf("Abort: %v", err)
				}
				if _, err := os.Stat(filepath.Join(cfg.Dir, ctlName)); !os.IsNotExist(err) {
					t.Fatalf("ctl.sock after Abort: %v", err)
				}
				if _, err := Start(ctx, cfg.Dir, cfg.ID); !errdefs.IsFailedPrecondition(err) {
					t.Fatalf("Start after Abort = %v, want FailedPrecondition", err)
				}
				return
			}
			pid, err := Start(ctx, cfg.Dir, cfg.ID)
			if tc.want.Reason == "" {
				var ce *CreateError
				if !errors.As(err, &ce) || ce.Message == "" {
					t.Fatalf("Start = %d, %v; want a *CreateError with the runtime's message", pid, err)
				}
				return
			}
			if err != nil || pid <= 0 {
				t.Fatalf("Start = %d, %v", pid, err)
			}
			if !Invoked(cfg.Dir) {
				t.Fatal("not Invoked after Start")
			}
			if _, err := Start(ctx, cfg.Dir, cfg.ID); err == nil {
				t.Fatal("a second Start succeeded")
			}
			got := h.wait(cfg, mpid)
			got.FinishedAt = time.Time{}
			if got != tc.want {
				t.Fatalf("exit %+v, want %+v", got, tc.want)
			}
			if lines := logLines(t, cfg.LogPath); len(lines) != 1 || lines[0] != "stdout F up" {
				t.Fatalf("log %q", lines)
			}
		})
	}
}
