package kb

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
)

// TestCSVExportNeutralisesFormulas: a cell a spreadsheet would run as a formula is written
// with a leading apostrophe, and importing the file gives the original text back.
func TestCSVExportNeutralisesFormulas(t *testing.T) {
	a := Article{ID: "evil", Status: Published, Tags: []string{"-1"},
		Questions: []string{`=HYPERLINK("http://evil.example","click")`},
		Answers:   []Answer{{ID: "v1", Text: map[string]string{"en": "@SUM(1+1)", "zh": "+86 电话"}}}}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, []Article{a}); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, cell := range rows[1] {
		if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
			t.Errorf("cell %q would be read as a formula", cell)
		}
	}
	back, err := ParseCSV("export.csv", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	b := back[0]
	if b.Questions[0] != a.Questions[0] || b.Answers[0].Text["en"] != "@SUM(1+1)" || b.Answers[0].Text["zh"] != "+86 电话" || b.Tags[0] != "-1" {
		t.Errorf("round trip: %+v", b)
	}
}
