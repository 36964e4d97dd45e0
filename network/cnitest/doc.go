// Package cnitest holds helpers for tests that run real CNI plugins on the host: the
// tests of package network, of the integration suite and of internal/nspin. It is for
// tests only; nothing else may import it.
package cnitest
