// Package oomscore keeps the oom_score_adj that berth asks for within what the node
// allows.
//
// Lowering a process's oom_score_adj below the lowest value its ancestors were given
// needs CAP_SYS_RESOURCE. A berthd without it (some VMs and nested containers drop it
// from the bounding set) starts the OCI runtime without it too, and runc's init then
// fails to write the spec's process.oomScoreAdj: the container fails with an obscure
// "can't get final child's PID". Clamp raises the wanted value to berthd's own score in
// that case, which the kernel always allows, and RestrictionReason says so once at
// start-up.
package oomscore
