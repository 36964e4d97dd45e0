// Package cri is berth's gRPC boundary: kubelet's RuntimeService and ImageService
// (k8s.io/cri-api v1). It validates requests, calls the domain services (image, sandbox,
// network), and converts their answers. Cross-cutting work lives in interceptors: a
// request id, one log line per call, panic recovery, the startup gate and the single
// mapping from domain errors (internal/errdefs) to gRPC codes. No business logic here.
package cri
