package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Units of figures.
const (
	Ms  = "ms"
	MiB = "MiB"
)

// Figure is one measured quantity of one runtime: every sample, the
// failures, and their summary.
type Figure struct {
	Key     string    `json:"key"`
	Label   string    `json:"label"`
	Unit    string    `json:"unit"`
	Samples []float64 `json:"samples,omitempty"`
	Errors  int       `json:"errors,omitempty"`
	Error   string    `json:"first_error,omitempty"`
	Summary Summary   `json:"summary"`
}

// Add records a sample.
func (f *Figure) Add(v float64) {
	f.Samples = append(f.Samples, v)
	f.Summary = Summarize(f.Samples)
}

// AddDuration records a latency sample.
func (f *Figure) AddDuration(d time.Duration) { f.Add(float64(d) / float64(time.Millisecond)) }

// Fail records a failed attempt; the first error is kept.
func (f *Figure) Fail(err error) {
	f.Errors++
	if f.Error == "" && err != nil {
		f.Error = err.Error()
	}
}

// GrowthPoint is CreateContainer and ListContainers with a number of
// containers present, and ListContainers filtered to the probe pod once
// it holds its Calls containers (zero in a bench.json from before it was
// measured).
type GrowthPoint struct {
	Containers int     `json:"containers"`
	Create     Summary `json:"create_container"`
	List       Summary `json:"list_containers"`
	ListPod    Summary `json:"list_pod_containers"`
}

// MemoryPoint is the memory a runtime uses with a number of pods (one
// running container each, unless Containers says otherwise).
type MemoryPoint struct {
	Pods       int     `json:"pods"`
	Containers int     `json:"containers"`
	DaemonRSS  float64 `json:"daemon_rss_mib"`
	HelpersPSS float64 `json:"helpers_pss_mib"` // conmons or shims, summed
	Helpers    int     `json:"helpers"`
}

// Result is everything measured of one runtime.
type Result struct {
	Runtime  string         `json:"runtime"`
	Version  string         `json:"version"`
	Figures  []*Figure      `json:"figures"`
	Growth   []GrowthPoint  `json:"growth"`
	Memory   []MemoryPoint  `json:"memory"`
	Problems []string       `json:"problems,omitempty"`
	Seconds  float64        `json:"seconds"`
	Extra    map[string]any `json:"extra,omitempty"`
}

// Figure returns the figure of that key, making it (with label and unit)
// the first time.
func (r *Result) Figure(key, label, unit string) *Figure {
	for _, f := range r.Figures {
		if f.Key == key {
			return f
		}
	}
	f := &Figure{Key: key, Label: label, Unit: unit}
	r.Figures = append(r.Figures, f)
	return f
}

// Lookup returns the figure of that key, or nil.
func (r *Result) Lookup(key string) *Figure {
	for _, f := range r.Figures {
		if f.Key == key {
			return f
		}
	}
	return nil
}

// Problem records something that went wrong but did not stop the run.
func (r *Result) Problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Machine describes where the bench ran.
type Machine struct {
	CPU       string            `json:"cpu"`
	CPUs      int               `json:"cpus"`
	MemoryGiB float64           `json:"memory_gib"`
	Kernel    string            `json:"kernel"`
	OS        string            `json:"os"`
	Cgroups   string            `json:"cgroups"`
	Go        string            `json:"go"`
	Tools     map[string]string `json:"tools,omitempty"` // runc, crun, conmon, CNI plugins
	Load      string            `json:"load,omitempty"`  // /proc/loadavg at the start
}

// Report is a whole run.
type Report struct {
	Started  time.Time         `json:"started"`
	Seconds  float64           `json:"seconds"`
	Machine  Machine           `json:"machine"`
	Workload map[string]string `json:"workload"`
	Results  []*Result         `json:"results"`
}

// JSON is the report, indented.
func (r *Report) JSON() ([]byte, error) {
	// NaN is not JSON; an empty Summary is all zeros already, so only a
	// stray NaN sample could get here.
	for _, res := range r.Results {
		for _, f := range res.Figures {
			f.Samples = slices.DeleteFunc(f.Samples, math.IsNaN)
			f.Summary = Summarize(f.Samples)
		}
	}
	return json.MarshalIndent(r, "", "  ")
}

// figureKeys is every figure key of the report, in the order the results
// first show them.
func (r *Report) figureKeys() []string {
	var keys []string
	for _, res := range r.Results {
		for _, f := range res.Figures {
			if !slices.Contains(keys, f.Key) {
				keys = append(keys, f.Key)
			}
		}
	}
	return keys
}

// Markdown renders the machine, the figures (p50 and p90 of each runtime,
// then the first runtime's p50 as a ratio of each other's), the growth and
// the memory tables.
func (r *Report) Markdown() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "Machine: %s, %d vCPU, %.0f GiB, %s, %s, %s. Started %s, took %s.\n\n",
		orDash(m.CPU), m.CPUs, m.MemoryGiB, orDash(m.OS), orDash(m.Kernel), orDash(m.Cgroups),
		r.Started.UTC().Format("2006-01-02 15:04 MST"), (time.Duration(r.Seconds) * time.Second).String())
	if m.Load != "" {
		fmt.Fprintf(&b, "Load average at the start: %s.\n\n", m.Load)
	}
	if len(r.Results) == 0 {
		b.WriteString("No results.\n")
		return b.String()
	}
	subject := r.Results[0]
	peers := r.Results[1:]

	b.WriteString("| figure |")
	sep := "|---|"
	for _, res := range r.Results {
		fmt.Fprintf(&b, " %s p50 | p90 |", res.Runtime)
		sep += "---:|---:|"
	}
	for _, p := range peers {
		fmt.Fprintf(&b, " %s ÷ %s |", subject.Runtime, p.Runtime)
		sep += "---:|"
	}
	b.WriteString("\n" + sep + "\n")
	for _, key := range r.figureKeys() {
		var label, unit string
		for _, res := range r.Results {
			if f := res.Lookup(key); f != nil {
				label, unit = f.Label, f.Unit
				break
			}
		}
		fmt.Fprintf(&b, "| %s (%s) |", label, unit)
		for _, res := range r.Results {
			f := res.Lookup(key)
			p50, p90 := cell(f)
			fmt.Fprintf(&b, " %s | %s |", p50, p90)
		}
		for _, p := range peers {
			fmt.Fprintf(&b, " %s |", ratioCell(subject.Lookup(key), p.Lookup(key)))
		}
		b.WriteString("\n")
	}

	if hasGrowth(r.Results) {
		b.WriteString("\nGrowth: p50 in ms against the containers present; ListContainers of one pod lists the probe pod's own containers, as many at every level.\n\n| containers |")
		sep := "|---:|"
		for _, res := range r.Results {
			fmt.Fprintf(&b, " %s CreateContainer | %s ListContainers | %s ListContainers of one pod |", res.Runtime, res.Runtime, res.Runtime)
			sep += "---:|---:|---:|"
		}
		b.WriteString("\n" + sep + "\n")
		for _, n := range growthLevels(r.Results) {
			fmt.Fprintf(&b, "| %d |", n)
			for _, res := range r.Results {
				g, ok := growthAt(res, n)
				if !ok {
					b.WriteString(" - | - | - |")
					continue
				}
				fmt.Fprintf(&b, " %s | %s | %s |", num(g.Create.P50, g.Create.N), num(g.List.P50, g.List.N), num(g.ListPod.P50, g.ListPod.N))
			}
			b.WriteString("\n")
		}
		b.WriteString("| largest ÷ none |")
		for _, res := range r.Results {
			if len(res.Growth) < 2 {
				b.WriteString(" - | - | - |")
				continue
			}
			first, last := res.Growth[0], res.Growth[len(res.Growth)-1]
			fmt.Fprintf(&b, " %s | %s | %s |", ratioOf(last.Create.P50, first.Create.P50), ratioOf(last.List.P50, first.List.P50),
				ratioOf(last.ListPod.P50, first.ListPod.P50))
		}
		b.WriteString("\n")
	}

	if hasMemory(r.Results) {
		b.WriteString("\nMemory in MiB against the pods running (one container each): daemon RSS / helpers' PSS summed.\n\n| pods |")
		sep := "|---:|"
		for _, res := range r.Results {
			fmt.Fprintf(&b, " %s |", res.Runtime)
			sep += "---:|"
		}
		b.WriteString("\n" + sep + "\n")
		for _, n := range memoryLevels(r.Results) {
			fmt.Fprintf(&b, "| %d |", n)
			for _, res := range r.Results {
				if p, ok := memoryAt(res, n); ok {
					fmt.Fprintf(&b, " %.1f / %.1f |", p.DaemonRSS, p.HelpersPSS)
				} else {
					b.WriteString(" - |")
				}
			}
			b.WriteString("\n")
		}
	}

	for _, res := range r.Results {
		var errs []string
		for _, f := range res.Figures {
			if f.Errors > 0 {
				errs = append(errs, fmt.Sprintf("%s: %d failed, first: %s", f.Label, f.Errors, truncate(f.Error, 200)))
			}
		}
		errs = append(errs, res.Problems...)
		if len(errs) > 0 {
			fmt.Fprintf(&b, "\n%s problems:\n", res.Runtime)
			for _, e := range errs {
				fmt.Fprintf(&b, "- %s\n", e)
			}
		}
	}
	return b.String()
}

func cell(f *Figure) (p50, p90 string) {
	if f == nil {
		return "-", "-"
	}
	if f.Summary.N == 0 {
		if f.Errors > 0 {
			return "(errors)", "-"
		}
		return "-", "-"
	}
	p50 = num(f.Summary.P50, f.Summary.N)
	if f.Errors > 0 {
		p50 += fmt.Sprintf(" (%d err)", f.Errors)
	}
	if f.Summary.N == 1 {
		return p50, "-"
	}
	return p50, num(f.Summary.P90, f.Summary.N)
}

func ratioCell(a, b *Figure) string {
	if a == nil || b == nil || a.Summary.N == 0 || b.Summary.N == 0 {
		return "-"
	}
	return ratioOf(a.Summary.P50, b.Summary.P50)
}

func ratioOf(a, b float64) string {
	r, ok := Ratio(a, b)
	if !ok {
		return "-"
	}
	if r < 10 {
		return fmt.Sprintf("%.2f×", r)
	}
	return fmt.Sprintf("%.1f×", r)
}

// num shows a value with about three significant digits; "-" without
// samples.
func num(v float64, n int) string {
	if n == 0 || math.IsNaN(v) {
		return "-"
	}
	switch a := math.Abs(v); {
	case a < 10:
		return fmt.Sprintf("%.2f", v)
	case a < 100:
		return fmt.Sprintf("%.1f", v)
	default:
		return thousands(int64(math.Round(v)))
	}
}

func thousands(v int64) string {
	s := fmt.Sprint(v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func hasGrowth(rs []*Result) bool {
	for _, r := range rs {
		if len(r.Growth) > 0 {
			return true
		}
	}
	return false
}

func hasMemory(rs []*Result) bool {
	for _, r := range rs {
		if len(r.Memory) > 0 {
			return true
		}
	}
	return false
}

func growthLevels(rs []*Result) []int {
	var ns []int
	for _, r := range rs {
		for _, g := range r.Growth {
			if !slices.Contains(ns, g.Containers) {
				ns = append(ns, g.Containers)
			}
		}
	}
	slices.Sort(ns)
	return ns
}

func growthAt(r *Result, n int) (GrowthPoint, bool) {
	for _, g := range r.Growth {
		if g.Containers == n {
			return g, true
		}
	}
	return GrowthPoint{}, false
}

func memoryLevels(rs []*Result) []int {
	var ns []int
	for _, r := range rs {
		for _, m := range r.Memory {
			if !slices.Contains(ns, m.Pods) {
				ns = append(ns, m.Pods)
			}
		}
	}
	slices.Sort(ns)
	return ns
}

func memoryAt(r *Result, pods int) (MemoryPoint, bool) {
	for _, m := range r.Memory {
		if m.Pods == pods {
			return m, true
		}
	}
	return MemoryPoint{}, false
}
