package undo

import (
	"errors"
	"log/slog"
	"reflect"
	"testing"
)

func TestRunUndoesInReverseUnlessCommitted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		commit bool
		want   []string
	}{
		{"failure undoes in reverse", false, []string{"c", "b", "a"}},
		{"commit keeps everything", true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			var s Stack
			for _, n := range []string{"a", "b", "c"} {
				s.Add(n, func() error {
					got = append(got, n)
					if n == "b" {
						return errors.New("b failed") // later undos still run
					}
					return nil
				})
			}
			if tc.commit {
				s.Commit()
			}
			s.Run(slog.New(slog.DiscardHandler))
			s.Run(slog.New(slog.DiscardHandler)) // a second run is a no-op
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("undone %v, want %v", got, tc.want)
			}
		})
	}
}
