package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

func main() {
	berth := flag.String("berth", "", "comma-separated run directories of Berth")
	ctrd := flag.String("containerd", "", "comma-separated run directories of containerd")
	flag.Parse()
	if *berth == "" || *ctrd == "" {
		fmt.Fprintln(os.Stderr, "benchcompare: -berth and -containerd are required")
		os.Exit(2)
	}
	b, err := loadRuns(strings.Split(*berth, ","))
	if err == nil {
		var c []run
		if c, err = loadRuns(strings.Split(*ctrd, ",")); err == nil {
			printTable(os.Stdout, b, c)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcompare:", err)
		os.Exit(1)
	}
}

// run is what one runtime's run measured: per critest operation its samples in ms, and
// the density figures.
type run struct {
	ops     map[string][]float64
	density map[string]float64
}

// resultsFile is the shape of critest's *_benchmark_data.json.
type resultsFile struct {
	OperationsNames []string `json:"operationsNames"`
	Datapoints      []struct {
		OperationsDurationsNs []int64 `json:"operationsDurationsNs"`
	} `json:"datapoints"`
}

func loadRuns(dirs []string) ([]run, error) {
	var runs []run
	for _, dir := range dirs {
		r, err := loadRun(dir)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	return runs, nil
}

func loadRun(dir string) (run, error) {
	r := run{ops: map[string][]float64{}, density: map[string]float64{}}
	files, _ := filepath.Glob(filepath.Join(dir, "*_data.json"))
	if len(files) == 0 {
		return r, fmt.Errorf("%s: no critest results (*_data.json)", dir)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return r, err
		}
		var res resultsFile
		if err := json.Unmarshal(data, &res); err != nil {
			return r, fmt.Errorf("%s: %w", f, err)
		}
		for _, dp := range res.Datapoints {
			for i, ns := range dp.OperationsDurationsNs {
				if i < len(res.OperationsNames) {
					name := res.OperationsNames[i]
					r.ops[name] = append(r.ops[name], float64(ns)/1e6)
				}
			}
			// critest times CreateContainer and StartContainer apart; their sum per
			// sample is what a kubelet waits for.
			if slices.Equal(res.OperationsNames[:min(2, len(res.OperationsNames))], []string{"CreateContainer", "StartContainer"}) &&
				len(dp.OperationsDurationsNs) >= 2 {
				ns := dp.OperationsDurationsNs[0] + dp.OperationsDurationsNs[1]
				r.ops["CreateContainer+StartContainer"] = append(r.ops["CreateContainer+StartContainer"], float64(ns)/1e6)
			}
		}
	}
	f, err := os.Open(filepath.Join(dir, "density.txt"))
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok {
			continue
		}
		if x, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			r.density[k] = x
		}
	}
	return r, sc.Err()
}

// opRows are critest's operations in the table's order, with how the table names them.
var opRows = []struct{ op, label string }{
	{"CreatePod", "RunPodSandbox"},
	{"StatusPod", "PodSandboxStatus"},
	{"StopPod", "StopPodSandbox"},
	{"RemovePod", "RemovePodSandbox"},
	{"CreateContainer", "CreateContainer"},
	{"StartContainer", "StartContainer"},
	{"CreateContainer+StartContainer", "CreateContainer + StartContainer"},
	{"StatusContainer", "ContainerStatus"},
	{"StopContainer", "StopContainer"},
	{"RemoveContainer", "RemoveContainer"},
	{"PullImage", "PullImage"},
	{"StatusImage", "ImageStatus"},
	{"RemoveImage", "RemoveImage"},
	{"ListImages", "ListImages"},
}

// densityRows are density.sh's keys, with their label and unit (kB figures print in MiB).
var densityRows = []struct{ key, label, unit string }{
	{"up_seconds", "density: 30 pods up (RunPodSandbox, CreateContainer, StartContainer each, via crictl)", "s"},
	{"daemon_rss_kb", "density: daemon RSS with the pods", "MiB"},
	{"daemon_pss_kb", "density: daemon PSS with the pods", "MiB"},
	{"pods_rss_kb", "density: per-pod processes (shims or monitors, pause), RSS summed", "MiB"},
	{"pods_pss_kb", "density: per-pod processes, PSS summed", "MiB"},
	{"total_pss_kb", "density: everything (daemon + per-pod processes), PSS", "MiB"},
	{"per_pod_pss_kb", "density: per pod, PSS (per-pod processes + daemon growth)", "MiB"},
}

func printTable(w io.Writer, berth, ctrd []run) {
	fmt.Fprintf(w, "| what | containerd | Berth | Berth / containerd | Berth runs |\n|---|---|---|---|---|\n")
	for _, row := range opRows {
		c, b := pooled(ctrd, row.op), pooled(berth, row.op)
		if len(c) == 0 && len(b) == 0 {
			continue
		}
		var each []string
		for _, r := range berth {
			each = append(each, fmtMS(mean(r.ops[row.op])))
		}
		fmt.Fprintf(w, "| %s, mean (p50) ms | %s (%s) | %s (%s) | %s | %s |\n", row.label,
			fmtMS(mean(c)), fmtMS(median(c)), fmtMS(mean(b)), fmtMS(median(b)),
			ratio(mean(b), mean(c)), strings.Join(each, " / "))
	}
	for _, row := range densityRows {
		c, b := densityMean(ctrd, row.key), densityMean(berth, row.key)
		if c < 0 && b < 0 {
			continue
		}
		var each []string
		for _, r := range berth {
			v, ok := r.density[row.key]
			if !ok {
				v = -1
			}
			each = append(each, fmtUnit(v, row.unit))
		}
		fmt.Fprintf(w, "| %s, %s | %s | %s | %s | %s |\n", row.label, row.unit,
			fmtUnit(c, row.unit), fmtUnit(b, row.unit), ratio(b, c), strings.Join(each, " / "))
	}
}

func pooled(runs []run, op string) []float64 {
	var all []float64
	for _, r := range runs {
		all = append(all, r.ops[op]...)
	}
	return all
}

// densityMean is the mean of key over the runs that have it, -1 if none has.
func densityMean(runs []run, key string) float64 {
	var sum float64
	n := 0
	for _, r := range runs {
		if v, ok := r.density[key]; ok {
			sum += v
			n++
		}
	}
	if n == 0 {
		return -1
	}
	return sum / float64(n)
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return -1
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return -1
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtMS(x float64) string {
	switch {
	case x < 0:
		return "-"
	case x < 10:
		return strconv.FormatFloat(x, 'f', 2, 64)
	default:
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
}

func fmtUnit(x float64, unit string) string {
	if x < 0 {
		return "-"
	}
	if unit == "MiB" {
		x /= 1024
	}
	return strconv.FormatFloat(x, 'f', 1, 64)
}

func ratio(b, c float64) string {
	if b < 0 || c <= 0 {
		return "-"
	}
	return strconv.FormatFloat(b/c, 'f', 2, 64) + "×"
}
