package integration

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestContainerBadInput sends CreateContainer requests berth must refuse, and checks
// the code and that each refusal leaves nothing behind: no mount under berthd's
// directory, no record, no state or writable-layer directory, no runtime state.
func TestContainerBadInput(t *testing.T) {
	e := newCtrEnv(t)
	// A container that exists, for the name clash.
	dup := e.create(t, ctrConfig("taken", []string{"sleep", "1000"}))
	e.removeAtEnd(t, dup)
	if id, err := e.createErr(t, ctrConfig("taken", []string{"sleep", "1000"})); err != nil || id != dup {
		t.Errorf("a retry of the same create = %s, %v; want %s", id, err, dup)
	}

	cases := []struct {
		name  string
		pod   string // "" is the env's pod
		edit  func(*runtimeapi.ContainerConfig)
		code  codes.Code
		cname string // container name, "bad" unless set
	}{
		{name: "unknown pod", pod: "0123456789abcdef", code: codes.NotFound},
		{name: "name taken by another config", cname: "taken", edit: func(c *runtimeapi.ContainerConfig) {
			c.Command = []string{"sleep", "2000"}
		}, code: codes.AlreadyExists},
		{name: "missing image", edit: func(c *runtimeapi.ContainerConfig) {
			c.Image.Image = "registry.k8s.io/e2e-test-images/absent:1"
		}, code: codes.NotFound},
		{name: "log path leaving the log directory", edit: func(c *runtimeapi.ContainerConfig) {
			c.LogPath = "../escape.log"
		}, code: codes.InvalidArgument},
		{name: "relative container mount path", edit: withMounts(&runtimeapi.Mount{ContainerPath: "mnt/data", HostPath: t.TempDir()}),
			code: codes.InvalidArgument},
		{name: "unknown device host path", edit: func(c *runtimeapi.ContainerConfig) {
			c.Devices = []*runtimeapi.Device{{HostPath: "/dev/berth-it-absent", ContainerPath: "/dev/absent", Permissions: "rwm"}}
		}, code: codes.InvalidArgument},
		{name: "run_as_group without a user", edit: withSecurity(func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: 1000}
		}), code: codes.InvalidArgument},
		{name: "unknown image user", edit: withSecurity(func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.RunAsUsername = "nobody-here"
		}), code: codes.InvalidArgument},
	}
	before := containerTraces(t, e.d)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.cname
			if name == "" {
				name = "bad"
			}
			cfg := ctrConfig(name, []string{"sleep", "1000"})
			if tc.edit != nil {
				tc.edit(cfg)
			}
			pod := e.pod
			if tc.pod != "" {
				pod = tc.pod
			}
			resp, err := e.d.runtime.CreateContainer(ctxTimeout(t, time.Minute), &runtimeapi.CreateContainerRequest{
				PodSandboxId: pod, Config: cfg, SandboxConfig: e.podCfg,
			})
			wantCode(t, "CreateContainer", err, tc.code)
			if err == nil {
				e.removeAtEnd(t, resp.ContainerId)
				return
			}
			if after := containerTraces(t, e.d); !reflect.DeepEqual(after, before) {
				t.Errorf("a refused create left traces: %+v, before %+v", after, before)
			}
			if got := listContainers(t, e, nil); len(got) != 1 || got[0].Id != dup {
				t.Errorf("containers after a refused create: %v", got)
			}
		})
	}
}

// TestContainerPodStopAndRemove: StopPodSandbox kills the pod's running containers, which
// then report EXITED (a created one stays created); RemovePodSandbox removes them all and
// everything they had.
func TestContainerPodStopAndRemove(t *testing.T) {
	e := newCtrEnv(t)
	ids := []string{
		e.run(t, ctrConfig("first", []string{"sleep", "1000"})),
		e.run(t, ctrConfig("second", sh(`trap "" TERM; sleep 1000`))),
		e.create(t, ctrConfig("never-started", []string{"sleep", "1000"})),
	}
	start := time.Now()
	e.d.stopPod(t, e.pod)
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("StopPodSandbox took %s", took)
	}
	for _, id := range ids[:2] {
		st := e.status(t, id)
		if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 137 {
			t.Errorf("%s after StopPodSandbox: %v, exit code %d; want EXITED 137", st.Metadata.Name, st.State, st.ExitCode)
		}
	}
	// A created container has no process (doc_containers.go): stopping it is a no-op.
	if st := e.status(t, ids[2]); st.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Errorf("never-started after StopPodSandbox: %v, want CREATED", st.State)
	}
	_, err := e.createErr(t, ctrConfig("late", []string{"true"}))
	wantCode(t, "CreateContainer in a stopped pod", err, codes.FailedPrecondition)

	e.d.removePod(t, e.pod)
	if got := listContainers(t, e, nil); len(got) != 0 {
		t.Errorf("containers after RemovePodSandbox: %v", got)
	}
	for _, id := range ids {
		_, err := e.d.runtime.ContainerStatus(ctxTimeout(t, 10*time.Second), &runtimeapi.ContainerStatusRequest{ContainerId: id})
		wantCode(t, "ContainerStatus after RemovePodSandbox", err, codes.NotFound)
	}
	tr := containerTraces(t, e.d)
	if len(tr.Mounts)+len(tr.Records)+len(tr.StateDirs)+len(tr.RWDirs)+len(tr.RuntimeState) != 0 {
		t.Errorf("RemovePodSandbox left traces: %+v", tr)
	}
	for _, id := range ids {
		if dirs := cgroupDirs("/berth/" + id); len(dirs) != 0 {
			t.Errorf("cgroups left of %s: %v", id, dirs)
		}
	}
}

// TestContainerStartError: a command that cannot be run fails StartContainer; the
// container is EXITED with reason StartError and code 128, the OCI runtime holds
// nothing of it, it cannot be started again, and it is removed as usual.
func TestContainerStartError(t *testing.T) {
	e := newCtrEnv(t)
	id := e.create(t, ctrConfig("no-binary", []string{"/no/such/binary"}))
	e.removeAtEnd(t, id)
	_, err := e.d.runtime.StartContainer(ctxTimeout(t, time.Minute), &runtimeapi.StartContainerRequest{ContainerId: id})
	if err == nil {
		t.Fatal("StartContainer of a missing binary succeeded")
	}
	st := e.status(t, id)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.Reason != "StartError" || st.ExitCode != 128 ||
		st.Message == "" || st.FinishedAt < st.StartedAt || st.StartedAt == 0 {
		t.Errorf("after a failed start: %v", st)
	}
	if tr := containerTraces(t, e.d); slices.Contains(tr.RuntimeState, id) {
		t.Errorf("the OCI runtime still holds the container: %v", tr.RuntimeState)
	}
	if dirs := cgroupDirs("/berth/" + id); len(dirs) != 0 {
		t.Errorf("cgroups left of a failed start: %v", dirs)
	}
	_, err = e.d.runtime.StartContainer(ctxTimeout(t, time.Minute), &runtimeapi.StartContainerRequest{ContainerId: id})
	wantCode(t, "StartContainer again", err, codes.FailedPrecondition)
	e.remove(t, id)
	if tr := containerTraces(t, e.d); len(tr.Records)+len(tr.StateDirs)+len(tr.RWDirs) != 0 || slices.Contains(tr.RuntimeState, id) {
		t.Errorf("a removed container left traces: %+v", tr)
	}
}
