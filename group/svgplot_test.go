package group

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
	"testing"
)

// A line chart written as SVG, for the simulation report (docs/sim). It
// draws what it is given, with round ticks; nothing is interpolated.

type plotSeries struct {
	name   string
	xs, ys []float64
	dots   bool // mark each point (few points)
}

type plot struct {
	title, xlabel, ylabel string
	series                []plotSeries
	ymin0                 bool // the y axis starts at 0
}

var plotColours = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"}

// niceStep is a round step (1, 2 or 5 × a power of ten) that cuts span
// into at most about n intervals.
func niceStep(span float64, n int) float64 {
	if span <= 0 || math.IsNaN(span) || math.IsInf(span, 0) {
		return 1
	}
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

func fmtTick(v float64) string {
	if v == 0 {
		return "0"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// svg renders p; a chart without finite points gets empty axes.
func (p plot) svg() []byte {
	const W, H, L, R, T, B = 640.0, 400.0, 70.0, 20.0, 40.0, 60.0
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range p.series {
		for i := range s.xs {
			x, y := s.xs[i], s.ys[i]
			if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
				continue
			}
			xmin, xmax = math.Min(xmin, x), math.Max(xmax, x)
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
		}
	}
	if xmin > xmax {
		xmin, xmax, ymin, ymax = 0, 1, 0, 1
	}
	if p.ymin0 {
		ymin = math.Min(0, ymin)
	}
	if xmax == xmin {
		xmin, xmax = xmin-1, xmax+1
	}
	if ymax == ymin {
		ymin, ymax = ymin-1, ymax+1
	}
	xs, ys := niceStep(xmax-xmin, 6), niceStep(ymax-ymin, 5)
	xmin, xmax = math.Floor(xmin/xs)*xs, math.Ceil(xmax/xs)*xs
	ymin, ymax = math.Floor(ymin/ys)*ys, math.Ceil(ymax/ys)*ys
	px := func(x float64) float64 { return L + (x-xmin)/(xmax-xmin)*(W-L-R) }
	py := func(y float64) float64 { return H - B - (y-ymin)/(ymax-ymin)*(H-B-T) }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="%.0f" height="%.0f" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="15" text-anchor="middle">%s</text>`+"\n", W/2, html.EscapeString(p.title))
	for x := xmin; x <= xmax+xs/2; x += xs {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", px(x), py(ymin), px(x), py(ymax))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", px(x), py(ymin)+16, fmtTick(x))
	}
	for y := ymin; y <= ymax+ys/2; y += ys {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", px(xmin), py(y), px(xmax), py(y))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", px(xmin)-6, py(y)+4, fmtTick(y))
	}
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#444"/>`+"\n", L, T, W-L-R, H-B-T)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%s</text>`+"\n", L+(W-L-R)/2, H-B+38, html.EscapeString(p.xlabel))
	fmt.Fprintf(&b, `<text transform="translate(16 %.0f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", T+(H-B-T)/2, html.EscapeString(p.ylabel))
	for i, s := range p.series {
		col := plotColours[i%len(plotColours)]
		var pts bytes.Buffer
		for j := range s.xs {
			x, y := s.xs[j], s.ys[j]
			if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
				continue
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(x), py(y))
			if s.dots {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", px(x), py(y), col)
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>`+"\n", col, bytes.TrimSpace(pts.Bytes()))
		ly := T + 14 + float64(i)*16
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="3"/>`+"\n", L+10, ly-4, L+28, ly-4, col)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", L+34, ly, html.EscapeString(s.name))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func TestNiceStep(t *testing.T) {
	for _, c := range []struct {
		span float64
		n    int
		want float64
	}{
		{10, 5, 2}, {1, 5, 0.2}, {7, 6, 2}, {100, 4, 50}, {0.03, 6, 0.005}, {0, 5, 1}, {math.NaN(), 5, 1},
	} {
		if got := niceStep(c.span, c.n); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("niceStep(%g, %d) = %g, want %g", c.span, c.n, got, c.want)
		}
	}
}

func TestPlotSVG(t *testing.T) {
	p := plot{title: "a <b>", xlabel: "x", ylabel: "y", series: []plotSeries{
		{name: "one & two", xs: []float64{0, 1, 2}, ys: []float64{0, 10, 5}},
		{name: "nan", xs: []float64{0, math.NaN(), 2}, ys: []float64{1, 2, math.Inf(1)}, dots: true},
	}}
	out := string(p.svg())
	for _, want := range []string{"a &lt;b&gt;", "one &amp; two", `points="70.0,340.0 `} {
		if !strings.Contains(out, want) {
			t.Errorf("SVG lacks %q:\n%s", want, out)
		}
	}
	if got := strings.Count(out, "<polyline"); got != 2 {
		t.Errorf("%d polylines, want 2", got)
	}
	if got := strings.Count(out, "<circle"); got != 1 {
		t.Errorf("%d dots, want 1 (the finite point of the second series)", got)
	}
	// Empty: axes only, no panic.
	if out := string((plot{}).svg()); !strings.HasSuffix(out, "</svg>\n") {
		t.Errorf("empty plot: %s", out)
	}
}
