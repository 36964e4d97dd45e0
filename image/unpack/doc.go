// Package unpack applies one image layer, a tar stream, into its own empty snapshot
// directory without ever writing outside that directory: layers are untrusted input.
//
// Each layer becomes one overlayfs lowerdir whose parents are other directories, so
// whiteouts are converted to their overlayfs form rather than applied: "dir/.wh.name"
// becomes a 0/0 character device "dir/name", and "dir/.wh..wh..opq" becomes the xattr
// trusted.overlay.opaque=y on "dir". Other ".wh..wh." names (aufs metadata such as
// ".wh..wh.plnk") are skipped together with everything below them. A whiteout whose
// name already exists in the same layer is skipped too: whiteouts only hide lower layers.
//
// # Confinement
//
// Entry names are cleaned and confined, as containerd and Docker do: every name is
// cleaned as if it were rooted at "/", so "../../x", "/x" and "./x" all mean "root/x".
// Hardlink targets are confined the same way. Symlinks keep their target verbatim (an
// absolute target is valid inside the container) and, when a later entry's path runs
// through one, the symlink is resolved as if root were "/" (openat2 RESOLVE_IN_ROOT): an
// entry "a -> /etc" followed by "a/passwd" writes "root/etc/passwd" (or fails when
// "root/etc" does not exist), never "/etc/passwd". A hardlink therefore can only link to
// an inode already inside the root. Parents an archive does not list are created with
// mode 0755, owned by the caller; a parent that is a symlink resolving to nothing is an
// error rather than a guess.
//
// The descriptors of directories resolved this way are kept for the rest of the Apply
// (most entries share a directory with the previous one) and all dropped whenever an
// entry removes anything, the only way a path's resolution can change (see dirCache).
// Only directories on the path to an entry are resolved that way; the entry itself is
// created, replaced and given its metadata relative to its parent's descriptor with
// no-follow semantics (mkdirat, openat O_EXCL|O_NOFOLLOW, symlinkat, linkat, mknodat,
// fchownat and utimensat with AT_SYMLINK_NOFOLLOW), so a final component that is a
// symlink is replaced or modified itself, never followed. On kernels without openat2
// (before 5.6) lookups fall back to github.com/cyphar/filepath-securejoin, which gives
// the same in-root semantics in userspace.
//
// # Metadata
//
// Ownership, permission bits (setuid, setgid and sticky included, set after chown since
// chown clears them), access and modification times, and xattrs from PAX
// "SCHILY.xattr." records are kept. Directory modes and times are set after the last
// entry, because creating children changes a directory's mtime. Xattrs the filesystem
// does not support (EOPNOTSUPP) and security.* xattrs the kernel refuses are skipped.
// xattrs in the overlay namespaces (trusted.overlay.*, user.overlay.*) are dropped: they
// are overlayfs's own control data (redirects, metacopy, opacity) and a layer expresses
// whiteouts only through ".wh." names.
//
// Layers legitimately contain setuid binaries and device nodes owned by arbitrary
// uids, so the snapshot directories must sit below a directory unprivileged host
// users cannot traverse (mode 0700); this package does not try to neuter them.
//
// Names are created optimistically (O_EXCL semantics); only when one exists already is
// it examined and replaced. Options.Writeback starts the writeback of large files as
// soon as they are written, so that a flush after Apply has less left to wait for.
//
// Apply stops at the tar end-of-archive marker; a caller that verifies a digest over
// the stream must drain the rest of it.
package unpack
