package bench

import (
	"bytes"
	"encoding/xml"
	"image/png"
	"io"
	"reflect"
	"testing"
)

func TestCharts(t *testing.T) {
	r := sampleReport()
	for name, d := range map[string]*Drawing{"steps": StepsChart(r), "growth": GrowthChart(r), "memory": MemoryChart(r), "empty": StepsChart(&Report{})} {
		t.Run(name, func(t *testing.T) {
			svg := d.SVG()
			dec := xml.NewDecoder(bytes.NewReader(svg))
			elements := 0
			for {
				tok, err := dec.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("SVG is not well-formed XML: %v", err)
				}
				if _, ok := tok.(xml.StartElement); ok {
					elements++
				}
			}
			if elements < 5 {
				t.Errorf("SVG has %d elements", elements)
			}
			data, err := d.PNG()
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("PNG does not decode: %v", err)
			}
			if b := img.Bounds(); b.Dx() != d.W || b.Dy() != d.H {
				t.Errorf("PNG is %v, want %dx%d", b, d.W, d.H)
			}
			// Something but white was drawn.
			inked := false
			for y := 0; y < d.H && !inked; y += 3 {
				for x := 0; x < d.W; x++ {
					if r, g, b, _ := img.At(x, y).RGBA(); r != 0xffff || g != 0xffff || b != 0xffff {
						inked = true
						break
					}
				}
			}
			if !inked {
				t.Error("PNG is blank")
			}
		})
	}
}

func TestSVGEscapesText(t *testing.T) {
	d := &Drawing{W: 10, H: 10}
	d.Text(1, 1, `a<b & "c"`, Start, ink)
	if !bytes.Contains(d.SVG(), []byte(`a&lt;b &amp; &quot;c&quot;`)) {
		t.Errorf("text not escaped: %s", d.SVG())
	}
}

func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct {
		max  float64
		want []float64
	}{
		{47, []float64{0, 10, 20, 30, 40, 50}},
		{1000, []float64{0, 200, 400, 600, 800, 1000}},
		{0.3, []float64{0, 0.1, 0.2, 0.3}},
		{0, []float64{0, 1}},
	} {
		if got := niceTicks(tc.max); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("niceTicks(%v) = %v, want %v", tc.max, got, tc.want)
		}
	}
}

func TestWrap(t *testing.T) {
	got := wrap("run pod → container running", 12)
	want := []string{"run pod →", "container", "running"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("wrap = %q, want %q", got, want)
	}
}
