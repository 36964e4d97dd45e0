package runtime

import (
	"testing"
	"time"
)

// SetExecStartLimit shortens how long Exec lets a runtime start a process, for the
// test t.
func SetExecStartLimit(t testing.TB, d time.Duration) {
	old := execStartLimit
	execStartLimit = d
	t.Cleanup(func() { execStartLimit = old })
}
