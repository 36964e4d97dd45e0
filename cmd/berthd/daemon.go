package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-runtime/berth/cmd/wiring"
	"github.com/berth-runtime/berth/cri"
	"github.com/berth-runtime/berth/image"
	"github.com/berth-runtime/berth/internal/config"
	"github.com/berth-runtime/berth/internal/memtrim"
	"github.com/berth-runtime/berth/network"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/sandbox/runtime"
)

// shutdownGrace is how long calls in flight may run on after SIGTERM.
const shutdownGrace = 10 * time.Second

// serve runs berthd until ctx is cancelled (SIGTERM/SIGINT).
func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	for _, dir := range []string{cfg.Root, cfg.State} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return err
		}
	}
	unlock, err := lockRoot(cfg.Root)
	if err != nil {
		return err
	}
	defer unlock()

	images, err := image.New(wiring.ImageConfig(cfg.Image, filepath.Join(cfg.Root, "image")), log.With("component", "image"))
	if err != nil {
		return fmt.Errorf("image service: %w", err)
	}
	defer images.Close()

	handlers, runtimes, runtimeReady := probeRuntimes(ctx, cfg, log)
	keyed, err := cfg.Keyed()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	nriAdapter, err := newNRI(cfg.NRI, log)
	if err != nil {
		return err
	}
	var hooks sandbox.NRI // stays a nil interface when NRI is off
	if nriAdapter != nil {
		hooks = nriAdapter
	}
	pods, netm, err := newPodService(ctx, cfg, log, runtimes, wiring.Leases{Service: images}, hooks)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		pods.Close(ctx)
	}()
	if nriAdapter != nil {
		if err := nriAdapter.Start(pods); err != nil {
			return err
		}
		defer nriAdapter.Stop()
		log.Info("NRI serving", "socket", cfg.NRI.SocketPath, "plugins", cfg.NRI.PluginPath)
	}
	streaming, stopStreaming, err := startStreaming(cfg.Streaming, pods, log)
	if err != nil {
		return err
	}
	defer stopStreaming()
	srv := cri.New(cri.Options{
		Log:             log.With("component", "cri"),
		Images:          images,
		Pods:            pods,
		Containers:      pods,
		Streaming:       streaming,
		Telemetry:       pods,
		Metrics:         pods,
		ContainerFs:     pods,
		Handlers:        handlers,
		DefaultHandler:  cfg.DefaultRuntime,
		CgroupDriver:    cfg.CgroupDriver,
		RuntimeReady:    runtimeReady,
		NetworkReady:    networkReady(netm),
		SetPodCIDR:      netm.SetPodCIDR,
		EffectiveConfig: keyed,
	})

	socket, _ := config.ListenPath(cfg.Listen)
	l, err := listenUnix(socket)
	if err != nil {
		return err
	}
	defer os.Remove(socket)
	srv.Ready()
	memtrim.Text() // start-up is over: let go of the executable's pages it mapped
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.Info("berthd serving the CRI", "listen", cfg.Listen, "root", cfg.Root, "state", cfg.State, "pid", os.Getpid())

	select {
	case err := <-errc:
		return fmt.Errorf("grpc server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: running containers are left running")
	srv.Stop(shutdownGrace)
	return nil
}

// probeRuntimes asks every configured OCI runtime what it supports. A runtime that is
// not installed is left out of the handlers the CRI Status reports, and pods asking for
// it fail; RuntimeReady fails while the default one is missing.
func probeRuntimes(ctx context.Context, cfg config.Config, log *slog.Logger) ([]cri.RuntimeHandler, map[string]sandbox.Handler, func() error) {
	var handlers []cri.RuntimeHandler
	runtimes := map[string]sandbox.Handler{}
	var defaultErr error
	for name, rt := range cfg.Runtimes {
		f, err := runtime.Probe(ctx, rt.Path)
		if err != nil {
			log.Warn("OCI runtime unavailable", "handler", name, "error", err)
			if name == cfg.DefaultRuntime {
				defaultErr = err
			}
			runtimes[name] = sandbox.Handler{Err: err}
			continue
		}
		log.Info("OCI runtime", "handler", name, "path", f.Path,
			"recursive_read_only_mounts", f.RecursiveReadOnlyMounts, "user_namespaces", f.UserNamespaces)
		handlers = append(handlers, cri.RuntimeHandler{
			Name: name, RecursiveReadOnlyMounts: f.RecursiveReadOnlyMounts, UserNamespaces: f.UserNamespaces,
		})
		runtimes[name] = sandbox.Handler{Features: f, Runtime: &runtime.Runtime{
			Name: name, Path: f.Path, Root: filepath.Join(cfg.State, "runtime", name),
			SystemdCgroup: cfg.CgroupDriver == "systemd", Log: log.With("component", "runtime"),
		}}
	}
	slices.SortFunc(handlers, func(a, b cri.RuntimeHandler) int { return strings.Compare(a.Name, b.Name) })
	return handlers, runtimes, func() error {
		if defaultErr != nil {
			return fmt.Errorf("default runtime %q: %w", cfg.DefaultRuntime, defaultErr)
		}
		return nil
	}
}

// networkReady is the CRI NetworkReady condition: CNI configuration, plugins and STATUS.
func networkReady(m *network.Manager) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return m.Status(ctx)
	}
}

// lockRoot takes an exclusive flock on <root>/berthd.lock so that a second berthd on
// the same root refuses to start instead of corrupting the first one's state. The lock
// dies with the process, so a crashed berthd never blocks its successor.
func lockRoot(root string) (func(), error) {
	path := filepath.Join(root, "berthd.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another berthd (pid %s) is already using root %s",
				strings.TrimSpace(string(holder)), root)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}

// listenUnix creates the CRI socket with mode 0660 from the start (no window in which
// it is world-writable). A stale socket from a dead berthd is replaced: the root lock
// proves no live berthd owns it.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	old := syscall.Umask(0o117)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
