package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/kb"
)

// kbRoutes serves the knowledge base: editing (editor role) and answering (client role).
func (s *Server) kbRoutes() {
	ed := s.e.Group("/v1/kb", s.require(RoleEditor))
	ed.GET("/articles", s.kbList)
	ed.POST("/articles", s.kbCreate)
	ed.GET("/articles/:id", s.kbGet)
	ed.PUT("/articles/:id", s.kbUpdate)
	ed.DELETE("/articles/:id", s.kbDelete)
	ed.POST("/articles/:id/publish", s.kbPublish)
	ed.GET("/articles/:id/history", s.kbHistory)
	ed.POST("/import", s.kbImport)
	ed.GET("/export", s.kbExport)
	ed.GET("/audit", s.kbAudit)
	ed.GET("/search", s.kbSearch)
	ed.GET("/experiments", s.kbExperiments)
	ed.POST("/experiments", s.kbCreateExperiment)
	ed.GET("/experiments/:id", s.kbReport)
	ed.POST("/experiments/:id/stop", s.kbStop)
	ed.POST("/experiments/:id/promote", s.kbPromote)

	cl := s.e.Group("/v1/kb", s.require(RoleClient))
	cl.POST("/answer", s.kbAnswer)
	cl.POST("/feedback", s.kbFeedback)
}

func (s *Server) kbList(c echo.Context) error {
	f := kb.Filter{Status: kb.Status(c.QueryParam("status")), Tag: c.QueryParam("tag")}
	if f.Status != "" && f.Status != kb.Draft && f.Status != kb.Published {
		return engine.Errorf(engine.Invalid, "status must be draft or published, got %q", f.Status)
	}
	return c.JSON(http.StatusOK, map[string]any{"articles": s.cfg.KB.List(f)})
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
	version, err := intParam(c, "version", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	if err := s.cfg.KB.Delete(c.Request().Context(), c.Param("id"), actor(c), int64(version)); err != nil {
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
	return c.JSON(http.StatusOK, map[string]any{"versions": h})
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
	format := c.QueryParam("format")
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
	articles := s.cfg.KB.List(kb.Filter{})
	var buf bytes.Buffer
	switch c.QueryParam("format") {
	case "", "yaml":
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
	return engine.Errorf(engine.Invalid, "format must be yaml or csv, got %q", c.QueryParam("format"))
}

func (s *Server) kbAudit(c echo.Context) error {
	limit, err := intParam(c, "limit", 100, 1, 10000)
	if err != nil {
		return err
	}
	entries, err := s.cfg.KB.Audit(c.Request().Context(), limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"entries": entries})
}

func (s *Server) kbSearch(c echo.Context) error {
	k, err := intParam(c, "k", 10, 1, 100)
	if err != nil {
		return err
	}
	start := time.Now()
	hits, err := s.cfg.KB.Search(c.Request().Context(), c.QueryParam("q"), c.QueryParam("lang"), k)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"hits": hits, "took_ms": float64(time.Since(start).Microseconds()) / 1000})
}

func (s *Server) kbExperiments(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"experiments": s.cfg.KB.Experiments()})
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
	var req struct {
		Variant string `json:"variant"`
	}
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
	Text         string `json:"text"`
	Lang         string `json:"lang"`
	Customer     string `json:"customer"`
	Conversation string `json:"conversation"`
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
	Article      string `json:"article"`
	Customer     string `json:"customer"`
	Conversation string `json:"conversation"`
	CSAT         int    `json:"csat"`
	Thumb        int    `json:"thumb"`
	Handoff      bool   `json:"handoff"`
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

// intParam reads an integer query parameter within [lo, hi], or def when absent.
func intParam(c echo.Context, name string, def, lo, hi int) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, engine.Errorf(engine.Invalid, "%s must be an integer from %d to %d, got %q", name, lo, hi, v)
	}
	return n, nil
}
