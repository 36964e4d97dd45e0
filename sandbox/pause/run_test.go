package pause_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-runtime/berth/sandbox/pause"
)

// TestMain lets the test binary be the Go pause: started as /pause, it runs pause.Main,
// as berthd's main does on architectures without built-in machine code.
func TestMain(m *testing.M) {
	if pause.IsPause() {
		pause.Main()
	}
	os.Exit(m.Run())
}

// variant is a way to start pause outside a container.
type variant struct {
	name string
	cmd  func(t *testing.T) *exec.Cmd
}

// variants are the generated executable for this machine (and arm64 through
// qemu-user when it is installed) and the Go fallback.
func variants(t *testing.T) []variant {
	t.Helper()
	vs := []variant{{name: "go", cmd: func(t *testing.T) *exec.Cmd {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		return &exec.Cmd{Path: self, Args: []string{pause.Path}}
	}}}
	for _, arch := range []string{"amd64", "arm64"} {
		var runner []string
		if arch != runtime.GOARCH {
			qemu, err := exec.LookPath("qemu-" + map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[arch] + "-static")
			if err != nil {
				continue
			}
			runner = []string{qemu}
		}
		exe := writeExecutable(t, arch)
		vs = append(vs, variant{name: "elf-" + arch, cmd: func(*testing.T) *exec.Cmd {
			args := append(append([]string{}, runner...), exe)
			return exec.Command(args[0], args[1:]...)
		}})
	}
	return vs
}

func writeExecutable(t *testing.T, arch string) string {
	t.Helper()
	code, err := pause.Executable(arch)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pause-"+arch)
	if err := os.WriteFile(path, code, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// start runs cmd and makes sure it is killed when the test ends.
func start(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

// waitSleeping waits until pid sleeps (State S): pause has blocked its signals.
func waitSleeping(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		status, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if strings.Contains(string(status), "State:\tS") {
			time.Sleep(50 * time.Millisecond) // a Go pause sleeps before it has set up its signals too
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid %d never slept", pid)
}

func TestSignals(t *testing.T) {
	ignored := []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE,
		syscall.SIGALRM, syscall.SIGCHLD, syscall.SIGWINCH, syscall.SIGCONT}
	for _, v := range variants(t) {
		for _, exit := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
			t.Run(v.name+"/"+exit.String(), func(t *testing.T) {
				cmd := v.cmd(t)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				defer cmd.Process.Kill()
				waitSleeping(t, cmd.Process.Pid)
				for _, s := range ignored {
					if err := cmd.Process.Signal(s); err != nil {
						t.Fatal(err)
					}
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				select {
				case err := <-done:
					t.Fatalf("exited on an ignored signal: %v", err)
				case <-time.After(300 * time.Millisecond):
				}
				if err := cmd.Process.Signal(exit); err != nil {
					t.Fatal(err)
				}
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("after %v: %v, want exit status 0", exit, err)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("still running after %v", exit)
				}
			})
		}
	}
}

// children lists the children of pid.
func children(t *testing.T, pid int) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
	if err != nil {
		t.Skipf("no /proc children list: %v", err)
	}
	return strings.Fields(string(data))
}

// orphan makes n children in pid's PID namespace whose parent exits at once, so that
// they become children of that namespace's init, and exit themselves a second later.
func orphan(t *testing.T, pid, n int) {
	t.Helper()
	script := strings.Repeat("sleep 1 & ", n) + "exit 0"
	// Output goes to a file: the orphans would hold a pipe open until they exit.
	out, err := os.Create(filepath.Join(t.TempDir(), "nsenter.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command("nsenter", "--pid=/proc/"+strconv.Itoa(pid)+"/ns/pid", "--", "/bin/sh", "-c", script)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		msg, _ := os.ReadFile(out.Name())
		t.Fatalf("nsenter: %v: %s", err, msg)
	}
}

// reapsOrphans runs the check behind TestReaping: pid is the init of a PID namespace.
func reapsOrphans(t *testing.T, pid int) bool {
	t.Helper()
	orphan(t, pid, 3)
	if got := children(t, pid); len(got) != 3 {
		t.Fatalf("%d children after orphaning 3: %v", len(got), got)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if len(children(t, pid)) == 0 {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// TestReaping runs pause as pid 1 of a new PID namespace, orphans children into it and
// checks that they are reaped; a control run with sleep(1) as pid 1 shows that the test
// sees zombies when nobody reaps them.
func TestReaping(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("PID namespaces need root")
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("no nsenter")
	}
	control := variant{name: "control-sleep", cmd: func(*testing.T) *exec.Cmd { return exec.Command("sleep", "30") }}
	for _, v := range append(variants(t), control) {
		t.Run(v.name, func(t *testing.T) {
			if strings.HasPrefix(v.name, "elf-") && !strings.HasSuffix(v.name, runtime.GOARCH) {
				t.Skip("qemu-user is no PID namespace init")
			}
			cmd := v.cmd(t)
			cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Pdeathsig: syscall.SIGKILL}
			start(t, cmd)
			waitSleeping(t, cmd.Process.Pid)
			reaped := reapsOrphans(t, cmd.Process.Pid)
			if want := v.name != control.name; reaped != want {
				t.Errorf("reaped = %v, want %v (children %v)", reaped, want, children(t, cmd.Process.Pid))
			}
		})
	}
}

func TestIsPause(t *testing.T) {
	saved := os.Args
	defer func() { os.Args = saved }()
	for args, want := range map[string]bool{"/pause": true, "pause": false, "/usr/bin/berthd": false, "": false} {
		os.Args = strings.Fields(args)
		if got := pause.IsPause(); got != want {
			t.Errorf("IsPause with args %q = %v", args, got)
		}
	}
}
