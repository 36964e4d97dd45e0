package unpack

import "golang.org/x/sys/unix"

// maxCachedDirs bounds the descriptors one Apply keeps open.
const maxCachedDirs = 64

// dirCache keeps the O_PATH descriptors of the directories an Apply resolved, by their
// cleaned relative path, so that the hundreds of entries of a typical directory (bin/,
// usr/lib/) need no lookup each: a layer's entries come grouped by directory.
//
// A cached descriptor is exactly what resolving its path again would return, as long as
// no entry on that path changed. Within one Apply nothing but the applier writes the
// root, and the applier changes what a path resolves to only by removing something (a
// directory component, or a symlink on the path, replaced by another entry): creating a
// name that did not exist cannot change the resolution of a path whose components all
// existed. So every removal empties the cache (invalidate), and between removals the
// cache cannot be stale.
//
// Descriptors handed out are borrowed: callers must not close them. Descriptors that
// leave the cache are closed only between entries (release), never under a caller
// still using one.
type dirCache struct {
	fds     map[string]int
	retired []int
}

func (c *dirCache) get(rel string) (int, bool) {
	fd, ok := c.fds[rel]
	return fd, ok
}

// put adds fd, which the cache now owns.
func (c *dirCache) put(rel string, fd int) {
	if c.fds == nil {
		c.fds = map[string]int{}
	}
	if len(c.fds) >= maxCachedDirs {
		c.invalidate()
	}
	c.fds[rel] = fd
}

// invalidate forgets every cached path; the descriptors are closed by release.
func (c *dirCache) invalidate() {
	for rel, fd := range c.fds {
		c.retired = append(c.retired, fd)
		delete(c.fds, rel)
	}
}

// release closes the descriptors that left the cache. Call it between entries.
func (c *dirCache) release() {
	for _, fd := range c.retired {
		unix.Close(fd)
	}
	c.retired = c.retired[:0]
}

// close closes everything.
func (c *dirCache) close() {
	c.invalidate()
	c.release()
}
