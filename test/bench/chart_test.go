package bench

import (
	"bytes"
	"encoding/json"
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

func TestGrowthChartPanels(t *testing.T) {
	svg := GrowthChart(sampleReport()).SVG()
	for _, want := range []string{">CreateContainer<", ">ListContainers<", ">ListContainers of one pod<"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("growth chart lacks the panel %s", want)
		}
	}
	if bytes.Contains(svg, []byte("not measured")) {
		t.Error("growth chart says a measured series is not")
	}
	// The pod list's points: two runtimes of two levels, 3 series × 2
	// points × 2 runtimes circles in all.
	if n := bytes.Count(svg, []byte("<circle")); n != 12 {
		t.Errorf("growth chart has %d points, want 12", n)
	}

	// An old bench.json without the series: the panel is drawn empty,
	// saying so, and the PNG still renders.
	var old Report
	if err := json.Unmarshal([]byte(oldGrowthJSON), &old); err != nil {
		t.Fatal(err)
	}
	d := GrowthChart(&old)
	if svg := d.SVG(); !bytes.Contains(svg, []byte("not measured")) || bytes.Count(svg, []byte("<circle")) != 4 {
		t.Errorf("growth chart of an old bench.json:\n%s", svg)
	}
	if _, err := d.PNG(); err != nil {
		t.Fatal(err)
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
