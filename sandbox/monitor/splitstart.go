package monitor

import (
	"errors"
	"os"
	"strings"
	"syscall"
)

// splitStart reports whether the container is to be created and started in two
// runtime calls rather than one `run --detach`: under the systemd driver on cgroup v2.
// There systemd removes the container's scope, memory.events with it, as soon as the
// scope's last process has exited; a process OOM-killed right after its exec, before
// `run` has returned (a moment on an idle machine, seconds under emulation or load),
// would leave no count to read, and the container's reason would be Error instead of
// OOMKilled. With create, then the OOM watch on the new scope, then start, the watch
// sees every kill. It costs one runtime exec per start on such nodes only.
func (m *monitor) splitStart() bool {
	cfg := m.cfg
	return (cfg.Start || cfg.Prepare) && cfg.SystemdCgroup && strings.HasSuffix(cfg.OOMFile, "/memory.events")
}

// runtimeStart runs `<runtime> <global> start <id>` and waits for it.
func (m *monitor) runtimeStart(global []string, runtimeLog string) error {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	var stderr strings.Builder
	rd, wr, err := os.Pipe()
	if err != nil {
		return err
	}
	argv := append([]string{m.cfg.Runtime}, global...)
	argv = append(argv, "start", m.cfg.ID)
	pid, err := syscall.ForkExec(m.cfg.Runtime, argv, &syscall.ProcAttr{
		Env:   runtimeEnv(),
		Files: []uintptr{null.Fd(), null.Fd(), wr.Fd()},
	})
	wr.Close()
	if err != nil {
		rd.Close()
		return errors.New("start " + m.cfg.Runtime + ": " + err.Error())
	}
	buf := make([]byte, 4096)
	for {
		n, rerr := rd.Read(buf)
		if stderr.Len() < 64*1024 {
			stderr.Write(buf[:n])
		}
		if rerr != nil {
			break
		}
	}
	rd.Close()
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return errors.New("wait for " + m.cfg.Runtime + " start: " + err.Error())
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return errors.New(runtimeMessage(runtimeLog, stderr.String(), waitStatusString(ws)))
	}
	return nil
}
