package bench

import (
	"math"
	"slices"
)

// Summary describes a figure's samples.
type Summary struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	Mean float64 `json:"mean"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
}

// Percentile of sorted samples, p in [0, 100], interpolating linearly
// between the two nearest ranks (numpy's default), so the 50th of an even
// count is the mean of the middle two. NaN for no samples.
func Percentile(sorted []float64, p float64) float64 {
	switch len(sorted) {
	case 0:
		return math.NaN()
	case 1:
		return sorted[0]
	}
	p = math.Max(0, math.Min(100, p))
	rank := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(rank))
	hi := int(math.Ceil(rank))
	frac := rank - float64(lo)
	return sorted[lo] + (sorted[hi]-sorted[lo])*frac
}

// Summarize computes the summary of samples (in any order).
func Summarize(samples []float64) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	sum := 0.0
	for _, v := range s {
		sum += v
	}
	return Summary{
		N:    len(s),
		P50:  Percentile(s, 50),
		P90:  Percentile(s, 90),
		Mean: sum / float64(len(s)),
		Min:  s[0],
		Max:  s[len(s)-1],
	}
}

// Ratio is a/b, and false when either side is missing or b is zero.
func Ratio(a, b float64) (float64, bool) {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 || a == 0 {
		return 0, false
	}
	return a / b, true
}
