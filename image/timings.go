package image

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// phase is one step of a pull whose time the "pulled image" log line reports, so that
// a slow pull says where its time went without a profiler.
type phase int

const (
	phConnect  phase = iota // ping and authentication handshake with endpoints
	phManifest              // manifest (and index) requests
	phConfig                // config request and store
	phBlobs                 // manifest and config blobs written to the content store
	phWait                  // layers: waiting for the download bound or another pull's download
	phFetch                 // layers: until the response headers arrived
	phUnpack                // layers: streaming through verification, decompression and unpack
	phSnapshot              // layers: snapshot commit (info.json, rename into place)
	phSync                  // making what the pull wrote durable (syncfs)
	phRecord                // the metadata transaction recording the image
	numPhases
)

var phaseNames = [numPhases]string{"connect", "manifest", "config", "blobs", "wait", "fetch", "unpack", "snapshot", "sync", "record"}

// timings sums the time a pull spends in each phase. Layers run in parallel, so their
// phases add up across layers and may exceed the pull's duration. Safe for concurrent
// use; a nil *timings records nothing.
type timings struct {
	d [numPhases]atomic.Int64
}

// since adds the time since start to phase p.
func (t *timings) since(p phase, start time.Time) {
	if t != nil {
		t.d[p].Add(int64(time.Since(start)))
	}
}

// attrs returns the phases that took any time, as log attributes.
func (t *timings) attrs() []any {
	var out []any
	for p := range numPhases {
		if d := time.Duration(t.d[p].Load()); d > 0 {
			out = append(out, slog.Duration(phaseNames[p], d))
		}
	}
	return out
}
