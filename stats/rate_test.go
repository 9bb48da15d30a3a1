package stats

import (
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name      string
		prev, cur uint64
		dt        time.Duration
		want      uint64
		wantOK    bool
	}{
		{"one busy core", 0, uint64(time.Second), time.Second, 1_000_000_000, true},
		{"half a core over two seconds", 5e9, 6e9, 2 * time.Second, 500_000_000, true},
		{"two cores", 0, uint64(4 * time.Second), 2 * time.Second, 2_000_000_000, true},
		{"idle", 7, 7, time.Second, 0, true},
		{"large counters do not overflow", 1 << 62, 1<<62 + uint64(100*time.Second), 50 * time.Second, 2_000_000_000, true},
		{"same instant", 0, 100, 0, 0, false},
		{"clock went back", 0, 100, -time.Second, 0, false},
		{"counter reset", 100, 50, time.Second, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Rate(tc.prev, t0, tc.cur, t0.Add(tc.dt))
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("Rate = %d, %v; want %d, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestRatesKeepThePreviousSamplePerKey(t *testing.T) {
	r := NewRates()
	t0 := time.Unix(1000, 0)
	steps := []struct {
		key    string
		usage  uint64
		at     time.Duration
		want   uint64
		wantOK bool
	}{
		{"a", 1e9, 0, 0, false}, // first sample: no rate yet
		{"b", 0, 0, 0, false},
		{"a", 2e9, time.Second, 1e9, true},
		{"b", 1e9, 4 * time.Second, 250_000_000, true},
		{"a", 2e9, 3 * time.Second, 0, true},
	}
	for i, s := range steps {
		got, ok := r.Update(s.key, s.usage, t0.Add(s.at))
		if got != s.want || ok != s.wantOK {
			t.Errorf("step %d (%s): %d, %v; want %d, %v", i, s.key, got, ok, s.want, s.wantOK)
		}
	}
	r.Forget("a")
	if _, ok := r.Update("a", 3e9, t0.Add(4*time.Second)); ok {
		t.Error("a rate right after Forget")
	}
	if r.Len() != 2 {
		t.Errorf("Len = %d, want 2", r.Len())
	}
}
