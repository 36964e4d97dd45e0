// Command benchcompare prints hack/bench/compare.sh's table: critest's benchmark
// results (the JSON files critest -benchmark writes to its -benchmarking-output-dir)
// and the density figures of hack/bench/density.sh, for Berth and for containerd, as
// one markdown table with the ratio Berth / containerd per row.
//
//	benchcompare -berth DIR[,DIR...] -containerd DIR[,DIR...]
//
// Each DIR is one run of one runtime: critest's JSON files and density.txt ("key
// value" lines). Several runs of a runtime (compare.sh interleaves berth, containerd,
// berth) are pooled: a row's figure is the mean of all their samples, and the table
// also shows each run's mean so that drift across the sitting is visible.
package main
