package main

import (
	"fmt"
	"log/slog"

	"github.com/berth-runtime/berth/cri/stream"
	"github.com/berth-runtime/berth/internal/config"
	"github.com/berth-runtime/berth/sandbox"
)

// startStreaming listens for exec/attach/port-forward sessions and serves them over
// pods. The returned stop ends the sessions still open: defer it so that it runs
// before pods is closed, which the sessions use.
func startStreaming(cfg config.Streaming, pods *sandbox.Service, log *slog.Logger) (*stream.Server, func(), error) {
	srv, err := stream.New(cfg.Address, pods)
	if err != nil {
		return nil, nil, fmt.Errorf("config [streaming]: %w", err)
	}
	srv.Start()
	log.Info("streaming server listening", "address", srv.Addr().String())
	stop := func() {
		if err := srv.Stop(); err != nil {
			log.Warn("streaming server stop", "error", err)
		}
	}
	return srv, stop, nil
}
