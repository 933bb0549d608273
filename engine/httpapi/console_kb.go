package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/kb"
)

// The console's knowledge-base pages: the list with filters and "try it" (consoleKB), the
// editor (new and existing articles; a lost race shows the other version), the history
// with a side-by-side diff and restore, import with the file's errors by line, export.

// variantRows is how many answer variants the editor shows at least (an article with more
// shows them all, and a save keeps them all).
const variantRows = 3

// editForm is the editor's fields, as typed.
type editForm struct {
	New              bool
	ID, Lang, Status string
	Tags, Questions  string
	Version          int64
	Variants         []variantField
	Theirs           *kb.Article // the version that won a race, shown beside the form
}

type variantField struct{ ID, ZH, EN string }

func formOf(a kb.Article) editForm {
	f := editForm{ID: a.ID, Lang: a.Lang, Status: string(a.Status), Tags: strings.Join(a.Tags, ", "),
		Questions: strings.Join(a.Questions, "\n"), Version: a.Version}
	for _, v := range a.Answers {
		f.Variants = append(f.Variants, variantField{ID: v.ID, ZH: v.Text["zh"], EN: v.Text["en"]})
	}
	for len(f.Variants) < variantRows {
		f.Variants = append(f.Variants, variantField{})
	}
	return f
}

// article is the form as the article it describes (empty variant rows left out).
func (f editForm) article() kb.Article {
	a := kb.Article{ID: strings.TrimSpace(f.ID), Lang: f.Lang, Status: kb.Status(f.Status), Version: f.Version}
	for _, q := range strings.Split(f.Questions, "\n") {
		if q = strings.TrimSpace(q); q != "" {
			a.Questions = append(a.Questions, q)
		}
	}
	for _, t := range strings.Split(f.Tags, ",") {
		if t = strings.TrimSpace(t); t != "" {
			a.Tags = append(a.Tags, t)
		}
	}
	for _, v := range f.Variants {
		text := map[string]string{}
		if s := strings.TrimSpace(v.ZH); s != "" {
			text["zh"] = s
		}
		if s := strings.TrimSpace(v.EN); s != "" {
			text["en"] = s
		}
		if v.ID == "" && len(text) == 0 {
			continue
		}
		a.Answers = append(a.Answers, kb.Answer{ID: strings.TrimSpace(v.ID), Text: text})
	}
	return a
}

func readForm(c echo.Context) editForm {
	f := editForm{New: c.FormValue("new") == "1", ID: c.FormValue("id"), Lang: c.FormValue("lang_of"), Status: c.FormValue("status"),
		Tags: c.FormValue("tags"), Questions: c.FormValue("questions")}
	f.Version, _ = strconv.ParseInt(c.FormValue("version"), 10, 64)
	n, err := strconv.Atoi(c.FormValue("variant_count")) // every variant the form showed
	if err != nil || n < variantRows || n > 50 {
		n = variantRows
	}
	for i := range n {
		n := strconv.Itoa(i)
		f.Variants = append(f.Variants, variantField{ID: c.FormValue("variant" + n), ZH: c.FormValue("zh" + n), EN: c.FormValue("en" + n)})
	}
	return f
}

func (s *Server) consoleEdit(c echo.Context) error {
	id := c.QueryParam("id")
	if id == "" {
		f := formOf(kb.Article{Status: kb.Draft, Answers: []kb.Answer{{ID: "v1"}}})
		f.New = true
		return s.render(c, http.StatusOK, "edit", f, "")
	}
	a, err := s.cfg.KB.Get(id)
	if err != nil {
		return s.fail(c, "error", nil, err)
	}
	return s.render(c, http.StatusOK, "edit", formOf(a), "")
}

// consoleSave creates or updates the article. An update names the version it replaces:
// when another editor saved meanwhile, the page shows their version beside this one and
// nothing is overwritten.
func (s *Server) consoleSave(c echo.Context) error {
	f := readForm(c)
	a := f.article()
	ctx := c.Request().Context()
	var saved kb.Article
	var err error
	if f.New {
		if a.Status == "" {
			a.Status = kb.Draft
		}
		saved, err = s.cfg.KB.Create(ctx, a, actor(c))
	} else {
		saved, err = s.cfg.KB.Update(ctx, a, actor(c), f.Version)
	}
	if errors.Is(err, kb.ErrConflict) && !f.New {
		if theirs, gerr := s.cfg.KB.Get(a.ID); gerr == nil {
			f.Theirs = &theirs
		}
	}
	if err != nil {
		return s.fail(c, "edit", f, err)
	}
	return c.Redirect(http.StatusSeeOther, "/console/kb/edit?id="+url.QueryEscape(saved.ID)+"&saved="+strconv.FormatInt(saved.Version, 10))
}

// historyPage is an article's versions and the diff of two of them.
type historyPage struct {
	ID       string
	Versions []kb.Article
	A, B     *kb.Article
	Diff     []diffRow
	Current  int64
}

type diffRow struct {
	Field       string
	Left, Right string
	Changed     bool
}

func (s *Server) consoleHistory(c echo.Context) error {
	id := c.QueryParam("id")
	versions, err := s.cfg.KB.History(c.Request().Context(), id)
	if err == nil && len(versions) == 0 {
		err = fmt.Errorf("no article %q: %w", id, kb.ErrNotFound)
	}
	if err != nil {
		return s.fail(c, "error", nil, err)
	}
	p := historyPage{ID: id, Versions: versions, Current: versions[len(versions)-1].Version}
	pick := func(name string, def int) *kb.Article {
		v, err := strconv.ParseInt(c.QueryParam(name), 10, 64)
		for i := range versions {
			if err == nil && versions[i].Version == v {
				return &versions[i]
			}
		}
		return &versions[max(0, min(def, len(versions)-1))]
	}
	p.A, p.B = pick("a", len(versions)-2), pick("b", len(versions)-1)
	p.Diff = diff(*p.A, *p.B)
	return s.render(c, http.StatusOK, "history", p, "")
}

// diff lines two versions up field by field.
func diff(a, b kb.Article) []diffRow {
	row := func(field, l, r string) diffRow { return diffRow{Field: field, Left: l, Right: r, Changed: l != r} }
	rows := []diffRow{
		row("status", string(a.Status), string(b.Status)),
		row("lang", a.Lang, b.Lang),
		row("tags", strings.Join(a.Tags, ", "), strings.Join(b.Tags, ", ")),
		row("questions", strings.Join(a.Questions, "\n"), strings.Join(b.Questions, "\n")),
	}
	ids := []string{}
	for _, v := range append(slices.Clone(a.Answers), b.Answers...) {
		if !slices.Contains(ids, v.ID) {
			ids = append(ids, v.ID)
		}
	}
	text := func(art kb.Article, id, lang string) string {
		for _, v := range art.Answers {
			if v.ID == id {
				return v.Text[lang]
			}
		}
		return ""
	}
	for _, id := range ids {
		for _, lang := range []string{"zh", "en"} {
			if l, r := text(a, id, lang), text(b, id, lang); l != "" || r != "" {
				rows = append(rows, row(id+" ("+lang+")", l, r))
			}
		}
	}
	return rows
}

// consoleRestore makes an old version the current one again (a new version with its
// content), if the article has not changed since the page was shown.
func (s *Server) consoleRestore(c echo.Context) error {
	id := c.FormValue("id")
	v, _ := strconv.ParseInt(c.FormValue("restore"), 10, 64)
	current, _ := strconv.ParseInt(c.FormValue("current"), 10, 64)
	ctx := c.Request().Context()
	versions, err := s.cfg.KB.History(ctx, id)
	if err != nil {
		return s.fail(c, "error", nil, err)
	}
	i := slices.IndexFunc(versions, func(a kb.Article) bool { return a.Version == v && !a.Deleted })
	if i < 0 {
		return s.fail(c, "error", nil, engine.Errorf(engine.NotFound, "article %s has no version %d to restore", id, v))
	}
	old := versions[i]
	old.Version = 0
	if _, err := s.cfg.KB.Update(ctx, old, actor(c), current); err != nil {
		return s.fail(c, "error", nil, err)
	}
	return c.Redirect(http.StatusSeeOther, "/console/kb/history?id="+url.QueryEscape(id))
}

// importPage is the outcome of an import: what it did, or the file's errors.
type importPage struct {
	Result *kb.ImportResult
}

// consoleImport imports a YAML or CSV file whole or not at all; a bad file's errors are
// shown with their lines and nothing changes.
func (s *Server) consoleImport(c echo.Context) error {
	fh, err := c.FormFile("file")
	if err != nil {
		return s.render(c, http.StatusBadRequest, "import", importPage{}, consoleText[consoleLang(c)]["err_nofile"])
	}
	if fh.Size > s.cfg.ImportLimit {
		return s.render(c, http.StatusRequestEntityTooLarge, "import", importPage{}, fmt.Sprintf("the file is over the limit of %d bytes", s.cfg.ImportLimit))
	}
	f, err := fh.Open()
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	var articles []kb.Article
	if strings.HasSuffix(strings.ToLower(fh.Filename), ".csv") {
		articles, err = kb.ParseCSV(fh.Filename, data)
	} else {
		articles, err = kb.ParseYAML(fh.Filename, data)
	}
	if err == nil {
		var res kb.ImportResult
		if res, err = s.cfg.KB.Import(c.Request().Context(), articles, actor(c), false); err == nil {
			return s.render(c, http.StatusOK, "import", importPage{Result: &res}, "")
		}
	}
	return s.fail(c, "import", importPage{}, err)
}

func (s *Server) consoleImportPage(c echo.Context) error {
	return s.render(c, http.StatusOK, "import", importPage{}, "")
}

func (s *Server) consoleExport(c echo.Context) error {
	var buf bytes.Buffer
	articles := s.cfg.KB.List(kb.Filter{})
	if c.QueryParam("format") == "csv" {
		if err := kb.WriteCSV(&buf, articles); err != nil {
			return err
		}
		c.Response().Header().Set("Content-Disposition", `attachment; filename="kb.csv"`)
		return c.Blob(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
	}
	if err := kb.WriteYAML(&buf, articles); err != nil {
		return err
	}
	c.Response().Header().Set("Content-Disposition", `attachment; filename="kb.yaml"`)
	return c.Blob(http.StatusOK, "application/yaml; charset=utf-8", buf.Bytes())
}
