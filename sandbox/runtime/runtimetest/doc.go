// Package runtimetest helps tests, of sandbox/runtime and of the packages that use it,
// run real OCI runtimes: FailingRuntime makes a wrapper script that injects a failure or
// a hang into one subcommand, and Env gives a test its own runtime state root and cgroup
// parent with a minimal container spec, removing every container and cgroup left when
// the test ends, also when it fails.
package runtimetest
