package kb

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// The YAML file format (the bot bundle's kb/ folder, kefu kb import|export):
//
//	articles:
//	  - id: refund-time
//	    lang: ""            # optional: zh or en only
//	    status: published   # optional; files default to published
//	    tags: [refund]
//	    questions:
//	      - How long does a refund take?
//	      - 退款多久到账？
//	    answers:
//	      - id: control     # optional; v1, v2… by default
//	        en: Refunds reach your card within 3-5 working days.
//	        zh: 退款会在 3-5 个工作日内退回原支付账户。
//
// The CSV format has a header row and one article per row: id, questions (one per line
// inside the cell, or separated by " | "), and answer columns named answer_<lang> for the
// first variant or answer_<lang>_<variant>; lang, status, tags (separated by "|") optional.

type yamlArticle struct {
	ID        string       `yaml:"id"`
	Lang      string       `yaml:"lang,omitempty"`
	Status    Status       `yaml:"status,omitempty"`
	Tags      []string     `yaml:"tags,omitempty,flow"`
	Questions []string     `yaml:"questions"`
	Answers   []yamlAnswer `yaml:"answers"`
}

type yamlAnswer struct {
	ID string `yaml:"id,omitempty"`
	ZH string `yaml:"zh,omitempty"`
	EN string `yaml:"en,omitempty"`
}

var yamlKeys = []string{"id", "lang", "status", "tags", "questions", "answers"}

// ParseYAML reads articles from the YAML format; name is used in errors, which carry the
// line. Articles without a status are published. Every article is validated; ids must be
// unique within the file.
func ParseYAML(name string, data []byte) ([]Article, error) {
	fail := func(line int, format string, args ...any) error {
		return &ValidationError{File: name, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	if !utf8.Valid(data) {
		return nil, fail(0, "not UTF-8 text")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fail(0, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil, fail(0, "empty file")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode || len(root.Content) != 2 || root.Content[0].Value != "articles" || root.Content[1].Kind != yaml.SequenceNode {
		return nil, fail(root.Line, "want a mapping with one key, articles, holding a list")
	}
	var out []Article
	seen := map[string]int{}
	for _, n := range root.Content[1].Content {
		if n.Kind != yaml.MappingNode {
			return nil, fail(n.Line, "an article must be a mapping")
		}
		for i := 0; i < len(n.Content); i += 2 {
			if k := n.Content[i]; !slices.Contains(yamlKeys, k.Value) {
				return nil, fail(k.Line, "unknown key %q (want one of %s)", k.Value, strings.Join(yamlKeys, ", "))
			}
		}
		var y yamlArticle
		if err := n.Decode(&y); err != nil {
			return nil, fail(n.Line, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		a := Article{ID: y.ID, Lang: y.Lang, Status: y.Status, Tags: y.Tags, Questions: y.Questions}
		if a.Status == "" {
			a.Status = Published
		}
		for _, ya := range y.Answers {
			a.Answers = append(a.Answers, Answer{ID: ya.ID, Text: texts(ya.ZH, ya.EN)})
		}
		if err := a.Validate(); err != nil {
			var ve *ValidationError
			errors.As(err, &ve)
			ve.File, ve.Line = name, n.Line
			return nil, ve
		}
		if first, dup := seen[a.ID]; dup {
			return nil, fail(n.Line, "article %q already defined on line %d", a.ID, first)
		}
		seen[a.ID] = n.Line
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, fail(root.Line, "no articles")
	}
	return out, nil
}

func texts(zh, en string) map[string]string {
	m := map[string]string{}
	if zh != "" {
		m["zh"] = zh
	}
	if en != "" {
		m["en"] = en
	}
	return m
}

// WriteYAML writes articles in the YAML format ParseYAML reads.
func WriteYAML(w io.Writer, articles []Article) error {
	var doc struct {
		Articles []yamlArticle `yaml:"articles"`
	}
	for _, a := range articles {
		y := yamlArticle{ID: a.ID, Lang: a.Lang, Status: a.Status, Tags: a.Tags, Questions: a.Questions}
		for _, ans := range a.Answers {
			y.Answers = append(y.Answers, yamlAnswer{ID: ans.ID, ZH: ans.Text["zh"], EN: ans.Text["en"]})
		}
		doc.Articles = append(doc.Articles, y)
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	return enc.Close()
}

// ParseCSV reads articles from the CSV format; errors carry the file and line.
func ParseCSV(name string, data []byte) ([]Article, error) {
	fail := func(line int, format string, args ...any) error {
		return &ValidationError{File: name, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	if !utf8.Valid(data) {
		return nil, fail(0, "not UTF-8 text")
	}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
	header, err := r.Read()
	if err == io.EOF {
		return nil, fail(0, "empty file")
	}
	if err != nil {
		return nil, csvError(name, err)
	}
	col := map[string]int{}
	type answerCol struct {
		variant, lang string
		i             int
	}
	var answers []answerCol
	for i, h := range header {
		h = strings.TrimSpace(h)
		if _, dup := col[h]; dup {
			return nil, fail(1, "column %q appears twice", h)
		}
		col[h] = i
		switch h {
		case "id", "questions", "lang", "status", "tags":
			continue
		}
		rest, ok := strings.CutPrefix(h, "answer_")
		lang, variant, _ := strings.Cut(rest, "_")
		if !ok || !slices.Contains(Langs, lang) {
			return nil, fail(1, "unknown column %q (want id, questions, lang, status, tags, answer_<zh|en>[_<variant>])", h)
		}
		answers = append(answers, answerCol{variant, lang, i})
	}
	for _, need := range []string{"id", "questions"} {
		if _, ok := col[need]; !ok {
			return nil, fail(1, "no %q column", need)
		}
	}
	if len(answers) == 0 {
		return nil, fail(1, "no answer_zh or answer_en column")
	}
	cell := func(rec []string, name string) string {
		if i, ok := col[name]; ok {
			return unguard(strings.TrimSpace(rec[i]))
		}
		return ""
	}
	var out []Article
	seen := map[string]int{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(name, err)
		}
		line, _ := r.FieldPos(0)
		a := Article{ID: cell(rec, "id"), Lang: cell(rec, "lang"), Status: Status(cell(rec, "status"))}
		if a.Status == "" {
			a.Status = Published
		}
		a.Questions = splitCell(cell(rec, "questions"), "\n", " | ")
		a.Tags = splitCell(cell(rec, "tags"), "|")
		for _, ac := range answers {
			t := unguard(strings.TrimSpace(rec[ac.i]))
			if t == "" {
				continue
			}
			j := slices.IndexFunc(a.Answers, func(x Answer) bool { return x.ID == ac.variant })
			if j < 0 {
				a.Answers = append(a.Answers, Answer{ID: ac.variant, Text: map[string]string{}})
				j = len(a.Answers) - 1
			}
			a.Answers[j].Text[ac.lang] = t
		}
		for i := range a.Answers {
			if a.Answers[i].ID == "" {
				a.Answers[i].ID = "v1"
			}
		}
		if err := a.Validate(); err != nil {
			var ve *ValidationError
			errors.As(err, &ve)
			ve.File, ve.Line = name, line
			return nil, ve
		}
		if first, dup := seen[a.ID]; dup {
			return nil, fail(line, "article %q already defined on line %d", a.ID, first)
		}
		seen[a.ID] = line
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, fail(0, "no articles")
	}
	return out, nil
}

func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &ValidationError{File: name, Line: pe.Line, Msg: pe.Err.Error()}
	}
	return &ValidationError{File: name, Msg: err.Error()}
}

// splitCell splits s on the first separator it contains.
func splitCell(s string, seps ...string) []string {
	if s == "" {
		return nil
	}
	for _, sep := range seps {
		if strings.Contains(s, sep) {
			return trimAll(strings.Split(s, sep))
		}
	}
	return []string{s}
}

// WriteCSV writes articles in the CSV format ParseCSV reads. Variant v1's columns are
// answer_<lang>, the others answer_<lang>_<variant>.
func WriteCSV(w io.Writer, articles []Article) error {
	header := []string{"id", "lang", "status", "tags", "questions"}
	type key struct{ variant, lang string }
	var cols []key
	for _, a := range articles {
		for _, ans := range a.Answers {
			for _, l := range Langs {
				if k := (key{ans.ID, l}); ans.Text[l] != "" && !slices.Contains(cols, k) {
					cols = append(cols, k)
				}
			}
		}
	}
	for _, k := range cols {
		h := "answer_" + k.lang
		if k.variant != "v1" {
			h += "_" + k.variant
		}
		header = append(header, h)
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, a := range articles {
		rec := []string{a.ID, a.Lang, string(a.Status), strings.Join(a.Tags, "|"), strings.Join(a.Questions, "\n")}
		for _, k := range cols {
			t := ""
			if i := slices.IndexFunc(a.Answers, func(x Answer) bool { return x.ID == k.variant }); i >= 0 {
				t = a.Answers[i].Text[k.lang]
			}
			rec = append(rec, t)
		}
		for i := range rec {
			rec[i] = guard(rec[i])
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// guard keeps a spreadsheet from reading a cell as a formula (OWASP, CSV injection): a
// cell beginning with = + - @, a tab or a carriage return gets a leading apostrophe, which
// spreadsheets hide and ParseCSV removes again (unguard).
func guard(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func unguard(s string) string {
	if len(s) > 1 && s[0] == '\'' && strings.ContainsRune("=+-@\t\r", rune(s[1])) {
		return s[1:]
	}
	return s
}
