package eval

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kefu-ai/kefu/internal/testenv"
)

// handReport: the Score example (a: F1 0.8, b: 0.5, c: 2/3) plus two out-of-scope texts.
func handReport() Report {
	preds := []Prediction{
		{Text: "a1", Gold: "a", Label: "a", Confidence: 0.95},
		{Text: "a2", Gold: "a", Label: "a", Confidence: 0.85},
		{Text: "a3 <script>alert(1)</script>", Gold: "a", Label: "b", Confidence: 0.55, File: "d.csv", Line: 4},
		{Text: "b1", Gold: "b", Label: "b", Confidence: 0.75},
		{Text: "b2", Gold: "b", Label: "c", Confidence: 0.45},
		{Text: "c1", Gold: "c", Label: "c", Confidence: 0.65},
		{Text: "o1", Gold: "oos", Label: "a", Confidence: 0.3},
		{Text: "o2", Gold: "oos", Label: "c", Confidence: 0.2},
	}
	r := NewReport(ModelInfo{Name: "m", Version: "1", Dir: "models/m"}, "intent", []string{"d.csv"}, preds, []string{"a", "b", "c"}, Options{OOSLabel: "oos", Threshold: 0.5})
	r.Latency = &Latency{Samples: 8, P50ms: 1.5, P99ms: 3.25, Throughput: 1000}
	return r
}

func TestReportFigures(t *testing.T) {
	r := handReport()
	if r.N != 6 || r.Unknown != 2 || len(r.Misclassified) != 2 || r.Misclassified[0].Text != "a3 <script>alert(1)</script>" {
		t.Fatalf("%+v", r.Scores)
	}
	// The sweep counts the oos texts: at 0.65 the bot answers a1, a2, b1, c1 (all right) of
	// 8; at 0.55 a3 (wrong) too, precision 4/5 < 0.95.
	if !r.Sweep.Reached || r.Sweep.Recommended != 0.65 || r.Sweep.At.Coverage != 0.5 || r.Sweep.At.OOSRecall != 1 {
		t.Errorf("sweep %+v", r.Sweep.At)
	}
	if r.OOS == nil || r.OOS.Recall != 1 || r.OOS.OutOfScope != 2 {
		t.Errorf("oos %+v", r.OOS)
	}
	var md bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| accuracy | 66.67% |", "| macro-F1 | 65.56% |", "| b | 50.00% | 50.00% | 50.00% | 2 | c (1) |", "handoff threshold for 95.00% precision | 0.650"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
}

// TestHTMLReportInBrowser opens the HTML report in headless Chromium: the heatmap, the
// curves and the table are in the DOM, sorting works, nothing is fetched from elsewhere, and
// a screenshot is saved ($KEFU_SCREENSHOT_DIR, else the test's temporary directory).
func TestHTMLReportInBrowser(t *testing.T) {
	r := handReport()
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	raw, _ := os.ReadFile(page)
	if m := regexp.MustCompile(`(?i)(src|href)\s*=|@import|url\(`).Find(raw); m != nil {
		t.Errorf("the page loads something: %s", m)
	}
	if bytes.Contains(raw, []byte("<script>alert(1)")) {
		t.Error("example text not escaped")
	}

	b := testenv.NewBrowser(t)
	b.Open("file://" + page)
	var dom struct {
		Cells, Bars, Rows, Mistakes, Diagonal int
		AB, Title                             string
		Lines                                 []string
		HeatmapWidth                          float64
	}
	b.Eval(`return {
		Cells: document.querySelectorAll("svg#heatmap rect.cell").length,
		AB: document.querySelector('svg#heatmap rect.cell[data-gold="a"][data-predicted="b"]').dataset.count,
		Title: document.querySelector('svg#heatmap rect.cell[data-gold="a"][data-predicted="a"] title').textContent,
		HeatmapWidth: document.querySelector("svg#heatmap").getBoundingClientRect().width,
		Bars: document.querySelectorAll("svg#reliability rect.bar").length,
		Diagonal: document.querySelectorAll("svg#reliability polyline.diagonal").length,
		Lines: Array.from(document.querySelectorAll("svg#threshold polyline")).map(p => p.getAttribute("class")),
		Rows: document.querySelectorAll("#classes tbody tr").length,
		Mistakes: document.querySelectorAll("#misclassified tr").length - 1,
	}`, &dom)
	// Non-zero cells: (a,a) 2, (a,b) 1, (b,b) 1, (b,c) 1, (c,c) 1.
	if dom.Cells != 5 || dom.AB != "1" || dom.Title != "a → a: 2 of 3" || dom.HeatmapWidth < 3*28 { // three 28-px columns at least
		t.Errorf("heatmap: %+v", dom)
	}
	// Known-label confidences 0.95, 0.85, 0.75, 0.65, 0.55, 0.45: six non-empty bins.
	if dom.Bars != 6 || strings.Join(dom.Lines, ",") != "precision,coverage,oos-recall" || dom.Diagonal != 1 || dom.Rows != 3 || dom.Mistakes != 2 {
		t.Errorf("%+v", dom)
	}
	order := func() string {
		var labels []string
		b.Eval(`return Array.from(document.querySelectorAll("#classes tbody tr")).map(r => r.cells[0].textContent)`, &labels)
		return strings.Join(labels, " ")
	}
	b.Click("#classes th:nth-child(4)") // F1: highest first
	if got := order(); got != "a c b" {
		t.Errorf("sorted by F1, descending: %s", got)
	}
	b.Click("#classes th:nth-child(4)")
	if got := order(); got != "b c a" {
		t.Errorf("sorted by F1, ascending: %s", got)
	}
	shots := os.Getenv("KEFU_SCREENSHOT_DIR")
	if shots == "" {
		shots = dir
	}
	b.Screenshot(filepath.Join(shots, "eval-report.png"))
	t.Logf("screenshot: %s", filepath.Join(shots, "eval-report.png"))
}
