package httpapi

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kefu-ai/kefu/analytics"
	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/kb"
)

// The console (/console/) is kefu's web pages for knowledge-base editors and service
// supervisors: server-rendered html/template pages, no script, one stylesheet, charts as
// inline SVG. Its handlers call the engine and the KB as the REST handlers do; the
// console adds no business logic of its own. It is signed into with an editor or admin
// key, exchanged for a server-side session (cookie HttpOnly, SameSite=Strict, Secure
// behind TLS), and every form carries the session's CSRF token.

//go:embed console
var consoleFiles embed.FS

const (
	sessionCookie = "kefu_console"
	langCookie    = "kefu_lang"
)

// session is a signed-in console user.
type session struct {
	id, csrf string
	Name     string
	role     Role
	expires  time.Time
	Local    bool // no keys configured: the loopback operator, signed in as admin
	chats    int  // conversations started in the chat panel
	chatID   string
}

// sessions are the console's sessions, in this process (a node's sessions are its own:
// behind a load balancer, pin the console to one node).
type sessions struct {
	mu sync.Mutex
	m  map[string]*session
}

func (ss *sessions) add(s *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m == nil {
		ss.m = map[string]*session{}
	}
	now := time.Now()
	for id, old := range ss.m { // forget the expired
		if now.After(old.expires) {
			delete(ss.m, id)
		}
	}
	ss.m[s.id] = s
}

func (ss *sessions) get(id string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[id]
	if s == nil || time.Now().After(s.expires) {
		delete(ss.m, id)
		return nil
	}
	return s
}

func (ss *sessions) drop(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// console registers the console's routes.
func (s *Server) console() error {
	funcs := template.FuncMap{
		"pct": func(v *float64) string {
			if v == nil {
				return "—"
			}
			return strconv.FormatFloat(*v*100, 'f', 1, 64) + " %"
		},
		"num": func(v *float64) string {
			if v == nil {
				return "—"
			}
			return strconv.FormatFloat(*v, 'f', 1, 64)
		},
		"conf": func(v any) string {
			switch x := v.(type) {
			case float32:
				return strconv.FormatFloat(float64(x), 'f', 2, 32)
			case float64:
				return strconv.FormatFloat(x, 'f', 2, 64)
			}
			return fmt.Sprint(v)
		},
		"when":       func(t time.Time) string { return t.Local().Format("2006-01-02 15:04") },
		"splitLines": func(s string) []string { return append(strings.Split(s, "\n"), "") },
		"sources":    func() []string { return []string{"dialog", "kb", "clarify", "handoff", "agent"} },
		"period": func(t map[string]string, days string) any { // the period menu's data (layout.html)
			return struct {
				T       map[string]string
				Days    string
				Choices []string
			}{t, days, []string{"1", "7", "30", "90"}}
		},
		"mul100":   func(v float64) float64 { return v * 100 },
		"half":     func(x, w int) int { return x + w/2 },
		"svgWidth": func(arms []armBar) int { return 40 + len(arms)*100 },
	}
	pages := map[string]*template.Template{}
	for _, p := range []string{"signin", "dashboard", "unanswered", "kb", "chat", "error", "edit", "history", "import", "conversations", "conversation", "experiments", "report"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(consoleFiles, "console/layout.html", "console/"+p+".html")
		if err != nil {
			return err
		}
		pages[p] = t
	}
	s.pages = pages
	static, _ := fs.Sub(consoleFiles, "console/static")
	g := s.e.Group("/console", s.consoleHeaders)
	g.GET("/static/*", echo.WrapHandler(http.StripPrefix("/console/static/", http.FileServer(http.FS(static)))))
	g.GET("/signin", s.consoleSignInPage)
	g.POST("/signin", s.consoleSignIn)
	g.POST("/signout", s.consoleSignOut, s.signedIn, s.csrf)
	g.GET("/", s.consoleDashboard, s.signedIn)
	g.GET("/unanswered", s.consoleUnanswered, s.signedIn)
	g.POST("/unanswered/article", s.consoleNewArticle, s.signedIn, s.csrf)
	g.GET("/kb", s.consoleKB, s.signedIn)
	g.GET("/kb/edit", s.consoleEdit, s.signedIn)
	g.POST("/kb/edit", s.consoleSave, s.signedIn, s.csrf)
	g.GET("/kb/history", s.consoleHistory, s.signedIn)
	g.POST("/kb/restore", s.consoleRestore, s.signedIn, s.csrf)
	g.GET("/kb/import", s.consoleImportPage, s.signedIn)
	g.POST("/kb/import", s.consoleImport, s.signedIn, s.csrf)
	g.GET("/kb/export", s.consoleExport, s.signedIn)
	g.GET("/conversations", s.consoleConversations, s.signedIn)
	g.GET("/conversation", s.consoleConversation, s.signedIn)
	g.POST("/deadletters/retry", s.consoleRetry, s.signedIn, s.csrf)
	g.GET("/experiments", s.consoleExperiments, s.signedIn)
	g.POST("/experiments", s.consoleStartExperiment, s.signedIn, s.csrf)
	g.GET("/experiments/report", s.consoleReport, s.signedIn)
	g.POST("/experiments/stop", s.consoleStop, s.signedIn, s.csrf)
	g.POST("/experiments/promote", s.consolePromote, s.signedIn, s.csrf)
	g.GET("/chat", s.consoleChat, s.signedIn)
	g.POST("/chat", s.consoleSay, s.signedIn, s.csrf)
	s.e.GET("/console", func(c echo.Context) error { return c.Redirect(http.StatusFound, "/console/") })
	return nil
}

// consoleHeaders: no script may run, nothing loads from elsewhere, no page frames this.
func (s *Server) consoleHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("Cache-Control", "no-store")
		if lang := c.QueryParam("lang"); lang == "zh" || lang == "en" {
			c.SetCookie(&http.Cookie{Name: langCookie, Value: lang, Path: "/console/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: 365 * 86400})
			c.Set("lang", lang)
		}
		return next(c)
	}
}

// lang is the console's language: ?lang=, the cookie, else the browser's.
func consoleLang(c echo.Context) string {
	if l, ok := c.Get("lang").(string); ok {
		return l
	}
	if ck, err := c.Cookie(langCookie); err == nil && (ck.Value == "zh" || ck.Value == "en") {
		return ck.Value
	}
	for _, part := range strings.Split(c.Request().Header.Get("Accept-Language"), ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.Split(part, ";")[0]))
		if strings.HasPrefix(tag, "zh") {
			return "zh"
		}
		if strings.HasPrefix(tag, "en") {
			return "en"
		}
	}
	return "en"
}

// secure says whether the console is reached over TLS (directly or behind a proxy that
// says so), so that its cookie is marked Secure.
func secure(c echo.Context) bool {
	return c.Request().TLS != nil || c.Request().Header.Get("X-Forwarded-Proto") == "https"
}

// signedIn lets a request through with its session; without one it goes to sign-in. With
// no keys configured (kefu serve allows that on loopback only) the operator is signed in as
// the local admin.
func (s *Server) signedIn(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		var sess *session
		if ck, err := c.Cookie(sessionCookie); err == nil {
			sess = s.sessions.get(ck.Value)
		}
		if sess == nil && len(s.keys.keys) == 0 {
			sess = s.localSession(c)
		}
		if sess == nil {
			return c.Redirect(http.StatusSeeOther, "/console/signin")
		}
		c.Set("session", sess)
		c.Set(ctxActor, "console:"+sess.Name)
		return next(c)
	}
}

// localSession is the one session of the loopback operator (no keys configured), made on
// the first visit and renewed when it expires.
func (s *Server) localSession(c echo.Context) *session {
	s.localMu.Lock()
	defer s.localMu.Unlock()
	if s.local == nil || s.sessions.get(s.local.id) == nil {
		s.local = s.newSession(c, "local admin", RoleAdmin, true)
		return s.local
	}
	setSessionCookie(c, s.local)
	return s.local
}

// setSessionCookie gives the browser sess's cookie.
func setSessionCookie(c echo.Context, sess *session) {
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: sess.id, Path: "/console/", HttpOnly: true, Secure: secure(c),
		SameSite: http.SameSiteStrictMode, Expires: sess.expires})
}

func (s *Server) newSession(c echo.Context, name string, role Role, local bool) *session {
	sess := &session{id: randomToken(), csrf: randomToken(), Name: name, role: role, Local: local, expires: time.Now().Add(s.cfg.SessionTTL)}
	s.sessions.add(sess)
	setSessionCookie(c, sess)
	return sess
}

// csrf refuses a form without the session's token (403).
func (s *Server) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		sess := c.Get("session").(*session)
		if subtle.ConstantTimeCompare([]byte(c.FormValue("csrf")), []byte(sess.csrf)) != 1 {
			return s.consoleError(c, http.StatusForbidden, "csrf")
		}
		return next(c)
	}
}

// page is what every template gets.
type page struct {
	Lang, Other string
	Path        string
	Session     *session
	CSRF        string
	T           map[string]string
	Error       string
	Data        any
}

func (s *Server) render(c echo.Context, status int, name string, data any, errMsg string) error {
	lang := consoleLang(c)
	other := map[string]string{"zh": "en", "en": "zh"}[lang]
	p := page{Lang: lang, Other: other, Path: c.Request().URL.Path, T: consoleText[lang], Error: errMsg, Data: data}
	if sess, ok := c.Get("session").(*session); ok {
		p.Session, p.CSRF = sess, sess.csrf
	}
	var buf bytes.Buffer // whole, or not at all: a template error is a 500, not half a page
	if err := s.pages[name].ExecuteTemplate(&buf, "layout.html", p); err != nil {
		return fmt.Errorf("console page %s: %w", name, err)
	}
	return c.HTMLBlob(status, buf.Bytes())
}

func (s *Server) consoleError(c echo.Context, status int, key string) error {
	return s.render(c, status, "error", nil, consoleText[consoleLang(c)]["err_"+key])
}

func (s *Server) consoleSignInPage(c echo.Context) error {
	if len(s.keys.keys) == 0 {
		return c.Redirect(http.StatusSeeOther, "/console/")
	}
	return s.render(c, http.StatusOK, "signin", nil, "")
}

// consoleSignIn exchanges an editor or admin key for a session; a wrong key counts
// against the source address like the API's (failed-authentication limit).
func (s *Server) consoleSignIn(c echo.Context) error {
	text := consoleText[consoleLang(c)]
	if s.guesses.blocked(sourceIP(c), time.Now()) > 0 {
		return s.render(c, http.StatusTooManyRequests, "signin", nil, text["err_guesses"])
	}
	k := s.keys.lookup(strings.TrimSpace(c.FormValue("key")))
	switch {
	case k == nil:
		s.guesses.failed(sourceIP(c), time.Now())
		return s.render(c, http.StatusUnauthorized, "signin", nil, text["err_badkey"])
	case k.Role != RoleEditor && k.Role != RoleAdmin:
		return s.render(c, http.StatusForbidden, "signin", nil, fmt.Sprintf(text["err_role"], k.Role))
	}
	s.newSession(c, k.Name, k.Role, false)
	return c.Redirect(http.StatusSeeOther, "/console/")
}

func (s *Server) consoleSignOut(c echo.Context) error {
	s.sessions.drop(c.Get("session").(*session).id)
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/console/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	return c.Redirect(http.StatusSeeOther, "/console/signin")
}

// dashboard is the dashboard's data: the summary and a chart of each day.
type dashboard struct {
	Days, Channel, Lang string
	Sum                 *analytics.Summary
	Chart               chart
	Reasons, Queues     []named
	SLA                 []slaRow
}

type named struct {
	Name  string
	Count int64
}

type slaRow struct {
	Priority         string
	Met, Breached    int64
	WaitP50, WaitP95 *float64
}

// chart is a bar chart of conversations and handoffs per day, as SVG coordinates.
type chart struct {
	Bars   []bar
	Max    int64
	Width  int
	Height int
}

type bar struct {
	X, Y, H, HY, HH, W int
	Label              string
	Conversations      int64
	Handoffs           int64
}

func (s *Server) consoleDashboard(c echo.Context) error {
	days := c.QueryParam("days")
	n, err := strconv.Atoi(days)
	if err != nil || n < 1 || n > 90 {
		n, days = 7, "7"
	}
	q := engine.AnalyticsQuery{Channel: c.QueryParam("channel"), Lang: c.QueryParam("filter_lang")}
	if q.Lang != "zh" && q.Lang != "en" {
		q.Lang = ""
	}
	end := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	q.From, q.To = end.Add(-time.Duration(n)*24*time.Hour).Format(time.RFC3339), end.Format(time.RFC3339)
	ctx := c.Request().Context()
	d := dashboard{Days: days, Channel: q.Channel, Lang: q.Lang}
	if d.Sum, err = s.eng.Summary(ctx, q); err != nil {
		return s.fail(c, "dashboard", d, err)
	}
	conv, err1 := s.eng.Series(ctx, engine.SeriesQuery{AnalyticsQuery: q, Metric: "conversations", Bucket: "day"})
	ho, err2 := s.eng.Series(ctx, engine.SeriesQuery{AnalyticsQuery: q, Metric: "handoffs", Bucket: "day"})
	if err := errors.Join(err1, err2); err != nil {
		return s.fail(c, "dashboard", d, err)
	}
	d.Chart = barChart(conv.Points, ho.Points)
	d.Reasons, d.Queues = byCount(d.Sum.HandoffReasons), byCount(d.Sum.HandoffQueues)
	for _, p := range []string{"urgent", "high", "normal"} {
		r := slaRow{Priority: p, Met: d.Sum.SLA[p].Met, Breached: d.Sum.SLA[p].Breached}
		if w, ok := d.Sum.TimeToAgentS[p]; ok {
			r.WaitP50, r.WaitP95 = w.P50, w.P95
		}
		d.SLA = append(d.SLA, r)
	}
	return s.render(c, http.StatusOK, "dashboard", d, "")
}

// byCount lists m's entries, the largest count first, then by name.
func byCount(m map[string]int64) []named {
	out := make([]named, 0, len(m))
	for k, v := range m {
		out = append(out, named{k, v})
	}
	slices.SortFunc(out, func(a, b named) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Name, b.Name)) })
	return out
}

func barChart(conv, ho []analytics.Point) chart {
	ch := chart{Width: 640, Height: 160}
	val := func(p analytics.Point) int64 {
		if p.Value == nil {
			return 0
		}
		return int64(*p.Value)
	}
	for _, p := range conv {
		ch.Max = max(ch.Max, val(p))
	}
	if ch.Max == 0 || len(conv) == 0 {
		return ch
	}
	w := ch.Width / len(conv)
	for i, p := range conv {
		b := bar{X: i*w + 2, W: max(w-4, 1), Label: p.At.Format("01-02"), Conversations: val(p)}
		b.H = int(val(p) * int64(ch.Height-20) / ch.Max)
		b.Y = ch.Height - 20 - b.H
		if i < len(ho) {
			b.Handoffs = val(ho[i])
			b.HH = int(b.Handoffs * int64(ch.Height-20) / ch.Max)
			b.HY = ch.Height - 20 - b.HH
		}
		ch.Bars = append(ch.Bars, b)
	}
	return ch
}

// fail renders page name with data and err beside it, with the status and message the API
// would answer err with (describe).
func (s *Server) fail(c echo.Context, name string, data any, err error) error {
	code, d := s.describe(c, err)
	return s.render(c, code, name, data, d.Message)
}

type unansweredPage struct {
	Days      string
	Result    *analytics.Unanswered
	Suggested map[int]string
	Questions map[int]string // each group's distinct wordings, one per line
	Form      articleForm
}

type articleForm struct {
	Group                 int
	ID, Answer, Questions string
	Publish               bool
}

var slugChars = regexp.MustCompile(`[^a-z0-9]+`)

func (s *Server) consoleUnanswered(c echo.Context) error {
	return s.unanswered(c, articleForm{Group: -1}, nil)
}

// unanswered renders the unanswered page; form and formErr are a refused article form's
// (formErr nil: none).
func (s *Server) unanswered(c echo.Context, form articleForm, formErr error) error {
	days, _ := strconv.Atoi(c.FormValue("days"))
	if days < 1 || days > 90 {
		days = 7
	}
	end := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	q := engine.UnansweredQuery{AnalyticsQuery: engine.AnalyticsQuery{From: end.AddDate(0, 0, -days).Format(time.RFC3339), To: end.Format(time.RFC3339)}, Limit: 50}
	res, err := s.eng.Unanswered(c.Request().Context(), q)
	p := unansweredPage{Days: strconv.Itoa(days), Result: res, Suggested: map[int]string{}, Questions: map[int]string{}, Form: form}
	if err != nil {
		return s.fail(c, "unanswered", p, err)
	}
	for i, g := range res.Questions {
		id := strings.Trim(slugChars.ReplaceAllString(strings.ToLower(g.Text), "-"), "-")
		if len(id) < 3 {
			id = fmt.Sprintf("question-%d", time.Now().Unix()%100000+int64(i))
		}
		p.Suggested[i] = id[:min(len(id), 40)]
		var lines []string
		for _, e := range g.Examples {
			if !slices.Contains(lines, e.Text) {
				lines = append(lines, e.Text)
			}
		}
		p.Questions[i] = strings.Join(lines, "\n")
	}
	if formErr != nil {
		return s.fail(c, "unanswered", p, formErr)
	}
	return s.render(c, http.StatusOK, "unanswered", p, "")
}

// consoleNewArticle makes an article of an unanswered group: its questions, the editor's
// answer, published if asked. The KB validates it as the API does; a refusal is shown
// beside the form and saves nothing.
func (s *Server) consoleNewArticle(c echo.Context) error {
	group, _ := strconv.Atoi(c.FormValue("group"))
	form := articleForm{Group: group, ID: strings.TrimSpace(c.FormValue("id")), Answer: strings.TrimSpace(c.FormValue("answer")),
		Questions: c.FormValue("questions"), Publish: c.FormValue("publish") == "on"}
	lang := c.FormValue("answer_lang")
	if lang != "zh" && lang != "en" {
		lang = consoleLang(c)
	}
	var questions []string
	for _, q := range strings.Split(form.Questions, "\n") {
		if q = strings.TrimSpace(q); q != "" {
			questions = append(questions, q)
		}
	}
	a := kb.Article{ID: form.ID, Lang: lang, Questions: questions, Answers: []kb.Answer{{ID: "v1", Text: map[string]string{lang: form.Answer}}}}
	ctx := c.Request().Context()
	created, err := s.cfg.KB.Create(ctx, a, actor(c))
	if err == nil && form.Publish {
		_, err = s.cfg.KB.Publish(ctx, created.ID, actor(c))
	}
	if err != nil {
		return s.unanswered(c, form, err)
	}
	return c.Redirect(http.StatusSeeOther, "/console/kb?q="+url.QueryEscape(questions[0])+"&created="+url.QueryEscape(created.ID))
}

type kbPage struct {
	Q, Created         string
	Hits               []kb.Hit
	Answer             *kb.Reply
	Articles           []kb.Article
	Total, Page, Pages int
	Status, Tag, Lang  string
	Prev, Next         string // query strings of the neighbouring pages
}

// kbPageSize is how many articles a page of the list shows.
const kbPageSize = 50

func (s *Server) consoleKB(c echo.Context) error {
	p := kbPage{Q: strings.TrimSpace(c.QueryParam("q")), Created: c.QueryParam("created"), Status: c.QueryParam("status"),
		Tag: strings.TrimSpace(c.QueryParam("tag")), Lang: c.QueryParam("article_lang")}
	ctx := c.Request().Context()
	if p.Q != "" {
		hits, err := s.cfg.KB.Search(ctx, p.Q, "", 5)
		if err != nil {
			return s.fail(c, "kb", p, err)
		}
		p.Hits = hits
		if r, err := s.cfg.KB.Find(ctx, kb.Question{Text: p.Q}); err == nil {
			p.Answer = r
		}
	}
	f := kb.Filter{Tag: p.Tag}
	if p.Status == "draft" || p.Status == "published" {
		f.Status = kb.Status(p.Status)
	}
	all := s.cfg.KB.List(f)
	if p.Lang == "zh" || p.Lang == "en" {
		all = slices.DeleteFunc(all, func(a kb.Article) bool {
			return a.Lang != "" && a.Lang != p.Lang || !slices.ContainsFunc(a.Answers, func(v kb.Answer) bool { return v.Text[p.Lang] != "" })
		})
	}
	p.Total = len(all)
	p.Pages = max(1, (p.Total+kbPageSize-1)/kbPageSize)
	p.Page, _ = strconv.Atoi(c.QueryParam("page"))
	p.Page = max(1, min(p.Page, p.Pages))
	p.Articles = all[(p.Page-1)*kbPageSize : min(p.Page*kbPageSize, p.Total)]
	q := url.Values{"status": {p.Status}, "tag": {p.Tag}, "article_lang": {p.Lang}, "q": {p.Q}}
	if p.Page > 1 {
		q.Set("page", strconv.Itoa(p.Page-1))
		p.Prev = q.Encode()
	}
	if p.Page < p.Pages {
		q.Set("page", strconv.Itoa(p.Page+1))
		p.Next = q.Encode()
	}
	return s.render(c, http.StatusOK, "kb", p, "")
}

type chatPage struct {
	Conversation *engine.ConversationView
	Last         *engine.MessageResult
}

func (s *Server) consoleChat(c echo.Context) error {
	sess := c.Get("session").(*session)
	p := chatPage{}
	if sess.chatID != "" {
		if v, err := s.eng.Conversation(c.Request().Context(), sess.chatID); err == nil {
			p.Conversation = v
		}
	}
	return s.render(c, http.StatusOK, "chat", p, "")
}

// consoleSay sends the panel's message to the bot as a customer would, in a conversation
// of the session's own ("new" starts another).
func (s *Server) consoleSay(c echo.Context) error {
	sess := c.Get("session").(*session)
	if sess.chatID == "" || c.FormValue("new") == "1" {
		sess.chats++
		sess.chatID = fmt.Sprintf("console-%s-%d", sess.id[:12], sess.chats)
	}
	if c.FormValue("new") == "1" && strings.TrimSpace(c.FormValue("text")) == "" {
		return c.Redirect(http.StatusSeeOther, "/console/chat")
	}
	lang := c.FormValue("lang_as")
	if lang != "zh" && lang != "en" {
		lang = ""
	}
	res, err := s.eng.Message(c.Request().Context(), sess.chatID, engine.MessageRequest{Text: c.FormValue("text"), Lang: lang, Channel: "console",
		Customer: conversation.Customer{ID: "console:" + sess.Name}})
	p := chatPage{Last: res}
	if v, verr := s.eng.Conversation(c.Request().Context(), sess.chatID); verr == nil {
		p.Conversation = v
	}
	if err != nil {
		return s.fail(c, "chat", p, err)
	}
	return s.render(c, http.StatusOK, "chat", p, "")
}
