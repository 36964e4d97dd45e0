// Package atomicfile replaces files so that a reader, also after a crash of the machine,
// sees either the old content or the whole new one: temporary file in the same
// directory, fsync, rename, fsync of the directory.
//
// It imports only the standard library: cmd/berth-monitor, a small static binary, uses
// it to record exit statuses.
package atomicfile
