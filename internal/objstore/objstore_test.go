package objstore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

type obj struct {
	id string
	at time.Time
}

func (o *obj) GetID() string      { return o.id }
func (o *obj) Created() time.Time { return o.at }

func TestStore(t *testing.T) {
	st := New[*obj]("widget")
	t0 := time.Now()
	st.Add(&obj{"bbb222", t0.Add(time.Second)})
	st.Add(&obj{"aaa111", t0})
	st.Add(&obj{"gone", t0})
	st.Delete("gone")

	for _, tc := range []struct {
		query, want string
		err         error
	}{
		{"aaa111", "aaa111", nil},
		{"bb", "bbb222", nil},
		{"gone", "", errdefs.ErrNotFound},
		{"", "", errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.query, func(t *testing.T) {
			o, err := st.Get(tc.query)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), "widget") {
					t.Fatalf("Get(%q) = %v, want %v naming the kind", tc.query, err, tc.err)
				}
				return
			}
			if err != nil || o.id != tc.want {
				t.Fatalf("Get(%q) = %v, %v; want %s", tc.query, o, err, tc.want)
			}
		})
	}
	if l := st.List(); len(l) != 2 || l[0].id != "aaa111" {
		t.Errorf("List = %v, want oldest first", l)
	}
}
