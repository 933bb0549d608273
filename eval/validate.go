package eval

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/kb"
)

// Severity of a finding: an error makes `kefu validate` exit 1 and `kefu serve` refuse the
// bundle; a warning is reported only.
type Severity string

// Severities.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Finding is one problem in a bot bundle, model, knowledge base, stories or training data.
type Finding struct {
	Severity Severity `json:"severity"`
	File     string   `json:"file"`
	Line     int      `json:"line,omitempty"`
	Msg      string   `json:"message"`
}

func (f Finding) String() string {
	switch {
	case f.File == "":
		return fmt.Sprintf("%s: %s", f.Severity, f.Msg)
	case f.Line > 0:
		return fmt.Sprintf("%s:%d: %s: %s", f.File, f.Line, f.Severity, f.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", f.File, f.Severity, f.Msg)
}

// KBFile is a knowledge-base file as read, for validation with positions.
type KBFile struct {
	Name string
	Data []byte
}

// Bundle is what Validate checks against each other. Every part may be missing; the
// checks that need it are then skipped.
type Bundle struct {
	Bot *dialogs.Bot
	// Labels are the model's labels by head ("intent", "emotion").
	Labels map[string][]string
	// KB files: ids unique across them, each question claimed by one article.
	KB []KBFile
	// Stories are conversation tests; their intents, emotions, flows, states and articles
	// must exist.
	Stories []Story
	// Training examples: no text with two labels of one head; enough examples per label.
	Training []Example
}

// MinExamples is the fewest training examples of a label before Validate warns.
const MinExamples = 5

// Validate checks a bundle's parts against each other, the way `rasa data validate` does,
// and returns the findings in file order.
func Validate(b Bundle) []Finding {
	var out []Finding
	add := func(sev Severity, file string, line int, format string, args ...any) {
		out = append(out, Finding{sev, file, line, fmt.Sprintf(format, args...)})
	}
	has := func(head, label string) bool { return slices.Contains(b.Labels[head], label) }

	if b.Bot != nil && b.Labels != nil {
		for _, r := range b.Bot.LabelRefs() {
			if _, ok := b.Labels[r.Head]; ok && !has(r.Head, r.Label) {
				add(Error, r.File, r.Line, "%s names %s %q, which the model does not have%s", r.Where, r.Head, r.Label, suggest(r.Label, b.Labels[r.Head]))
			}
		}
	}

	articles := map[string]bool{}
	if len(b.KB) > 0 {
		out = append(out, validateKB(b.KB, articles)...)
	}

	for _, st := range b.Stories {
		for _, s := range st.Steps {
			check := func(what, value string, ok bool, known []string) {
				if value != "" && !ok {
					add(Error, st.File, s.Line, "story %q: %s %q does not exist%s", st.Name, what, value, suggest(value, known))
				}
			}
			if b.Labels != nil {
				check("intent", s.Intent, s.Intent == "" || has("intent", s.Intent) || b.Labels["intent"] == nil, b.Labels["intent"])
				check("emotion", s.Emotion, s.Emotion == "" || has("emotion", s.Emotion) || b.Labels["emotion"] == nil, b.Labels["emotion"])
			}
			if b.Bot != nil {
				flows := slices.Sorted(maps.Keys(b.Bot.Flows))
				f := b.Bot.Flows[s.Flow]
				check("flow", s.Flow, s.Flow == "" || f != nil, flows)
				if s.State != "" {
					var states []string
					for _, fl := range b.Bot.Flows {
						if f == nil || fl == f {
							states = append(states, slices.Collect(maps.Keys(fl.States))...)
						}
					}
					check("state", s.State, slices.Contains(states, s.State), states)
				}
			}
			if len(b.KB) > 0 {
				check("article", s.Article, s.Article == "" || articles[s.Article], slices.Sorted(maps.Keys(articles)))
			}
		}
	}

	if len(b.Training) > 0 {
		out = append(out, validateTraining(b.Training)...)
	}
	slices.SortStableFunc(out, func(a, b Finding) int { return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line)) })
	return out
}

// Errors counts the findings of severity error.
func Errors(fs []Finding) int {
	n := 0
	for _, f := range fs {
		if f.Severity == Error {
			n++
		}
	}
	return n
}

// validateKB parses each file, then checks ids and questions across files; ids collects
// every article id.
func validateKB(files []KBFile, ids map[string]bool) []Finding {
	var out []Finding
	type where struct {
		file string
		line int
		id   string
	}
	byID := map[string]where{}
	byQuestion := map[string]where{}
	for _, f := range files {
		var arts []kb.Article
		var err error
		csvFile := strings.HasSuffix(strings.ToLower(f.Name), ".csv")
		if csvFile {
			arts, err = kb.ParseCSV(f.Name, f.Data)
		} else {
			arts, err = kb.ParseYAML(f.Name, f.Data)
		}
		if err != nil {
			if ve := (*kb.ValidationError)(nil); errors.As(err, &ve) {
				out = append(out, Finding{Error, f.Name, ve.Line, strings.TrimSpace(ve.Field + " " + ve.Msg)})
			} else {
				out = append(out, Finding{Error, f.Name, 0, err.Error()})
			}
			continue
		}
		lines := articleLines(f.Data, csvFile)
		for i, a := range arts {
			at := where{f.Name, 0, a.ID}
			if i < len(lines) {
				at.line = lines[i]
			}
			if prev, dup := byID[a.ID]; dup {
				out = append(out, Finding{Error, at.file, at.line, fmt.Sprintf("article id %q is also at %s:%d", a.ID, prev.file, prev.line)})
				continue
			}
			byID[a.ID] = at
			ids[a.ID] = true
			for _, q := range a.Questions {
				key := normalize(q)
				if prev, dup := byQuestion[key]; dup && prev.id != a.ID {
					out = append(out, Finding{Warning, at.file, at.line, fmt.Sprintf("article %q asks %q, which article %q (%s:%d) asks too: search cannot tell them apart", a.ID, q, prev.id, prev.file, prev.line)})
					continue
				}
				byQuestion[key] = at
			}
		}
	}
	return out
}

// articleLines is the line where each article of a KB file starts, in order.
func articleLines(data []byte, csvFile bool) []int {
	var lines []int
	if csvFile {
		r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
		r.FieldsPerRecord = -1
		if _, err := r.Read(); err != nil { // header
			return nil
		}
		for {
			if _, err := r.Read(); err != nil {
				return lines
			}
			line, _ := r.FieldPos(0)
			lines = append(lines, line)
		}
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 || len(doc.Content[0].Content) < 2 {
		return nil
	}
	for _, n := range doc.Content[0].Content[1].Content {
		lines = append(lines, n.Line)
	}
	return lines
}

// validateTraining finds texts labelled twice differently within a head, and labels with
// fewer than MinExamples examples.
func validateTraining(examples []Example) []Finding {
	var out []Finding
	type key struct{ head, text string }
	first := map[key]Example{}
	count := map[[2]string]int{}
	firstOf := map[[2]string]Example{}
	for _, e := range examples {
		k := key{e.Head, normalize(e.Text)}
		if prev, ok := first[k]; ok && prev.Label != e.Label {
			out = append(out, Finding{Error, e.File, e.Line, fmt.Sprintf("%q is labelled %s %s here and %s at %s:%d", e.Text, e.Head, e.Label, prev.Label, prev.File, prev.Line)})
		} else if !ok {
			first[k] = e
		}
		hl := [2]string{e.Head, e.Label}
		if count[hl] == 0 {
			firstOf[hl] = e
		}
		count[hl]++
	}
	for hl, n := range count {
		if n < MinExamples {
			e := firstOf[hl]
			out = append(out, Finding{Warning, e.File, e.Line, fmt.Sprintf("%s %s has %d training example(s); fewer than %d rarely generalise", hl[0], hl[1], n, MinExamples)})
		}
	}
	return out
}

// normalize folds a text for duplicate detection: lower case, punctuation and spacing dropped.
func normalize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// suggest offers the closest known name when one is near (a typo).
func suggest(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur := make([]int, len(rb)+1)
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(rb)]
}
