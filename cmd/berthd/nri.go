package main

import (
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/berth-runtime/berth/internal/config"
	"github.com/berth-runtime/berth/sandbox/nri"
)

// newNRI makes the NRI adapter when the configuration enables it (nil otherwise). It
// accepts plugins only once started with the pod service (startNRI).
func newNRI(cfg config.NRI, log *slog.Logger) (*nri.Adapter, error) {
	if !cfg.Enable {
		log.Info("NRI disabled")
		return nil, nil
	}
	version := "devel"
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		version = info.Main.Version
	}
	a, err := nri.New(nri.Config{
		SocketPath:          cfg.SocketPath,
		PluginPath:          cfg.PluginPath,
		PluginConfigPath:    cfg.PluginConfigPath,
		RegistrationTimeout: cfg.PluginRegistrationTimeout.Duration,
		RequestTimeout:      cfg.PluginRequestTimeout.Duration,
		RuntimeName:         "berth",
		RuntimeVersion:      version,
		Log:                 log.With("component", "nri"),
	})
	if err != nil {
		return nil, fmt.Errorf("NRI: %w", err)
	}
	return a, nil
}
