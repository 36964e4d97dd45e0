// Package benchstats holds the samples of the benchmark programs under hack/bench and
// prints them as a table. Both programs are commands, which cannot share a package main.
package benchstats

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// Series are the samples of one measured operation.
type Series struct {
	Name    string
	Target  time.Duration // 0: none
	Base    *Series       // the floor this operation is compared with, if any
	Samples []time.Duration
}

// Add records one sample.
func (s *Series) Add(d time.Duration) { s.Samples = append(s.Samples, d) }

// Mean is the mean of the samples, 0 if there are none.
func (s *Series) Mean() time.Duration {
	if len(s.Samples) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range s.Samples {
		sum += d
	}
	return sum / time.Duration(len(s.Samples))
}

// Quantile is the nearest-rank quantile q (0 < q <= 1).
func (s *Series) Quantile(q float64) time.Duration {
	if len(s.Samples) == 0 {
		return 0
	}
	sorted := slices.Clone(s.Samples)
	slices.Sort(sorted)
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// MS formats d in milliseconds with three decimals.
func MS(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

// Table prints one row per series: n, mean, p50, p95, the ratio of the mean to the mean
// of its base (the raw floor it is compared with: for hack/bench/pull the floor of a pull
// or remove, or the whole cold pull for a phase), and the target if any.
func Table(w io.Writer, rows []*Series) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\tn\tmean ms\tp50 ms\tp95 ms\tratio\ttarget ms\t")
	for _, s := range rows {
		ratio := "-"
		if s.Base != nil && s.Base.Mean() > 0 {
			ratio = fmt.Sprintf("%.2f", float64(s.Mean())/float64(s.Base.Mean()))
		}
		target := "-"
		if s.Target > 0 {
			target = MS(s.Target)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", s.Name, len(s.Samples), MS(s.Mean()),
			MS(s.Quantile(0.5)), MS(s.Quantile(0.95)), ratio, target)
	}
	tw.Flush()
}
