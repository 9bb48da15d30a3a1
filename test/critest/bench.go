package critest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// BenchParams is critest's -benchmarking-params-file (YAML, of which JSON
// is a subset).
type BenchParams struct {
	ContainersNumber            int      `json:"containersNumber"`
	ContainersNumberParallel    int      `json:"containersNumberParallel"`
	PodsNumber                  int      `json:"podsNumber"`
	PodsNumberParallel          int      `json:"podsNumberParallel"`
	ImagesNumber                int      `json:"imagesNumber"`
	ImagesNumberParallel        int      `json:"imagesNumberParallel"`
	ImagePullingBenchmarkImage  string   `json:"imagePullingBenchmarkImage"`
	ImageListingBenchmarkImages []string `json:"imageListingBenchmarkImages"`
	// Seconds; critest's defaults (5s for the pod-and-container start, 10s
	// between image results) are tight for a loaded CI machine.
	PodContainerStartBenchmarkTimeoutSeconds int `json:"podContainerStartBenchmarkTimeoutSeconds"`
	ImageBenchmarkTimeoutSeconds             int `json:"imageBenchmarkTimeoutSeconds"`
}

// Bench is one runtime's benchmark results: every sample of every
// operation, in nanoseconds.
type Bench struct {
	Runtime string
	Samples map[string][]time.Duration
	// The daemon's resident memory before the benchmarks (images pulled,
	// no pods) and after them, in MiB; 0 if unknown.
	IdleRSS, AfterRSS float64
}

// benchFiles are the files critest writes to -benchmarking-output-dir,
// and the CRI call behind each of their operation names.
var benchFiles = []struct {
	file string
	ops  map[string]string
}{
	{"pod_benchmark_data.json", map[string]string{
		"CreatePod": "RunPodSandbox", "StatusPod": "PodSandboxStatus", "StopPod": "StopPodSandbox", "RemovePod": "RemovePodSandbox"}},
	{"container_benchmark_data.json", map[string]string{
		"CreateContainer": "CreateContainer", "StartContainer": "StartContainer", "StatusContainer": "ContainerStatus",
		"StopContainer": "StopContainer", "RemoveContainer": "RemoveContainer"}},
	{"image_lifecycle_benchmark_data.json", map[string]string{
		"PullImage": "PullImage", "StatusImage": "ImageStatus", "RemoveImage": "RemoveImage"}},
	{"image_listing_benchmark_data.json", map[string]string{"ListImages": "ListImages"}},
}

// BenchOps is the order operations are shown in.
var BenchOps = []string{
	"RunPodSandbox", "PodSandboxStatus", "StopPodSandbox", "RemovePodSandbox",
	"CreateContainer", "StartContainer", "ContainerStatus", "StopContainer", "RemoveContainer",
	"PullImage", "ImageStatus", "RemoveImage", "ListImages",
	PodAndContainerStart,
}

// PodAndContainerStart is critest's "start a container from scratch":
// RunPodSandbox, CreateContainer and StartContainer, measured once.
const PodAndContainerStart = "pod+container start"

// ReadBench reads the results critest wrote to dir, and the measurement of
// the start-from-scratch benchmark from the Ginkgo JSON report, if given.
func ReadBench(runtime, dir, jsonReport string) (*Bench, error) {
	b := &Bench{Runtime: runtime, Samples: map[string][]time.Duration{}}
	for _, f := range benchFiles {
		data, err := os.ReadFile(filepath.Join(dir, f.file))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var set struct {
			OperationsNames []string `json:"operationsNames"`
			Datapoints      []struct {
				OperationsDurationsNs []int64 `json:"operationsDurationsNs"`
			} `json:"datapoints"`
		}
		if err := json.Unmarshal(data, &set); err != nil {
			return nil, fmt.Errorf("parse %s: %w", f.file, err)
		}
		for _, dp := range set.Datapoints {
			for i, ns := range dp.OperationsDurationsNs {
				if i < len(set.OperationsNames) {
					op := f.ops[set.OperationsNames[i]]
					if op == "" {
						op = set.OperationsNames[i]
					}
					b.Samples[op] = append(b.Samples[op], time.Duration(ns))
				}
			}
		}
	}
	if jsonReport != "" {
		d, err := startFromScratch(jsonReport)
		if err != nil {
			return nil, err
		}
		if len(d) > 0 {
			b.Samples[PodAndContainerStart] = d
		}
	}
	return b, nil
}

// startFromScratch digs the gmeasure experiment "start-container-benchmark"
// out of a Ginkgo JSON report.
func startFromScratch(path string) ([]time.Duration, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var reports []struct {
		SpecReports []struct {
			ReportEntries []struct {
				Name  string
				Value struct {
					AsJSON string
				}
			}
		}
	}
	if err := json.Unmarshal(data, &reports); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	var out []time.Duration
	for _, r := range reports {
		for _, s := range r.SpecReports {
			for _, e := range s.ReportEntries {
				if e.Name != "start-container-benchmark" || e.Value.AsJSON == "" {
					continue
				}
				var exp struct {
					Measurements []struct {
						Durations []time.Duration
					}
				}
				if err := json.Unmarshal([]byte(e.Value.AsJSON), &exp); err != nil {
					return nil, fmt.Errorf("parse start-container-benchmark: %w", err)
				}
				for _, m := range exp.Measurements {
					out = append(out, m.Durations...)
				}
			}
		}
	}
	return out, nil
}

// Median of the samples (the mean of the middle two for an even count).
func Median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// FormatBench lays out the medians of several runtimes side by side, one
// row per operation, with the sample count of each.
func FormatBench(benches []*Bench) string {
	var sb strings.Builder
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	header := "operation\t"
	for _, b := range benches {
		header += b.Runtime + " median\tn\t"
	}
	fmt.Fprintln(w, header)
	ops := slices.Clone(BenchOps)
	for _, b := range benches {
		for op := range b.Samples {
			if !slices.Contains(ops, op) {
				ops = append(ops, op)
			}
		}
	}
	for _, op := range ops {
		row := op + "\t"
		any := false
		for _, b := range benches {
			s := b.Samples[op]
			if len(s) == 0 {
				row += "-\t-\t"
				continue
			}
			any = true
			row += fmt.Sprintf("%s\t%d\t", formatMs(Median(s)), len(s))
		}
		if any {
			fmt.Fprintln(w, row)
		}
	}
	for _, r := range []struct {
		name string
		rss  func(*Bench) float64
	}{{"daemon RSS idle", func(b *Bench) float64 { return b.IdleRSS }}, {"daemon RSS after", func(b *Bench) float64 { return b.AfterRSS }}} {
		row := r.name + "\t"
		for _, b := range benches {
			if v := r.rss(b); v > 0 {
				row += fmt.Sprintf("%.0f MiB\t\t", v)
			} else {
				row += "-\t\t"
			}
		}
		fmt.Fprintln(w, row)
	}
	w.Flush()
	return sb.String()
}

// formatMs shows a duration in milliseconds, with more digits below 10 ms.
func formatMs(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	if ms < 10 {
		return fmt.Sprintf("%.2f ms", ms)
	}
	return fmt.Sprintf("%.1f ms", ms)
}
