package pause

import (
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// IsPause reports whether this process was started as berth's pause: argv[0] is Path.
// Only the Go fallback (architectures without built-in machine code, see Rootfs) runs a
// Go program as pause; a main that dispatches on IsPause works either way.
func IsPause() bool { return len(os.Args) > 0 && os.Args[0] == Path }

// Main is pause written in Go, the fallback for architectures without built-in machine
// code. It reaps every child on SIGCHLD, exits 0 on SIGINT or SIGTERM, ignores the
// signals whose default action would end or stop it, and never returns.
//
// Call it first thing in main, before any other work:
//
//	if pause.IsPause() {
//		pause.Main()
//	}
func Main() {
	runtime.GOMAXPROCS(1)
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	signal.Ignore(syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2,
		syscall.SIGPIPE, syscall.SIGALRM, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU)
	reapAll()
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		reapAll()
	}
}

// reapAll waits for every child that has exited; the kernel coalesces SIGCHLD, so one
// signal may stand for many children.
func reapAll() {
	for {
		pid, err := unix.Wait4(-1, nil, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
	}
}
