// Package diskusage measures the disk space and inodes of directory trees — the
// containers' writable layers — and keeps the figures in a cache that a background loop
// refreshes at a bounded interval, so that the stats kubelet polls (ContainerStats,
// ImageFsInfo, the summary API behind eviction and `kubectl top`) cost a map lookup and
// never a directory walk per call. berth keeps no project quota that would count the
// layers for free (most nodes' filesystems are not mounted with prjquota), so a walk it is,
// done once per interval for all containers together.
package diskusage
