// Package stream serves the streaming half of the CRI Exec, Attach and PortForward
// RPCs: the RPC hands out a URL with a single-use token, and the client (kubelet,
// crictl) then connects to that URL to carry the session's streams over SPDY or
// WebSocket.
//
// The HTTP server, its protocols and its token cache (single use, short-lived) are
// k8s.io/cri-streaming's, the kubelet's own streaming server; this package only
// listens, builds the server, and adapts its Runtime interface onto Runtime, which
// package sandbox implements. Two things are translated on the way: resize events
// (the library's TerminalSize into sandbox's) and a command's non-zero exit
// (sandbox.ExitError into the k8s.io/utils/exec.ExitError the library recognises, so
// the client gets the exit code rather than an internal error).
//
// The server has no authentication of its own: the token is the only credential.
// That is why it must listen on loopback only, where kubelet proxies to it; New
// refuses any other address.
package stream
