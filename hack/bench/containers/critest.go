package main

import (
	"errors"
	"fmt"
	"time"
)

// critestShape is one sample of what critest's container benchmark does (and what its
// RemoveContainer figure measures), whatever -shared-pid says: a pod that shares its
// PID namespace, so that its pause runs, with a busybox `top` made and started (not
// timed); StopContainer with critest's timeout of 60 s (top, not the namespace's init,
// dies of the SIGTERM) and RemoveContainer, both timed; then the pod goes (not timed).
// i < 0 is the warm-up.
func (e *env) critestShape(i int, r *rows) error {
	if err := e.ctx.Err(); err != nil {
		return err
	}
	pod, err := e.runPod(i, true)
	if err != nil {
		return err
	}
	ctr, err := e.container(i, pod, "top", []string{"top"}, nil, true)
	if err == nil {
		start := time.Now()
		err = timed(i, r.critestStop, func() error { return e.pods.StopContainer(bg, ctr, 60) })
		if took := time.Since(start); err == nil && took > 30*time.Second {
			err = fmt.Errorf("stop of %s took %s: SIGTERM did not end top", ctr, took)
		}
	}
	if err == nil {
		err = timed(i, r.critestRemove, func() error { return e.pods.RemoveContainer(bg, ctr) })
	}
	return errors.Join(err, e.pods.StopPod(bg, pod), e.pods.RemovePod(bg, pod))
}
