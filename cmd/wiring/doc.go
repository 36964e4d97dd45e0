// Package wiring connects berth's services for berthd and for the benchmarks that build
// the same services in-process: it turns the configuration (internal/config) into the
// plain options each service takes. It sits beside cmd/berthd because it is the only
// place that may know both the configuration and the services: internal/ packages are
// leaves and import none of them (see hack/layering).
package wiring
