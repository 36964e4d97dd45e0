// Package snapshot keeps one unpacked directory per layer chain:
//
//	<root>/snapshots/<chain id hex>/fs         the layer's files, an overlayfs lowerdir
//	<root>/snapshots/<chain id hex>/info.json  size and inode count of fs
//	<root>/snapshots/tmp/                      snapshots being unpacked or removed
//
// A snapshot holds only its own layer's diff (whiteouts in overlay form); a container's
// root filesystem stacks the snapshots of its image's chain as lowerdirs. The directory
// is keyed by the layer's chain ID (OCI image spec: chain(L0) = diffID(L0),
// chain(Ln) = sha256(chain(Ln-1) + " " + diffID(Ln))), because the same diff on another
// parent is another filesystem.
//
// A snapshot is unpacked into a Pending directory under tmp/ and appears under its
// chain ID only by a rename, after the caller verified what it unpacked, the data was
// flushed (syncfs) and info.json written: a snapshot is either whole or absent. With
// DeferSync (the image service) the flush is the caller's, done once for a whole pull:
// a snapshot is then whole in the running system, and after a crash possibly damaged
// unless the caller flushed it before recording it anywhere. Removal
// is the same in reverse: a rename into tmp/ takes it away at once, the slow recursive
// delete happens afterwards. Open removes whatever tmp/ holds (pulls and removals that
// a crash interrupted).
//
// The size and inode count of each snapshot are recorded at commit (from unpack.Stats),
// so usage is a sum, never a walk of the tree. Which snapshots are still needed is not
// decided here: the image service counts references (images, pulls in progress and
// container leases) and removes what nothing uses.
package snapshot
