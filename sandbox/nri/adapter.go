package nri

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	nriapi "github.com/containerd/nri/pkg/api"
	nrilog "github.com/containerd/nri/pkg/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Config configures the Adapter.
type Config struct {
	// SocketPath is where plugins connect; "" accepts no external plugin.
	SocketPath string
	// PluginPath holds plugins berthd launches itself, PluginConfigPath their
	// configuration drop-ins.
	PluginPath       string
	PluginConfigPath string
	// RegistrationTimeout bounds a plugin's registration, RequestTimeout each request
	// to a plugin (synchronization included).
	RegistrationTimeout time.Duration
	RequestTimeout      time.Duration
	// RuntimeName and RuntimeVersion are what plugins are told they run under.
	RuntimeName    string
	RuntimeVersion string
	Log            *slog.Logger
}

// Runtime is what the Adapter needs of the pod service (sandbox.Service).
type Runtime interface {
	// NRISnapshot returns every pod and container, for a plugin being synchronized.
	NRISnapshot() ([]*nriapi.PodSandbox, []*nriapi.Container)
	// NRIUpdateContainer applies new resources to a container.
	NRIUpdateContainer(ctx context.Context, id string, res *specs.LinuxResources) error
}

// Adapter is the NRI adaptation as the pod service sees it.
type Adapter struct {
	nri *adaptation.Adaptation
	rt  atomic.Pointer[Runtime]
	log *slog.Logger
}

// New makes the Adapter. Plugins are accepted only after Start.
func New(cfg Config) (*Adapter, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.RegistrationTimeout > 0 {
		adaptation.SetPluginRegistrationTimeout(cfg.RegistrationTimeout)
	}
	if cfg.RequestTimeout > 0 {
		adaptation.SetPluginRequestTimeout(cfg.RequestTimeout)
	}
	nrilog.Set(logger{cfg.Log})
	a := &Adapter{log: cfg.Log}
	opts := []adaptation.Option{
		adaptation.WithPluginPath(cfg.PluginPath),
		adaptation.WithPluginConfigPath(cfg.PluginConfigPath),
	}
	if cfg.SocketPath == "" {
		opts = append(opts, adaptation.WithDisabledExternalConnections())
	} else {
		opts = append(opts, adaptation.WithSocketPath(cfg.SocketPath))
	}
	var err error
	a.nri, err = adaptation.New(cfg.RuntimeName, cfg.RuntimeVersion, a.synchronize, a.updateContainers, opts...)
	if err != nil {
		return nil, fmt.Errorf("nri: %w", err)
	}
	return a, nil
}

// Start launches the pre-installed plugins and starts accepting plugin connections.
func (a *Adapter) Start(rt Runtime) error {
	a.rt.Store(&rt)
	if err := a.nri.Start(); err != nil {
		return fmt.Errorf("nri: %w", err)
	}
	return nil
}

// Stop closes the socket and every plugin connection.
func (a *Adapter) Stop() { a.nri.Stop() }

// BlockSync holds back the synchronization of plugins that connect until unblock is
// called. A create holds it from its hooks until the container is listed, so a new
// plugin either gets the container in its snapshot or sees its CreateContainer.
func (a *Adapter) BlockSync() (unblock func()) { return a.nri.BlockPluginSync().Unblock }

// synchronize gives a plugin that connected the pods and containers that exist.
func (a *Adapter) synchronize(ctx context.Context, cb adaptation.SyncCB) error {
	rt := a.runtime()
	if rt == nil {
		_, err := cb(ctx, nil, nil)
		return err
	}
	pods, ctrs := rt.NRISnapshot()
	updates, err := cb(ctx, pods, ctrs)
	if err != nil {
		return err
	}
	a.applyUpdatesAsync(updates)
	return nil
}

func (a *Adapter) runtime() Runtime {
	if rt := a.rt.Load(); rt != nil {
		return *rt
	}
	return nil
}

// updateContainers applies the updates a plugin asked for on its own and returns those
// that failed.
func (a *Adapter) updateContainers(ctx context.Context, updates []*nriapi.ContainerUpdate) ([]*nriapi.ContainerUpdate, error) {
	return a.applyUpdates(ctx, updates)
}

// applyUpdates applies container updates; an update that fails is returned, and makes
// the whole call fail unless it may be ignored.
func (a *Adapter) applyUpdates(ctx context.Context, updates []*nriapi.ContainerUpdate) ([]*nriapi.ContainerUpdate, error) {
	rt := a.runtime()
	var failed []*nriapi.ContainerUpdate
	var errs []error
	for _, u := range updates {
		if u == nil || u.GetLinux().GetResources() == nil {
			continue
		}
		err := errors.New("berthd is not serving pods yet")
		if rt != nil {
			err = rt.NRIUpdateContainer(ctx, u.GetContainerId(), u.GetLinux().GetResources().ToOCI())
		}
		if err != nil {
			a.log.Warn("NRI container update failed", "container", u.GetContainerId(), "error", err)
			failed = append(failed, u)
			if !u.GetIgnoreFailure() {
				errs = append(errs, fmt.Errorf("container %s: %w", u.GetContainerId(), err))
			}
		}
	}
	return failed, errors.Join(errs...)
}

// applyUpdatesAsync applies updates of other containers that a hook's answer carries.
// They run on their own: the caller holds its own container's lock, and another
// container's update takes that one's.
func (a *Adapter) applyUpdatesAsync(updates []*nriapi.ContainerUpdate) {
	if len(updates) == 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = a.applyUpdates(ctx, updates)
	}()
}
