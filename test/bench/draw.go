package bench

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Drawing is a picture as a list of shapes, rendered the same way to SVG
// (Drawing.SVG) and to PNG (Drawing.PNG, with the standard library's image
// packages and basicfont's 7×13 face, so no external tool is needed).
// Coordinates are pixels, y down.
type Drawing struct {
	W, H   int
	shapes []shape
}

// Anchor is where a text's x is: its start, middle or end.
type Anchor int

// Text anchors.
const (
	Start Anchor = iota
	Middle
	End
)

type shapeKind int

const (
	rectShape shapeKind = iota
	lineShape
	textShape
	circleShape
)

type shape struct {
	kind           shapeKind
	x1, y1, x2, y2 float64 // rect: x, y, w, h; circle: x, y, r
	width          float64
	dashed         bool
	c              color.RGBA
	text           string
	anchor         Anchor
}

// Text metrics of basicfont.Face7x13, which the SVG's monospace 12px
// approximates.
const (
	charW  = 7
	ascent = 11
)

// TextWidth is the width of s in pixels.
func TextWidth(s string) float64 { return float64(len([]rune(s)) * charW) }

// Rect fills a rectangle.
func (d *Drawing) Rect(x, y, w, h float64, c color.RGBA) {
	d.shapes = append(d.shapes, shape{kind: rectShape, x1: x, y1: y, x2: w, y2: h, c: c})
}

// Line strokes a line, dashed or not.
func (d *Drawing) Line(x1, y1, x2, y2, width float64, c color.RGBA, dashed bool) {
	d.shapes = append(d.shapes, shape{kind: lineShape, x1: x1, y1: y1, x2: x2, y2: y2, width: width, c: c, dashed: dashed})
}

// Text writes s with its baseline at y.
func (d *Drawing) Text(x, y float64, s string, a Anchor, c color.RGBA) {
	d.shapes = append(d.shapes, shape{kind: textShape, x1: x, y1: y, text: s, anchor: a, c: c})
}

// Circle fills a disc.
func (d *Drawing) Circle(x, y, r float64, c color.RGBA) {
	d.shapes = append(d.shapes, shape{kind: circleShape, x1: x, y1: y, x2: r, c: c})
}

func hex(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// SVG renders the drawing as a standalone SVG document.
func (d *Drawing) SVG() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans Mono, monospace" font-size="12">
<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>
`, d.W, d.H, d.W, d.H, d.W, d.H)
	for _, s := range d.shapes {
		switch s.kind {
		case rectShape:
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", s.x1, s.y1, s.x2, s.y2, hex(s.c))
		case lineShape:
			dash := ""
			if s.dashed {
				dash = ` stroke-dasharray="6 4"`
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%.1f"%s/>`+"\n",
				s.x1, s.y1, s.x2, s.y2, hex(s.c), s.width, dash)
		case textShape:
			anchor := map[Anchor]string{Start: "start", Middle: "middle", End: "end"}[s.anchor]
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="%s" fill="%s">%s</text>`+"\n", s.x1, s.y1, anchor, hex(s.c), xmlEscape(s.text))
		case circleShape:
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="%.1f" fill="%s"/>`+"\n", s.x1, s.y1, s.x2, hex(s.c))
		}
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// PNG renders the drawing as a PNG image.
func (d *Drawing) PNG() ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, d.W, d.H))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	face := basicfont.Face7x13
	for _, s := range d.shapes {
		switch s.kind {
		case rectShape:
			r := image.Rect(round(s.x1), round(s.y1), round(s.x1+s.x2), round(s.y1+s.y2))
			draw.Draw(img, r, image.NewUniform(s.c), image.Point{}, draw.Over)
		case lineShape:
			strokeLine(img, s)
		case textShape:
			w := font.MeasureString(face, s.text).Round()
			x := round(s.x1)
			switch s.anchor {
			case Middle:
				x -= w / 2
			case End:
				x -= w
			}
			dr := &font.Drawer{Dst: img, Src: image.NewUniform(s.c), Face: face, Dot: fixed.P(x, round(s.y1))}
			dr.DrawString(s.text)
		case circleShape:
			fillCircle(img, s.x1, s.y1, s.x2, s.c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func round(v float64) int { return int(math.Round(v)) }

// strokeLine stamps squares of the line's width along it, one per pixel
// of length, skipping the gaps of a dash pattern of 6 on, 4 off.
func strokeLine(img *image.RGBA, s shape) {
	dx, dy := s.x2-s.x1, s.y2-s.y1
	length := math.Hypot(dx, dy)
	steps := int(math.Ceil(length))
	if steps == 0 {
		steps = 1
	}
	half := math.Max(s.width, 1) / 2
	for i := 0; i <= steps; i++ {
		if s.dashed && math.Mod(float64(i), 10) >= 6 {
			continue
		}
		t := float64(i) / float64(steps)
		x, y := s.x1+dx*t, s.y1+dy*t
		// The epsilon keeps float error (114.99999 for 115) from
		// skipping a pixel.
		px := func(v float64) int { return int(math.Floor(v + 0.5 + 1e-6)) }
		r := image.Rect(px(x-half), px(y-half), px(x+half), px(y+half))
		if r.Empty() {
			r.Max = r.Min.Add(image.Pt(1, 1))
		}
		draw.Draw(img, r, image.NewUniform(s.c), image.Point{}, draw.Src)
	}
}

func fillCircle(img *image.RGBA, cx, cy, r float64, c color.RGBA) {
	for y := int(cy - r); y <= int(cy+r)+1; y++ {
		for x := int(cx - r); x <= int(cx+r)+1; x++ {
			if math.Hypot(float64(x)+0.5-cx, float64(y)+0.5-cy) <= r {
				img.SetRGBA(x, y, c)
			}
		}
	}
}
