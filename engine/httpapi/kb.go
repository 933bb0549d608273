package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/kb"
)

func (s *Server) kbList(c echo.Context) error {
	var q listQuery
	if err := bindQuery(c, &q); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, Articles{Articles: orEmpty(s.cfg.KB.List(kb.Filter{Status: kb.Status(q.Status), Tag: q.Tag}))})
}

func (s *Server) kbCreate(c echo.Context) error {
	var a kb.Article
	if err := s.decode(c, &a); err != nil {
		return err
	}
	a, err := s.cfg.KB.Create(c.Request().Context(), a, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, a)
}

func (s *Server) kbGet(c echo.Context) error {
	a, err := s.cfg.KB.Get(c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

// kbUpdate replaces an article. The body's version, when given, must be the current one.
func (s *Server) kbUpdate(c echo.Context) error {
	var a kb.Article
	if err := s.decode(c, &a); err != nil {
		return err
	}
	if a.ID == "" {
		a.ID = c.Param("id")
	}
	if a.ID != c.Param("id") {
		return engine.Errorf(engine.Invalid, "the body's id %q is not the path's %q", a.ID, c.Param("id"))
	}
	a, err := s.cfg.KB.Update(c.Request().Context(), a, actor(c), a.Version)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

func (s *Server) kbDelete(c echo.Context) error {
	var q deleteQuery
	if err := bindQuery(c, &q); err != nil {
		return err
	}
	if err := s.cfg.KB.Delete(c.Request().Context(), c.Param("id"), actor(c), int64(q.Version)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) kbPublish(c echo.Context) error {
	a, err := s.cfg.KB.Publish(c.Request().Context(), c.Param("id"), actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

func (s *Server) kbHistory(c echo.Context) error {
	h, err := s.cfg.KB.History(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, History{Versions: orEmpty(h)})
}

// kbImport reads a YAML or CSV file (?format=, else the Content-Type) and imports every
// article in it, or none.
func (s *Server) kbImport(c echo.Context) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, s.cfg.ImportLimit+1))
	if err != nil {
		return engine.Errorf(engine.Invalid, "reading body: %v", err)
	}
	if int64(len(body)) > s.cfg.ImportLimit {
		return engine.Errorf(engine.TooLarge, "import is over the limit of %d bytes", s.cfg.ImportLimit)
	}
	var q importQuery
	if err := bindQuery(c, &q); err != nil {
		return err
	}
	format := q.Format
	if format == "" {
		ct := c.Request().Header.Get(echo.HeaderContentType)
		switch {
		case strings.Contains(ct, "csv"):
			format = "csv"
		case strings.Contains(ct, "yaml"):
			format = "yaml"
		}
	}
	var articles []kb.Article
	switch format {
	case "yaml":
		articles, err = kb.ParseYAML("body", body)
	case "csv":
		articles, err = kb.ParseCSV("body", body)
	default:
		return engine.Errorf(engine.Invalid, "say the format: ?format=yaml or csv, or Content-Type application/yaml or text/csv")
	}
	if err != nil {
		return err
	}
	res, err := s.cfg.KB.Import(c.Request().Context(), articles, actor(c), false)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) kbExport(c echo.Context) error {
	var q exportQuery
	if err := bindQuery(c, &q); err != nil {
		return err
	}
	articles := s.cfg.KB.List(kb.Filter{})
	var buf bytes.Buffer
	switch q.Format {
	case "yaml":
		if err := kb.WriteYAML(&buf, articles); err != nil {
			return err
		}
		return c.Blob(http.StatusOK, "application/yaml; charset=utf-8", buf.Bytes())
	case "csv":
		if err := kb.WriteCSV(&buf, articles); err != nil {
			return err
		}
		return c.Blob(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
	}
	return engine.Errorf(engine.Invalid, "format must be yaml or csv, got %q", q.Format)
}

func (s *Server) kbAudit(c echo.Context) error {
	var q auditQuery
	if err := bindQuery(c, &q); err != nil {
		return err
	}
	entries, err := s.cfg.KB.Audit(c.Request().Context(), q.Limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, AuditLog{Entries: orEmpty(entries)})
}

func (s *Server) kbSearch(c echo.Context) error {
	var q searchQuery
	if err := bindQuery(c, &q); err != nil {
		return err
	}
	start := time.Now()
	hits, err := s.cfg.KB.Search(c.Request().Context(), q.Q, q.Lang, q.K)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, SearchResult{Hits: orEmpty(hits), TookMS: float64(time.Since(start).Microseconds()) / 1000})
}

func (s *Server) kbExperiments(c echo.Context) error {
	return c.JSON(http.StatusOK, Experiments{Experiments: orEmpty(s.cfg.KB.Experiments())})
}

func (s *Server) kbCreateExperiment(c echo.Context) error {
	var e kb.Experiment
	if err := s.decode(c, &e); err != nil {
		return err
	}
	e, err := s.cfg.KB.CreateExperiment(c.Request().Context(), e, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, e)
}

func (s *Server) kbReport(c echo.Context) error {
	r, err := s.cfg.KB.Report(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (s *Server) kbStop(c echo.Context) error {
	e, err := s.cfg.KB.StopExperiment(c.Request().Context(), c.Param("id"), actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

func (s *Server) kbPromote(c echo.Context) error {
	var req promoteRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	e, err := s.cfg.KB.Promote(c.Request().Context(), c.Param("id"), req.Variant, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

// answerRequest asks the knowledge base on a customer's behalf.
type answerRequest struct {
	Text         string `json:"text" required:"true" minLength:"1"`
	Lang         string `json:"lang,omitempty" enum:"zh,en,auto"`
	Customer     string `json:"customer,omitempty" doc:"assigns the customer to an experiment's variant"`
	Conversation string `json:"conversation,omitempty" doc:"the conversation the answer is for (counts the exposure)"`
}

func (s *Server) kbAnswer(c echo.Context) error {
	var req answerRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	r, err := s.cfg.KB.Answer(c.Request().Context(), kb.Question{Text: req.Text, Lang: req.Lang, Customer: req.Customer, Conversation: req.Conversation})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

type feedbackRequest struct {
	Article      string `json:"article" required:"true"`
	Customer     string `json:"customer,omitempty"`
	Conversation string `json:"conversation" required:"true"`
	CSAT         int    `json:"csat,omitempty" minimum:"0" maximum:"5" doc:"1–5; 0 for none"`
	Thumb        int    `json:"thumb,omitempty" minimum:"-1" maximum:"1" doc:"1 up, -1 down, 0 none"`
	Handoff      bool   `json:"handoff,omitempty" doc:"the conversation went to a person after the answer: not resolved"`
}

func (s *Server) kbFeedback(c echo.Context) error {
	var req feedbackRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	err := s.cfg.KB.Feedback(c.Request().Context(), kb.Feedback(req))
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// promoteRequest names the variant to promote.
type promoteRequest struct {
	Variant string `json:"variant" required:"true" doc:"the answer variant id that becomes the control"`
}

// orEmpty makes a nil list an empty one, so that lists are [] in JSON, never null.
func orEmpty[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
