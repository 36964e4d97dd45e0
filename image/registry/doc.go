// Package registry decides where and how berth fetches an image: which endpoints to try
// for a registry, in which order, over which transport and with which credentials, and
// it speaks the distribution protocol to one endpoint through go-containerregistry
// (pkg/v1/remote for manifests, its authenticating transport for blobs).
//
// # Endpoints
//
// For a reference's registry host, Resolve returns the configured mirrors of that host
// in order, then the registry itself. Docker Hub ("docker.io"; "index.docker.io" and
// "registry-1.docker.io" are accepted as aliases in the configuration) is reached at
// registry-1.docker.io. A mirror written "http://host" is spoken to in plain HTTP,
// "https://host" or a bare "host" in HTTPS; a mirror URL may not carry a path.
//
// Per-host settings (Hosts, keyed by host[:port] of a registry or a mirror) give plain
// HTTP, skipping TLS verification, an extra CA bundle and credentials. Plain HTTP is
// spoken only to hosts configured for it, to mirrors written http://, and to loopback
// hosts (localhost, 127.0.0.0/8, ::1) as Docker and containerd do. A host configured for
// plain HTTP is never tried over HTTPS, and a redirect never downgrades HTTPS to HTTP.
// Private (RFC 1918) addresses get no automatic plain HTTP, unlike pkg/name's default.
//
// # Connections
//
// Endpoint.Connect pings the endpoint and performs the authentication handshake, then
// keeps the connected Client for later pulls of the same repository from the same
// endpoint with the same credentials (at most ten minutes, dropped after any error but
// "not found"), so that a pull costs its manifest and blob requests only. Connections
// themselves are pooled per host by the Resolver.
//
// # Credentials
//
// The credentials of the pull request (CRI AuthConfig: username/password, base64 auth,
// identity token or registry token) apply to the registry itself, and also to a mirror
// when their ServerAddress names that mirror. Otherwise an endpoint uses the credentials
// configured for its host, otherwise none.
//
// # Falling through
//
// Errors from an endpoint are classified. An endpoint that is unreachable, answers 404,
// 408, 429 or 5xx, or stops sending data for the stall timeout is "unavailable for this
// content": the caller goes on to the next endpoint (and logs why). A mirror that refuses
// our credentials (401/403) is treated the same way — a mirror we may not use says
// nothing about the image — but a 401/403 from the registry itself is final and its
// message is kept. Integrity failures (a digest or size mismatch, a malformed manifest)
// are never fallen through: they mean an endpoint served wrong bytes, which the operator
// must see rather than have hidden by a retry elsewhere. A cancelled or expired context
// stops everything at once.
package registry
