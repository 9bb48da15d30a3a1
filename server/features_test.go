package server

import "testing"

func TestKernelAtLeast(t *testing.T) {
	for _, tc := range []struct {
		release string
		want    bool
	}{
		{"6.18.0-1-amd64", true},
		{"5.12.0", true},
		{"5.11.22", false},
		{"4.19.0-24-amd64", false},
		{"5.15+", true},
		{"garbage", false},
	} {
		if got := kernelAtLeast(tc.release, 5, 12); got != tc.want {
			t.Errorf("kernelAtLeast(%q, 5, 12) = %v, want %v", tc.release, got, tc.want)
		}
	}
}
