// Package trash deletes directory trees in two steps. Put renames a tree into a trash
// directory on the same file system: one atomic metadata operation, after which the
// tree is gone from where it was, whatever happens next. Sweep deletes what the trash
// holds, later and off the caller's path; a deletion that a crash cut short is still
// in the trash at the next start, whose sweep finishes it.
//
// Sweep never deletes through a mount: it first detaches whatever is mounted below
// the trash (a tree is only put there after its mounts are gone, but a bind mount of a
// host directory deleted through would lose the host's files), and leaves an entry
// alone while something is still mounted in it.
package trash
