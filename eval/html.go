package eval

import (
	_ "embed"
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"strings"
)

//go:embed report.html
var reportHTML string

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":    pct,
	"f3":     func(x float64) string { return fmt.Sprintf("%.3f", x) },
	"f4":     func(x float64) string { return fmt.Sprintf("%.4f", x) },
	"ms":     func(x float64) string { return fmt.Sprintf("%.2f", x) },
	"mul100": func(x float64) float64 { return 100 * x },
}).Parse(reportHTML))

// WriteHTML writes one self-contained page (no network needed to view it): the figures,
// the confusion-matrix heatmap, a sortable per-class table, the threshold curve and the
// reliability diagram as inline SVG, and the misclassified examples.
func (r *Report) WriteHTML(w io.Writer) error {
	miss := r.Misclassified[:min(500, len(r.Misclassified))]
	return reportTemplate.Execute(w, map[string]any{
		"R":           r,
		"Heatmap":     template.HTML(heatmapSVG(r)),
		"Threshold":   template.HTML(thresholdSVG(r)),
		"Reliability": template.HTML(reliabilitySVG(r)),
		"Miss":        miss,
		"MoreMiss":    len(r.Misclassified) - len(miss),
	})
}

// heatmapSVG draws the confusion matrix, rows gold and columns predicted, each cell shaded
// by its share of the row: blue on the diagonal (right), red off it (confusions).
func heatmapSVG(r *Report) string {
	n := len(r.Classes)
	if n == 0 {
		return ""
	}
	cell := math.Max(6, math.Min(28, 720/float64(n)))
	font := math.Min(11, cell-1)
	longest := 0
	for _, c := range r.Classes {
		longest = max(longest, min(22, len([]rune(c.Label))))
	}
	margin := math.Max(40, math.Min(150, 16+0.62*font*float64(longest)))
	size := margin + cell*float64(n) + 10
	width := size + margin/2 // the last column labels lean right
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="heatmap" xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="%.1f">`, width, size, width, size, font)
	fmt.Fprintf(&b, `<text x="%.1f" y="12" font-size="12" font-weight="bold">predicted →</text><text x="12" y="%.1f" font-size="12" font-weight="bold" transform="rotate(-90 12 %.1f)">← gold</text>`, margin, margin+60, margin+60)
	for i, c := range r.Classes {
		label := html.EscapeString(shorten(c.Label, 22))
		y := margin + cell*float64(i) + cell/2
		fmt.Fprintf(&b, `<text class="row-label" x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`, margin-4, y, label)
		fmt.Fprintf(&b, `<text class="col-label" x="0" y="0" transform="translate(%.1f %.1f) rotate(-60)" dominant-baseline="middle">%s</text>`, y, margin-4, label)
	}
	// The grid, then a cell only where the count is not zero (a 150-label matrix is mostly
	// empty, and the page stays small).
	end := margin + cell*float64(n)
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#fff" stroke="#ccc"/>`, margin, margin, end-margin, end-margin)
	for i := 1; i < n; i++ {
		v := margin + cell*float64(i)
		fmt.Fprintf(&b, `<path d="M%.1f %.1fV%.1fM%.1f %.1fH%.1f" stroke="#eee" stroke-width="0.5"/>`, v, margin, end, margin, v, end)
	}
	for i, row := range r.Confusion {
		support := r.Classes[i].Support
		for j, count := range row {
			if count == 0 {
				continue
			}
			gold, pred := html.EscapeString(r.Classes[i].Label), html.EscapeString(r.Classes[j].Label)
			fmt.Fprintf(&b, `<rect class="cell" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" data-gold="%s" data-predicted="%s" data-count="%d"><title>%s → %s: %d of %d</title></rect>`,
				margin+cell*float64(j), margin+cell*float64(i), cell, cell, shade(float64(count)/float64(max(1, support)), i == j), gold, pred, count, gold, pred, count, support)
		}
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// shade mixes white with blue (right) or red (wrong) by share; a single confusion stays visible.
func shade(share float64, right bool) string {
	t := 0.15 + 0.85*math.Min(1, share)
	to := [3]float64{31, 78, 156}
	if !right {
		to = [3]float64{200, 40, 40}
	}
	var c [3]int
	for k := range c {
		c[k] = int(math.Round(255 + (to[k]-255)*t))
	}
	return fmt.Sprintf("#%02x%02x%02x", c[0], c[1], c[2])
}

func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// plot is a unit square mapped onto an SVG area with axes.
type plot struct {
	b                  strings.Builder
	left, top, w, h    float64
	width, height      float64
	xLabel, yLabel, id string
}

func newPlot(id, xLabel, yLabel string) *plot {
	p := &plot{id: id, left: 50, top: 15, w: 420, h: 260, xLabel: xLabel, yLabel: yLabel}
	p.width, p.height = p.left+p.w+140, p.top+p.h+45
	fmt.Fprintf(&p.b, `<svg id="%s" xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`, id, p.width, p.height, p.width, p.height)
	for i := 0; i <= 5; i++ {
		v := float64(i) / 5
		x, y := p.x(v), p.y(v)
		fmt.Fprintf(&p.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`, p.left, y, p.left+p.w, y, x, p.top, x, p.top+p.h)
		fmt.Fprintf(&p.b, `<text x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle">%.1f</text><text x="%.1f" y="%.1f" text-anchor="middle">%.1f</text>`, p.left-4, y, v, x, p.top+p.h+14, v)
	}
	fmt.Fprintf(&p.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#888"/>`, p.left, p.top, p.w, p.h)
	fmt.Fprintf(&p.b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, p.left+p.w/2, p.top+p.h+32, xLabel)
	fmt.Fprintf(&p.b, `<text x="12" y="%.1f" text-anchor="middle" transform="rotate(-90 12 %.1f)">%s</text>`, p.top+p.h/2, p.top+p.h/2, yLabel)
	return p
}

func (p *plot) x(v float64) float64 { return p.left + v*p.w }
func (p *plot) y(v float64) float64 { return p.top + (1-v)*p.h }

func (p *plot) line(class, color, dash string, xs, ys []float64) {
	var pts []string
	for i := range xs {
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", p.x(xs[i]), p.y(ys[i])))
	}
	fmt.Fprintf(&p.b, `<polyline class="%s" fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s" points="%s"/>`, class, color, dash, strings.Join(pts, " "))
}

func (p *plot) legend(i int, color, dash, text string) {
	x, y := p.left+p.w+12, p.top+10+18*float64(i)
	fmt.Fprintf(&p.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="%s"/><text x="%.1f" y="%.1f" dominant-baseline="middle">%s</text>`, x, y, x+20, y, color, dash, x+25, y, text)
}

func (p *plot) String() string { return p.b.String() + `</svg>` }

// thresholdSVG draws precision, coverage and out-of-scope recall against the threshold,
// with the recommended threshold marked.
func thresholdSVG(r *Report) string {
	s := r.Sweep
	p := newPlot("threshold", "confidence threshold", "share")
	var t, prec, cov, rec []float64
	for _, pt := range s.Points {
		t, prec, cov, rec = append(t, pt.Threshold), append(prec, pt.Precision), append(cov, pt.Coverage), append(rec, pt.OOSRecall)
	}
	fmt.Fprintf(&p.b, `<line class="target" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" stroke-dasharray="2 3"/>`, p.left, p.y(s.Target), p.left+p.w, p.y(s.Target))
	p.line("precision", "#1f4e9c", "", t, prec)
	p.line("coverage", "#2a9d50", "", t, cov)
	p.legend(0, "#1f4e9c", "", "precision")
	p.legend(1, "#2a9d50", "", "answered by bot")
	if r.OOS != nil {
		p.line("oos-recall", "#e07b00", "6 3", t, rec)
		p.legend(2, "#e07b00", "6 3", "oos handed off")
	}
	x := p.x(s.Recommended)
	fmt.Fprintf(&p.b, `<line class="recommended" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#c82828" stroke-width="1.5" stroke-dasharray="4 3"/><text x="%.1f" y="%.1f" fill="#c82828">%.3f</text>`,
		x, p.top, x, p.top+p.h, x+4, p.top+12, s.Recommended)
	return p.String()
}

// reliabilitySVG draws each bin's accuracy against its confidence range, with the diagonal
// of perfect calibration.
func reliabilitySVG(r *Report) string {
	c := r.Calibration
	p := newPlot("reliability", "confidence", "accuracy")
	for _, b := range c.Bins {
		if b.Count == 0 {
			continue
		}
		x, w := p.x(b.Lo)+1, (b.Hi-b.Lo)*p.w-2
		fmt.Fprintf(&p.b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#1f4e9c" fill-opacity="0.8"><title>(%.2f, %.2f]: %d examples, accuracy %.3f, mean confidence %.3f</title></rect>`,
			x, p.y(b.Accuracy), w, p.y(0)-p.y(b.Accuracy), b.Lo, b.Hi, b.Count, b.Accuracy, b.Confidence)
		fmt.Fprintf(&p.b, `<line class="confidence" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#c82828" stroke-width="2"/>`, x, p.y(b.Confidence), x+w, p.y(b.Confidence))
	}
	p.line("diagonal", "#888", "4 3", []float64{0, 1}, []float64{0, 1})
	p.legend(0, "#1f4e9c", "", "accuracy")
	p.legend(1, "#c82828", "", "mean confidence")
	p.legend(2, "#888", "4 3", "perfect")
	fmt.Fprintf(&p.b, `<text x="%.1f" y="%.1f">ECE %.4f</text>`, p.left+p.w+12, p.top+80, c.ECE)
	return p.String()
}
