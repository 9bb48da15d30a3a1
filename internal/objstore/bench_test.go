package objstore

import (
	"fmt"
	"testing"
	"time"
)

type benchObj struct {
	id string
	at time.Time
}

func (o *benchObj) GetID() string      { return o.id }
func (o *benchObj) Created() time.Time { return o.at }

func BenchmarkList(b *testing.B) {
	for _, n := range []int{0, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			st := New[*benchObj]("obj")
			t0 := time.Now()
			for i := range n {
				st.Add(&benchObj{id: fmt.Sprintf("%064x", i*7919), at: t0.Add(time.Duration(i))})
			}
			b.ReportAllocs()
			for b.Loop() {
				st.List()
			}
		})
	}
}
