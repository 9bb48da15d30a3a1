package bench

import (
	"fmt"
	"image/color"
	"math"
	"strings"
)

// Palette: one colour per runtime, in the report's order.
var (
	runtimeColors = []color.RGBA{
		{0x2a, 0x7a, 0xb9, 0xff}, // berth: blue
		{0xe0, 0x6c, 0x2b, 0xff}, // containerd 2.4: orange
		{0x7f, 0x8c, 0x8d, 0xff}, // containerd 1.6: grey
		{0x27, 0xae, 0x60, 0xff},
	}
	ink   = color.RGBA{0x22, 0x22, 0x22, 0xff}
	faint = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
)

func runtimeColor(i int) color.RGBA { return runtimeColors[i%len(runtimeColors)] }

// StepKeys are the per-step figures the bar chart shows, in order.
var StepKeys = []string{
	"run_pod_sandbox", "create_container", "start_container", "pod_to_running", "exec_sync",
	"stop_container", "remove_container", "stop_pod_sandbox", "remove_pod_sandbox",
}

// StepsChart draws the p50 of each lifecycle step as bars, one per
// runtime, with the p90 as a whisker.
func StepsChart(r *Report) *Drawing {
	d := &Drawing{W: 1200, H: 460}
	left, right, top, bottom := 70.0, 20.0, 60.0, 90.0
	plotW, plotH := float64(d.W)-left-right, float64(d.H)-top-bottom
	d.Text(float64(d.W)/2, 24, "Pod lifecycle over CRI, kubelet-shaped pods: p50 (bar) and p90 (whisker), ms", Middle, ink)

	var keys []string
	maxV := 0.0
	for _, k := range StepKeys {
		have := false
		for _, res := range r.Results {
			if f := res.Lookup(k); f != nil && f.Summary.N > 0 {
				have = true
				maxV = math.Max(maxV, f.Summary.P90)
			}
		}
		if have {
			keys = append(keys, k)
		}
	}
	ticks := niceTicks(maxV)
	top0 := ticks[len(ticks)-1]
	y := func(v float64) float64 { return top + plotH - v/top0*plotH }
	yAxis(d, left, plotW, ticks, y, "%g")
	d.Text(left-50, top-12, "ms", Start, ink)

	n := len(r.Results)
	if len(keys) > 0 && n > 0 {
		group := plotW / float64(len(keys))
		barW := math.Min(28, group*0.8/float64(n))
		for gi, k := range keys {
			x0 := left + group*float64(gi) + (group-barW*float64(n))/2
			var label string
			for ri, res := range r.Results {
				f := res.Lookup(k)
				if f == nil {
					continue
				}
				label = f.Label
				if f.Summary.N == 0 {
					continue
				}
				x := x0 + barW*float64(ri)
				c := runtimeColor(ri)
				d.Rect(x+1, y(f.Summary.P50), barW-2, y(0)-y(f.Summary.P50), c)
				mid := x + barW/2
				d.Line(mid, y(f.Summary.P50), mid, y(f.Summary.P90), 1, ink, false)
				d.Line(mid-3, y(f.Summary.P90), mid+3, y(f.Summary.P90), 1, ink, false)
			}
			cx := left + group*float64(gi) + group/2
			// basicfont has ASCII only.
			label = strings.ReplaceAll(label, "→", "->")
			for li, part := range wrap(label, int(group/charW)-1) {
				d.Text(cx, y(0)+16+float64(li)*13, part, Middle, ink)
			}
		}
	}
	legend(d, r, float64(d.W)-right, 44, false)
	return d
}

// GrowthChart draws CreateContainer, ListContainers and ListContainers of
// the probe pod p50 against the containers present, side by side.
func GrowthChart(r *Report) *Drawing {
	d := &Drawing{W: 1200, H: 420}
	d.Text(float64(d.W)/2, 24, "Latency against the containers present (p50, ms)", Middle, ink)
	series := func(pick func(GrowthPoint) Summary) [][]point {
		var out [][]point
		for _, res := range r.Results {
			var pts []point
			for _, g := range res.Growth {
				if s := pick(g); s.N > 0 {
					pts = append(pts, point{float64(g.Containers), s.P50})
				}
			}
			out = append(out, pts)
		}
		return out
	}
	linePanel(d, r, 0, 0, 400, 420, "CreateContainer", "containers present", series(func(g GrowthPoint) Summary { return g.Create }), false)
	linePanel(d, r, 400, 0, 400, 420, "ListContainers", "containers present", series(func(g GrowthPoint) Summary { return g.List }), true)
	linePanel(d, r, 800, 0, 400, 420, "ListContainers of one pod", "containers present", series(func(g GrowthPoint) Summary { return g.ListPod }), false)
	return d
}

// MemoryChart draws the daemon's RSS and its helpers' summed PSS against
// the pods running, side by side.
func MemoryChart(r *Report) *Drawing {
	d := &Drawing{W: 960, H: 420}
	d.Text(float64(d.W)/2, 24, "Memory against the pods running, one container each (MiB)", Middle, ink)
	series := func(pick func(MemoryPoint) float64) [][]point {
		var out [][]point
		for _, res := range r.Results {
			var pts []point
			for _, m := range res.Memory {
				pts = append(pts, point{float64(m.Pods), pick(m)})
			}
			out = append(out, pts)
		}
		return out
	}
	linePanel(d, r, 0, 0, 480, 420, "daemon RSS", "pods", series(func(m MemoryPoint) float64 { return m.DaemonRSS }), false)
	linePanel(d, r, 480, 0, 480, 420, "helpers' PSS, summed (conmons / shims)", "pods", series(func(m MemoryPoint) float64 { return m.HelpersPSS }), true)
	return d
}

type point struct{ x, y float64 }

// linePanel draws one line per runtime in the box at (ox, oy).
func linePanel(d *Drawing, r *Report, ox, oy, w, h float64, title, xLabel string, series [][]point, withLegend bool) {
	left, right, top, bottom := ox+60, 20.0, oy+60, 60.0
	plotW, plotH := w-(left-ox)-right, h-(top-oy)-bottom
	d.Text(left+plotW/2, top-14, title, Middle, ink)
	maxX, maxY := 0.0, 0.0
	for _, s := range series {
		for _, p := range s {
			maxX, maxY = math.Max(maxX, p.x), math.Max(maxY, p.y)
		}
	}
	yt, xt := niceTicks(maxY), niceTicks(maxX)
	ymax, xmax := yt[len(yt)-1], xt[len(xt)-1]
	y := func(v float64) float64 { return top + plotH - v/ymax*plotH }
	x := func(v float64) float64 { return left + v/xmax*plotW }
	yAxis(d, left, plotW, yt, y, "%g")
	for _, t := range xt {
		d.Line(x(t), y(0), x(t), y(0)+4, 1, ink, false)
		d.Text(x(t), y(0)+17, fmt.Sprintf("%g", t), Middle, ink)
	}
	d.Text(left+plotW/2, y(0)+34, xLabel, Middle, ink)
	empty := true
	for _, s := range series {
		empty = empty && len(s) == 0
	}
	if empty {
		// An older bench.json, say, without this series.
		d.Text(left+plotW/2, top+plotH/2, "not measured", Middle, ink)
	}
	for i, s := range series {
		c := runtimeColor(i)
		for j, p := range s {
			if j > 0 {
				d.Line(x(s[j-1].x), y(s[j-1].y), x(p.x), y(p.y), 2, c, false)
			}
			d.Circle(x(p.x), y(p.y), 3.5, c)
		}
	}
	if withLegend {
		// Top left: the lines start low there and mostly rise.
		legend(d, r, left+legendWidth(r)+16, top+8, true)
	}
}

// yAxis draws horizontal grid lines with labels at the ticks, and the axes.
func yAxis(d *Drawing, left, plotW float64, ticks []float64, y func(float64) float64, format string) {
	for _, t := range ticks {
		if t > 0 {
			d.Line(left, y(t), left+plotW, y(t), 1, faint, false)
		}
		d.Text(left-6, y(t)+4, fmt.Sprintf(format, t), End, ink)
	}
	d.Line(left, y(0), left+plotW, y(0), 1, ink, false)
	d.Line(left, y(0), left, y(ticks[len(ticks)-1]), 1, ink, false)
}

// legend lists the runtimes with their colours, right-aligned at x.
func legend(d *Drawing, r *Report, x, y float64, lines bool) {
	wide := legendWidth(r) - 30
	d.Rect(x-wide-26, y-14, wide+30, float64(len(r.Results))*16+6, color.RGBA{0xff, 0xff, 0xff, 0xff})
	for i, res := range r.Results {
		yy := y + float64(i)*16
		d.Text(x-20, yy, res.Runtime, End, ink)
		if lines {
			d.Line(x-16, yy-4, x, yy-4, 2, runtimeColor(i), false)
		} else {
			d.Rect(x-14, yy-10, 12, 12, runtimeColor(i))
		}
	}
}

// legendWidth is the width of legend's box.
func legendWidth(r *Report) float64 {
	wide := 0.0
	for _, res := range r.Results {
		wide = math.Max(wide, TextWidth(res.Runtime))
	}
	return wide + 30
}

// niceTicks are 0 and 4-8 round steps (1, 2 or 5 × 10^k) covering max.
func niceTicks(max float64) []float64 {
	if max <= 0 || math.IsNaN(max) || math.IsInf(max, 0) {
		return []float64{0, 1}
	}
	raw := max / 5
	exp := math.Floor(math.Log10(raw))
	mag := math.Pow(10, exp)
	mult := 10.0
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			mult = m
			break
		}
	}
	// i*mult*10^exp, computed so that 0.1 steps come out as 0.3 and
	// not 0.30000000000000004.
	tick := func(i int) float64 {
		if exp < 0 {
			return float64(i) * mult / math.Pow(10, -exp)
		}
		return float64(i) * mult * mag
	}
	var ticks []float64
	for i := 0; ; i++ {
		ticks = append(ticks, tick(i))
		if tick(i) >= max {
			break
		}
	}
	return ticks
}

// wrap splits s at spaces into lines of at most n characters (a longer
// word stands alone).
func wrap(s string, n int) []string {
	var lines []string
	cur := ""
	for _, w := range splitWords(s) {
		switch {
		case cur == "":
			cur = w
		case len([]rune(cur))+1+len([]rune(w)) <= n:
			cur += " " + w
		default:
			lines = append(lines, cur)
			cur = w
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

func splitWords(s string) []string {
	var out []string
	word := ""
	for _, c := range s {
		if c == ' ' {
			if word != "" {
				out = append(out, word)
			}
			word = ""
			continue
		}
		word += string(c)
	}
	if word != "" {
		out = append(out, word)
	}
	return out
}
