package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kefu-ai/kefu/analytics"
	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/handoff"
	"github.com/kefu-ai/kefu/kb"
)

// The supervisor's pages (recent conversations, one conversation with its handoff and
// deliveries) and the editor's experiments (start, report, stop, promote).

type conversationsPage struct {
	Query engine.ConversationsQuery
	List  []analytics.Conversation
	Next  string // the query of the next page
	Dead  []handoff.DeadLetter
}

func (s *Server) consoleConversations(c echo.Context) error {
	q := engine.ConversationsQuery{Source: c.QueryParam("source"), Channel: c.QueryParam("channel"), Lang: c.QueryParam("filter_lang"),
		HandedOff: c.QueryParam("handoff") == "on", Negative: c.QueryParam("negative") == "on", Limit: 50}
	if ms, err := strconv.ParseInt(c.QueryParam("before"), 10, 64); err == nil {
		q.Before = time.UnixMilli(ms)
	}
	p := conversationsPage{Query: q}
	ctx := c.Request().Context()
	list, err := s.eng.Conversations(ctx, q)
	if err != nil {
		return s.fail(c, "conversations", p, err)
	}
	p.List = list
	if len(list) == q.Limit {
		v := c.QueryParams()
		v.Set("before", strconv.FormatInt(list[len(list)-1].Last.UnixMilli(), 10))
		p.Next = v.Encode()
	}
	if p.Dead, err = s.eng.DeadLetters(ctx); err != nil {
		return s.fail(c, "conversations", p, err)
	}
	return s.render(c, http.StatusOK, "conversations", p, "")
}

type conversationPage struct {
	View *engine.ConversationView
	Dead []handoff.DeadLetter // this conversation's deliveries that failed every attempt
}

func (s *Server) consoleConversation(c echo.Context) error {
	id := c.QueryParam("id")
	ctx := c.Request().Context()
	v, err := s.eng.Conversation(ctx, id)
	if err != nil {
		return s.fail(c, "error", nil, err)
	}
	p := conversationPage{View: v}
	dead, err := s.eng.DeadLetters(ctx)
	if err != nil {
		return s.fail(c, "error", nil, err)
	}
	for _, d := range dead {
		if strings.HasPrefix(d.Key, id+":") {
			p.Dead = append(p.Dead, d)
		}
	}
	return s.render(c, http.StatusOK, "conversation", p, "")
}

type experimentsPage struct {
	List []kb.Experiment
	Form experimentForm
}

type experimentForm struct {
	ID, Article, Variants, Weights, Unit, MinEffect string
}

func (s *Server) consoleExperiments(c echo.Context) error {
	return s.render(c, http.StatusOK, "experiments", experimentsPage{List: s.cfg.KB.Experiments(), Form: experimentForm{
		Article: c.QueryParam("article"), Variants: "v1, v2", Weights: "1, 1", Unit: "customer", MinEffect: "0.05"}}, "")
}

// consoleStartExperiment starts an A/B test of an article's answer variants; the KB
// checks it as the API does.
func (s *Server) consoleStartExperiment(c echo.Context) error {
	f := experimentForm{ID: strings.TrimSpace(c.FormValue("id")), Article: strings.TrimSpace(c.FormValue("article")), Variants: c.FormValue("variants"),
		Weights: c.FormValue("weights"), Unit: c.FormValue("unit"), MinEffect: c.FormValue("min_effect")}
	e := kb.Experiment{ID: f.ID, Article: f.Article, Unit: f.Unit}
	weights := strings.Split(f.Weights, ",")
	var bad error
	for i, v := range strings.Split(f.Variants, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		w := 1.0
		if i < len(weights) && strings.TrimSpace(weights[i]) != "" {
			var err error
			if w, err = strconv.ParseFloat(strings.TrimSpace(weights[i]), 64); err != nil {
				bad = fmt.Errorf("weight %q is not a number", weights[i])
			}
		}
		e.Variants = append(e.Variants, kb.Arm{Answer: v, Weight: w})
	}
	if f.MinEffect != "" {
		var err error
		if e.MinEffect, err = strconv.ParseFloat(strings.TrimSpace(f.MinEffect), 64); err != nil {
			bad = fmt.Errorf("the minimum effect %q is not a number", f.MinEffect)
		}
	}
	page := experimentsPage{List: s.cfg.KB.Experiments(), Form: f}
	if bad != nil {
		return s.render(c, http.StatusBadRequest, "experiments", page, bad.Error())
	}
	created, err := s.cfg.KB.CreateExperiment(c.Request().Context(), e, actor(c))
	if err != nil {
		return s.fail(c, "experiments", page, err)
	}
	return c.Redirect(http.StatusSeeOther, "/console/experiments/report?id="+url.QueryEscape(created.ID))
}

// reportPage is an experiment's report with a chart of each arm's resolution rate and its
// 95 % interval.
type reportPage struct {
	Report *kb.Report
	Arms   []armBar
}

type armBar struct {
	Answer        string
	X, Y, H, W    int
	CILow, CIHigh int // the interval's y coordinates
	Rate          float64
}

func (s *Server) consoleReport(c echo.Context) error {
	r, err := s.cfg.KB.Report(c.Request().Context(), c.QueryParam("id"))
	if err != nil {
		return s.fail(c, "error", nil, err)
	}
	p := reportPage{Report: r}
	const height, width = 160, 80
	y := func(rate float64) int { return 10 + int((1-rate)*float64(height-30)) }
	for i, a := range r.Variants {
		b := armBar{Answer: a.Answer, X: 20 + i*(width+20), W: width, Rate: a.ResolutionRate, Y: y(a.ResolutionRate), CILow: y(a.ResolutionCI[0]), CIHigh: y(a.ResolutionCI[1])}
		b.H = height - 20 - b.Y
		p.Arms = append(p.Arms, b)
	}
	return s.render(c, http.StatusOK, "report", p, "")
}

func (s *Server) consoleStop(c echo.Context) error {
	id := c.FormValue("id")
	if _, err := s.cfg.KB.StopExperiment(c.Request().Context(), id, actor(c)); err != nil {
		return s.fail(c, "error", nil, err)
	}
	return c.Redirect(http.StatusSeeOther, "/console/experiments/report?id="+url.QueryEscape(id))
}

func (s *Server) consolePromote(c echo.Context) error {
	id := c.FormValue("id")
	if _, err := s.cfg.KB.Promote(c.Request().Context(), id, c.FormValue("variant"), actor(c)); err != nil {
		return s.fail(c, "error", nil, err)
	}
	return c.Redirect(http.StatusSeeOther, "/console/experiments/report?id="+url.QueryEscape(id))
}

// consoleRetry puts a dead letter back in the outbox (as POST
// /v1/admin/outbox/dead/{key}/retry does) and goes back to where the button was.
func (s *Server) consoleRetry(c echo.Context) error {
	if err := s.eng.RetryDeadLetter(c.Request().Context(), c.FormValue("key")); err != nil {
		return s.fail(c, "error", nil, err)
	}
	back := "/console/conversations"
	if conv := c.FormValue("conversation"); conv != "" {
		back = "/console/conversation?id=" + url.QueryEscape(conv)
	}
	return c.Redirect(http.StatusSeeOther, back)
}
