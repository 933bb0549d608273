package analytics

import (
	"testing"
)

// TestUnansweredGroupsBySalientTerms: reworded questions about one thing are one group,
// in Chinese and in English; questions about different things are not.
func TestUnansweredGroupsBySalientTerms(t *testing.T) {
	var c clusters
	for _, tc := range []struct {
		lang, text string
		group      int
	}{
		{"zh", "你们有学生折扣吗", 0},
		{"zh", "学生打折吗？", 0},
		{"zh", "学生有没有折扣", 0},
		{"zh", "退款多久到账", 1},
		{"zh", "退货多久到", 2}, // a return is not a refund
		{"en", "do you accept bitcoin?", 3},
		{"en", "Is Bitcoin accepted", 3},
		{"en", "bitcoin accepted?", 3},
		{"en", "do you ship to the moon", 4},
		{"zh", "学生折扣", 0},
	} {
		g := c.group(tc.lang, tc.text)
		g.Count++
		if c.all[tc.group] != g {
			t.Errorf("%q joined group %q; want group %d (%q)", tc.text, firstText(&c, g), tc.group, firstText(&c, c.all[min(tc.group, len(c.all)-1)]))
		}
		if g.Text == "" {
			g.Text = tc.text
		}
	}
	if terms := c.terms(c.all[0]); len(terms) < 3 {
		t.Errorf("the student-discount group's terms: %v", terms)
	}
	if terms := c.terms(c.all[3]); len(terms) != 2 || terms[0] != "accept" || terms[1] != "bitcoin" {
		t.Errorf("the bitcoin group's terms: %v; want [accept bitcoin]", terms)
	}
}

func firstText(c *clusters, g *Question) string { return g.Text }
