package nri

import (
	"context"
	"fmt"
	"log/slog"
)

// logger hands NRI's log lines to berthd's logger.
type logger struct{ l *slog.Logger }

func (g logger) Debugf(ctx context.Context, format string, args ...any) {
	g.l.DebugContext(ctx, fmt.Sprintf(format, args...))
}

func (g logger) Infof(ctx context.Context, format string, args ...any) {
	g.l.InfoContext(ctx, fmt.Sprintf(format, args...))
}

func (g logger) Warnf(ctx context.Context, format string, args ...any) {
	g.l.WarnContext(ctx, fmt.Sprintf(format, args...))
}

func (g logger) Errorf(ctx context.Context, format string, args ...any) {
	g.l.ErrorContext(ctx, fmt.Sprintf(format, args...))
}
