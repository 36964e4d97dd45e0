// The series and table types are those of hack/bench/pull (trimmed): both are commands,
// which cannot share a package main.
package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// series are the samples of one measured operation.
type series struct {
	name    string
	target  time.Duration // 0: none
	base    *series       // the floor this operation is compared with, if any
	samples []time.Duration
}

func (s *series) add(d time.Duration) { s.samples = append(s.samples, d) }

func (s *series) mean() time.Duration {
	if len(s.samples) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range s.samples {
		sum += d
	}
	return sum / time.Duration(len(s.samples))
}

// quantile is the nearest-rank quantile q (0 < q <= 1).
func (s *series) quantile(q float64) time.Duration {
	if len(s.samples) == 0 {
		return 0
	}
	sorted := slices.Clone(s.samples)
	slices.Sort(sorted)
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

// table prints one row per series: n, mean, p50, p95, the ratio of the mean to the mean
// of its base (the raw floor it is compared with), and the target if any.
func table(w io.Writer, rows []*series) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\tn\tmean ms\tp50 ms\tp95 ms\tratio\ttarget ms\t")
	for _, s := range rows {
		ratio := "-"
		if s.base != nil && s.base.mean() > 0 {
			ratio = fmt.Sprintf("%.2f", float64(s.mean())/float64(s.base.mean()))
		}
		target := "-"
		if s.target > 0 {
			target = ms(s.target)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", s.name, len(s.samples), ms(s.mean()),
			ms(s.quantile(0.5)), ms(s.quantile(0.95)), ratio, target)
	}
	tw.Flush()
}
