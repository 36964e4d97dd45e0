// Package runtime drives an OCI runtime binary (runc, crun, or any runtime that speaks
// the runc command line). It execs the binary; it never links libcontainer, so berth
// works with whatever version the node has and learns what it supports by asking it.
package runtime
