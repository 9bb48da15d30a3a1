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

// List is oldest first whatever order objects were added in (recovery adds
// them in a map's order), with replaced and deleted ones gone.
func TestListOrder(t *testing.T) {
	t0 := time.Now()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	st := New[*obj]("widget")
	for _, o := range []*obj{{"c", at(3)}, {"a", at(1)}, {"e", at(5)}, {"b", at(2)}, {"d", at(4)}, {"b2", at(2)}} {
		st.Add(o)
	}
	st.Delete("d")
	st.Delete("nothing")
	st.Add(&obj{"e", at(0)}) // replaced: its new time counts
	var got []string
	for _, o := range st.List() {
		got = append(got, o.id)
	}
	if want := "e a b b2 c"; strings.Join(got, " ") != want {
		t.Errorf("List = %v, want %s", got, want)
	}
	if _, err := st.Get("d"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("deleted object still found: %v", err)
	}
}
