package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// The files of a monitor's directory (see the package documentation).
const (
	configName     = "monitor.json"
	diagName       = "monitor.log"
	runtimeLogName = "runtime.log"
	pidName        = "pid"
	ctlName        = "ctl.sock"
	consoleName    = "console.sock"
	exitName       = "exit.json"
	invokedName    = "invoked"
)

// defaultMaxLineSize is the CRI log line limit when Config.MaxLineSize is 0.
const defaultMaxLineSize = 16384

// Config is the monitor's whole job; Launch writes it as <Dir>/monitor.json.
type Config struct {
	ID            string `json:"id"`            // container id
	Runtime       string `json:"runtime"`       // OCI runtime executable (absolute)
	RuntimeRoot   string `json:"runtimeRoot"`   // its --root
	SystemdCgroup bool   `json:"systemdCgroup"` // --systemd-cgroup
	Bundle        string `json:"bundle"`        // absolute bundle dir (config.json inside)
	Dir           string `json:"dir"`           // the monitor's own directory (exists)
	LogPath       string `json:"logPath"`       // CRI log file; "" discards the output
	Terminal      bool   `json:"terminal"`      // process.terminal: the pty master is the output (stdout)
	Stdin         bool   `json:"stdin"`         // keep a stdin pipe open for attach; false: /dev/null
	StdinOnce     bool   `json:"stdinOnce"`     // close the container's stdin when the first attach session ends
	OOMFile       string `json:"oomFile"`       // memory.oom_control (v1) or memory.events (v2); "" no OOM detection
	MaxLineSize   int    `json:"maxLineSize"`   // longest CRI log line before it is split; 0 => 16384
	// Start runs the container at once (`run --detach`, one runtime exec) instead of
	// creating it for a later `start`.
	Start bool `json:"start,omitempty"`
	// Prepare (set by Prepare) makes the monitor set everything up, report ready, and
	// wait for a start op on its socket before it runs the container (`run --detach`):
	// berthd prepares the monitor in CreateContainer, so that StartContainer costs one
	// runtime exec and no process start of its own.
	Prepare bool `json:"prepare,omitempty"`
}

// Invoked reports whether the monitor of dir has run (or was about to run) the OCI
// runtime: it marks that before it does. A berthd that stopped during a start can
// tell, after a restart, that a container may exist with no record saying so.
func Invoked(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, invokedName))
	return err == nil
}

// validate checks what the monitor cannot work without, before anything is started.
func (c Config) validate() error {
	switch {
	case c.ID == "" || strings.ContainsAny(c.ID, "/\x00"):
		return errdefs.InvalidArgument(fmt.Sprintf("monitor: bad container id %q", c.ID))
	case !filepath.IsAbs(c.Runtime), !filepath.IsAbs(c.Bundle), !filepath.IsAbs(c.Dir):
		return errdefs.InvalidArgument(fmt.Sprintf("monitor %s: runtime, bundle and dir must be absolute paths", c.ID))
	case c.LogPath != "" && !filepath.IsAbs(c.LogPath):
		return errdefs.InvalidArgument(fmt.Sprintf("monitor %s: log path %q is not absolute", c.ID, c.LogPath))
	case c.MaxLineSize < 0:
		return errdefs.InvalidArgument(fmt.Sprintf("monitor %s: negative max line size", c.ID))
	}
	return nil
}

func readConfig(dir string) (Config, error) {
	var c Config
	data, err := os.ReadFile(filepath.Join(dir, configName))
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s: %w", configName, err)
	}
	if c.Dir != dir {
		// The config names the directory the monitor was started for; a mismatch means
		// someone copied a directory, and the monitor would write in the wrong place.
		return c, fmt.Errorf("%s names dir %q, monitor started for %q", configName, c.Dir, dir)
	}
	if c.MaxLineSize == 0 {
		c.MaxLineSize = defaultMaxLineSize
	}
	return c, c.validate()
}

// Started is what Launch reports: the monitor's pid and the container's init pid (from
// the runtime's pid file).
type Started struct{ MonitorPID, PID int }

// The reasons of an Exit, as kubelet knows them.
const (
	ReasonCompleted = "Completed"
	ReasonError     = "Error"
	ReasonOOMKilled = "OOMKilled"
)

// Exit is the container's end as the monitor recorded it in <Dir>/exit.json.
type Exit struct {
	ExitCode   int32     `json:"exitCode"` // exit status, or 128+signal when killed by a signal
	Signal     int       `json:"signal,omitempty"`
	FinishedAt time.Time `json:"finishedAt"`
	Reason     string    `json:"reason"` // ReasonCompleted (code 0), ReasonError, ReasonOOMKilled
	Message    string    `json:"message,omitempty"`
}

// CreateError is Launch's error when the runtime's create failed (or the monitor died
// before reporting); Message is the runtime's own message.
type CreateError struct {
	ID      string
	Message string
}

func (e *CreateError) Error() string { return "create container " + e.ID + ": " + e.Message }

// ErrNoExit is Wait's error when the monitor is gone and left no exit.json: it was
// killed, or crashed, before the container exited.
var ErrNoExit = errors.New("monitor gone without recording an exit")

// ReadExit reads <dir>/exit.json; an error matching fs.ErrNotExist when the container
// has not exited (or the monitor died without recording: see Wait).
func ReadExit(dir string) (Exit, error) {
	var e Exit
	data, err := os.ReadFile(filepath.Join(dir, exitName))
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("%s: %w", filepath.Join(dir, exitName), err)
	}
	return e, nil
}

// writeExit records e atomically: a reader sees no file or the whole file, also after a
// crash of the machine (fsync of the file before the rename, of the directory after).
func writeExit(dir string, e Exit) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, exitName), data, 0o600)
}
