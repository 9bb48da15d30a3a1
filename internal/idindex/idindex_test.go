package idindex

import (
	"errors"
	"testing"

	"github.com/berth-dev/berth/errdefs"
)

func TestGet(t *testing.T) {
	x := New()
	for _, id := range []string{"abc123", "abd456", "ff00"} {
		x.Add(id)
	}
	x.Add("gone")
	x.Delete("gone")
	for _, tc := range []struct {
		prefix, want string
		err          error
	}{
		{"abc123", "abc123", nil},
		{"abc", "abc123", nil},
		{"f", "ff00", nil},
		{"ab", "", errdefs.ErrInvalidArgument},
		{"", "", errdefs.ErrInvalidArgument},
		{"zz", "", errdefs.ErrNotFound},
		{"gone", "", errdefs.ErrNotFound},
	} {
		t.Run(tc.prefix, func(t *testing.T) {
			got, err := x.Get(tc.prefix)
			if got != tc.want || (tc.err == nil) != (err == nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
				t.Errorf("Get(%q) = %q, %v; want %q, %v", tc.prefix, got, err, tc.want, tc.err)
			}
		})
	}
}
