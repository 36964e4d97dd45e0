// Package rootfs mounts and unmounts the root filesystems of containers: an overlay of
// an image's layers (as the image store lists its snapshots, base layer first) with a
// writable upper directory of the container's own, or a read-only view of the layers.
//
// Layers are passed to overlayfs with mount(2) while its options fit in the one page
// the kernel copies; beyond that (deep images, long paths) with the new mount API
// (fsopen and one "lowerdir+" per layer, Linux ≥ 6.8; by descriptor from 6.13, else
// by path, which fsconfig limits to 255 bytes). Either way no chdir is needed,
// which a multithreaded Go process cannot do safely. On an older kernel such an image
// fails with an error matching errdefs.ErrFailedPrecondition, as does one deeper than
// the 500 layers overlayfs stacks.
package rootfs
