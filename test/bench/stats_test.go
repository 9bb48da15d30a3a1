package bench

import (
	"math"
	"testing"
)

func TestPercentile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"one sample", []float64{7}, 90, 7},
		{"median of odd", []float64{1, 2, 3}, 50, 2},
		{"median of even is the mean of the middle two", []float64{1, 2, 3, 4}, 50, 2.5},
		{"p90 interpolates", []float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 90, 91},
		{"p0 is the minimum", []float64{3, 4, 5}, 0, 3},
		{"p100 is the maximum", []float64{3, 4, 5}, 100, 5},
		{"out of range is clamped", []float64{3, 4, 5}, 150, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("Percentile of no samples is not NaN")
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize([]float64{5, 1, 4, 2, 3})
	want := Summary{N: 5, P50: 3, P90: 4.6, Mean: 3, Min: 1, Max: 5}
	if math.Abs(s.P90-want.P90) > 1e-9 {
		t.Errorf("P90 = %v, want %v", s.P90, want.P90)
	}
	s.P90 = want.P90
	if s != want {
		t.Errorf("Summarize = %+v, want %+v", s, want)
	}
	if (Summarize(nil) != Summary{}) {
		t.Error("Summarize(nil) is not zero")
	}
}

func TestRatio(t *testing.T) {
	for _, tc := range []struct {
		a, b float64
		want float64
		ok   bool
	}{
		{10, 40, 0.25, true},
		{40, 10, 4, true},
		{10, 0, 0, false},
		{0, 10, 0, false},
		{math.NaN(), 10, 0, false},
	} {
		got, ok := Ratio(tc.a, tc.b)
		if ok != tc.ok || got != tc.want {
			t.Errorf("Ratio(%v, %v) = %v, %v; want %v, %v", tc.a, tc.b, got, ok, tc.want, tc.ok)
		}
	}
}
