package httpapi

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/kefu-ai/kefu/analytics"
	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/handoff"
	"github.com/kefu-ai/kefu/kb"
)

// route is one operation of the API: echo serves it and /openapi.json describes it from
// the same entry, with schemas generated from the Go types named here, so the document
// cannot drift from what the handlers decode and encode.
type route struct {
	method, path string // echo's path syntax: /v1/conversations/:id
	id, tag      string // operationId and tag
	summary      string
	role         Role   // "" for open routes
	also         []Role // other roles the route admits (admin admits itself everywhere)
	handler      echo.HandlerFunc

	body     any      // request body (JSON) type's zero value; nil for none
	rawBody  []string // media types of a non-JSON body (KB import)
	query    any      // struct of query parameters (`query:"name"` tags), nil for none
	headers  []header
	status   int      // success status
	resp     any      // success body (JSON) type's zero value; nil for none
	rawResp  []string // media types of a non-JSON success body
	notFound bool     // may answer 404 for the resource named in the path
	conflict bool     // may answer 409
	invalid  bool     // may answer 400 without a body or parameters (a refused reload)
}

// header is a request header an operation reads.
type header struct{ name, doc string }

// routes lists every operation the server answers.
func (s *Server) routes() []route {
	idem := header{"Idempotency-Key", "Identifies the message for retries, like message_id ([A-Za-z0-9._:-]{1,128}); a retry gets the first answer with Idempotent-Replayed: true."}
	token := header{"X-Conversation-Token", "The token the conversation was started with; required with a public key (any other conversation is 404)."}
	public, desk := []Role{RolePublic}, []Role{RolePublic, RoleAgent}
	rs := []route{
		{method: "GET", path: "/healthz", id: "getHealth", tag: "operations", summary: "Liveness: the process answers", handler: s.healthz, status: 200, resp: Health{}},
		{method: "GET", path: "/readyz", id: "getReadiness", tag: "operations", summary: "Readiness: model loaded, bot loaded, state store reachable (503 otherwise)", handler: s.readyz, status: 200, resp: Readiness{}},
		{method: "GET", path: "/metrics", id: "getMetrics", tag: "operations", summary: "Prometheus metrics (text exposition format)", role: RoleAdmin, handler: s.metricsHandler(), status: 200, rawResp: []string{"text/plain"}},
		{method: "GET", path: "/openapi.json", id: "getOpenAPI", tag: "operations", summary: "This document", handler: s.openAPIHandler, status: 200, resp: map[string]any{}},
		{method: "POST", path: "/v1/nlu/parse", id: "parseText", tag: "nlu", summary: "Intent and emotion of a text, with every head's ranking", role: RoleClient, handler: s.parse, body: engine.ParseRequest{}, status: 200, resp: engine.ParseResult{}},

		{method: "POST", path: "/v1/conversations", id: "startConversation", tag: "conversations", summary: "Start a conversation under a new id; a public frontend gets its conversation token here", role: RoleClient, also: public, handler: s.start, body: startRequest{}, status: 201, resp: engine.Started{}, invalid: true},
		{method: "POST", path: "/v1/conversations/:id/messages", id: "sendMessage", tag: "conversations", summary: "Send a customer message; get the bot's answer", role: RoleClient, also: public, handler: s.message, body: engine.MessageRequest{}, headers: []header{idem, token}, status: 200, resp: engine.MessageResult{}, notFound: true, conflict: true},
		{method: "GET", path: "/v1/conversations/:id", id: "getConversation", tag: "conversations", summary: "A conversation's state, slots and recent transcript", role: RoleClient, also: desk, handler: s.conversation, headers: []header{token}, status: 200, resp: engine.ConversationView{}, notFound: true},
		{method: "POST", path: "/v1/conversations/:id/events", id: "sendEvent", tag: "conversations", summary: "CSAT, thumbs, conversation.closed; agent.accepted and agent.released from the agent desk", role: RoleClient, also: desk, handler: s.event, body: engine.Event{}, headers: []header{token}, status: 200, resp: engine.EventResult{}, notFound: true, conflict: true},
		{method: "DELETE", path: "/v1/conversations/:id", id: "deleteConversation", tag: "conversations", summary: "End and erase a conversation", role: RoleClient, also: public, handler: s.deleteConversation, headers: []header{token}, status: 204, notFound: true, conflict: true},
		{method: "GET", path: "/v1/analytics/summary", id: "getAnalyticsSummary", tag: "analytics", summary: "The service's figures over a period: auto-resolution, handoffs, CSAT, response times, SLA", role: RoleEditor, handler: s.analyticsSummary, query: engine.AnalyticsQuery{}, status: 200, resp: analytics.Summary{}},
		{method: "GET", path: "/v1/analytics/timeseries", id: "getAnalyticsSeries", tag: "analytics", summary: "One figure per hour or day", role: RoleEditor, handler: s.analyticsSeries, query: engine.SeriesQuery{}, status: 200, resp: analytics.Series{}},
		{method: "GET", path: "/v1/analytics/unresolved", id: "getUnansweredQuestions", tag: "analytics", summary: "What customers asked that nothing answered, grouped", role: RoleEditor, handler: s.analyticsUnresolved, query: engine.UnansweredQuery{}, status: 200, resp: analytics.Unanswered{}},
		{method: "GET", path: "/v1/analytics/events", id: "exportAnalyticsEvents", tag: "analytics", summary: "Every analytics event of a period, one JSON object per line (for a warehouse)", role: RoleAdmin, handler: s.analyticsEvents, query: engine.AnalyticsQuery{}, status: 200, rawResp: []string{"application/x-ndjson"}},
		{method: "GET", path: "/v1/admin/outbox/dead", id: "listDeadLetters", tag: "admin", summary: "Handoff deliveries that failed every attempt", role: RoleAdmin, handler: s.deadLetters, status: 200, resp: DeadLetters{}},
		{method: "POST", path: "/v1/admin/outbox/dead/:key/retry", id: "retryDeadLetter", tag: "admin", summary: "Put a dead letter back in the outbox, its attempts counted afresh", role: RoleAdmin, handler: s.retryDeadLetter, status: 200, resp: Retried{}, notFound: true},
		{method: "POST", path: "/v1/admin/reload", id: "reloadBot", tag: "admin", summary: "Reload the bot bundle from disk (refused if invalid)", role: RoleAdmin, handler: s.reload, status: 200, resp: Reloaded{}, invalid: true},
	}
	if s.cfg.KB == nil {
		return rs
	}
	return append(rs,
		route{method: "GET", path: "/v1/kb/articles", id: "listArticles", tag: "knowledge-base", summary: "List articles", role: RoleEditor, handler: s.kbList, query: listQuery{}, status: 200, resp: Articles{}},
		route{method: "POST", path: "/v1/kb/articles", id: "createArticle", tag: "knowledge-base", summary: "Create an article", role: RoleEditor, handler: s.kbCreate, body: kb.Article{}, status: 201, resp: kb.Article{}, conflict: true},
		route{method: "GET", path: "/v1/kb/articles/:id", id: "getArticle", tag: "knowledge-base", summary: "Get an article", role: RoleEditor, handler: s.kbGet, status: 200, resp: kb.Article{}, notFound: true},
		route{method: "PUT", path: "/v1/kb/articles/:id", id: "updateArticle", tag: "knowledge-base", summary: "Replace an article; a version in the body must be the current one (409 otherwise)", role: RoleEditor, handler: s.kbUpdate, body: kb.Article{}, status: 200, resp: kb.Article{}, notFound: true, conflict: true},
		route{method: "DELETE", path: "/v1/kb/articles/:id", id: "deleteArticle", tag: "knowledge-base", summary: "Delete an article", role: RoleEditor, handler: s.kbDelete, query: deleteQuery{}, status: 204, notFound: true, conflict: true},
		route{method: "POST", path: "/v1/kb/articles/:id/publish", id: "publishArticle", tag: "knowledge-base", summary: "Publish an article", role: RoleEditor, handler: s.kbPublish, status: 200, resp: kb.Article{}, notFound: true, conflict: true},
		route{method: "GET", path: "/v1/kb/articles/:id/history", id: "getArticleHistory", tag: "knowledge-base", summary: "Every version of an article", role: RoleEditor, handler: s.kbHistory, status: 200, resp: History{}, notFound: true},
		route{method: "POST", path: "/v1/kb/import", id: "importArticles", tag: "knowledge-base", summary: "Import articles from CSV or YAML, all or nothing", role: RoleEditor, handler: s.kbImport, rawBody: []string{"application/yaml", "text/csv"}, query: importQuery{}, status: 200, resp: kb.ImportResult{}, conflict: true},
		route{method: "GET", path: "/v1/kb/export", id: "exportArticles", tag: "knowledge-base", summary: "Export articles as CSV or YAML", role: RoleEditor, handler: s.kbExport, query: exportQuery{}, status: 200, rawResp: []string{"application/yaml", "text/csv"}},
		route{method: "GET", path: "/v1/kb/audit", id: "getAuditLog", tag: "knowledge-base", summary: "The audit log, newest first", role: RoleEditor, handler: s.kbAudit, query: auditQuery{}, status: 200, resp: AuditLog{}},
		route{method: "GET", path: "/v1/kb/search", id: "searchArticles", tag: "knowledge-base", summary: "Search with scores and confidence", role: RoleEditor, handler: s.kbSearch, query: searchQuery{}, status: 200, resp: SearchResult{}},
		route{method: "GET", path: "/v1/kb/experiments", id: "listExperiments", tag: "experiments", summary: "List A/B experiments", role: RoleEditor, handler: s.kbExperiments, status: 200, resp: Experiments{}},
		route{method: "POST", path: "/v1/kb/experiments", id: "createExperiment", tag: "experiments", summary: "Start an A/B experiment on an article's answer variants", role: RoleEditor, handler: s.kbCreateExperiment, body: kb.Experiment{}, status: 201, resp: kb.Experiment{}, notFound: true, conflict: true},
		route{method: "GET", path: "/v1/kb/experiments/:id", id: "getExperimentReport", tag: "experiments", summary: "An experiment's report", role: RoleEditor, handler: s.kbReport, status: 200, resp: kb.Report{}, notFound: true},
		route{method: "POST", path: "/v1/kb/experiments/:id/stop", id: "stopExperiment", tag: "experiments", summary: "Stop an experiment", role: RoleEditor, handler: s.kbStop, status: 200, resp: kb.Experiment{}, notFound: true, conflict: true},
		route{method: "POST", path: "/v1/kb/experiments/:id/promote", id: "promoteVariant", tag: "experiments", summary: "Make a variant the control and stop", role: RoleEditor, handler: s.kbPromote, body: promoteRequest{}, status: 200, resp: kb.Experiment{}, notFound: true, conflict: true},
		route{method: "POST", path: "/v1/kb/answer", id: "answerQuestion", tag: "knowledge-base", summary: "Answer a question from the knowledge base", role: RoleClient, handler: s.kbAnswer, body: answerRequest{}, status: 200, resp: kb.Reply{}},
		route{method: "POST", path: "/v1/kb/feedback", id: "sendFeedback", tag: "experiments", summary: "Report an answer's outcome", role: RoleClient, handler: s.kbFeedback, body: feedbackRequest{}, status: 204, notFound: true},
	)
}

// register adds the routes to echo, each behind its role.
func (s *Server) register(rs []route) {
	for _, r := range rs {
		var mw []echo.MiddlewareFunc
		if r.role != "" && !(r.path == "/metrics" && s.cfg.OpenMetrics) {
			mw = append(mw, s.require(append([]Role{r.role}, r.also...)...))
		}
		s.e.Add(r.method, r.path, r.handler, mw...)
	}
}

// Response bodies of the routes that answer with a list or a small object.
type (
	// Health answers /healthz.
	Health struct {
		Status string `json:"status" enum:"ok" required:"true"`
	}
	// Readiness answers /readyz when ready.
	Readiness struct {
		Status string           `json:"status" enum:"ready" required:"true"`
		Model  engine.ModelInfo `json:"model" required:"true"`
	}
	// DeadLetters lists the deliveries that failed every attempt.
	DeadLetters struct {
		DeadLetters []handoff.DeadLetter `json:"dead_letters" required:"true"`
		Count       int                  `json:"count" required:"true"`
	}
	// Retried names the dead letter put back in the outbox.
	Retried struct {
		Retried string `json:"retried" required:"true"`
	}
	// Reloaded says where the reloaded bot came from.
	Reloaded struct {
		Reloaded string `json:"reloaded" required:"true"`
	}
	// Articles is an article list.
	Articles struct {
		Articles []kb.Article `json:"articles" required:"true"`
	}
	// History is every version of an article, oldest first.
	History struct {
		Versions []kb.Article `json:"versions" required:"true"`
	}
	// AuditLog is the newest audit entries.
	AuditLog struct {
		Entries []kb.AuditEntry `json:"entries" required:"true"`
	}
	// SearchResult is a search's hits, best first.
	SearchResult struct {
		Hits   []kb.Hit `json:"hits" required:"true"`
		TookMS float64  `json:"took_ms" required:"true"`
	}
	// Experiments lists the A/B experiments.
	Experiments struct {
		Experiments []kb.Experiment `json:"experiments" required:"true"`
	}
)

// Query parameters, bound by bindQuery with the limits their tags state (the same tags
// /openapi.json publishes).
type (
	listQuery struct {
		Status string `query:"status" enum:"draft,published" doc:"only articles with this status"`
		Tag    string `query:"tag" doc:"only articles with this tag"`
	}
	deleteQuery struct {
		Version int `query:"version" minimum:"0" doc:"the version being deleted; 409 if it is not the current one (0: any)"`
	}
	importQuery struct {
		Format string `query:"format" enum:"yaml,csv" doc:"the file's format; default from the Content-Type"`
	}
	exportQuery struct {
		Format string `query:"format" enum:"yaml,csv" default:"yaml"`
	}
	auditQuery struct {
		Limit int `query:"limit" minimum:"1" maximum:"10000" default:"100"`
	}
	searchQuery struct {
		Q    string `query:"q" required:"true" doc:"the question"`
		Lang string `query:"lang" enum:"zh,en,auto" doc:"the question's language; default: detected"`
		K    int    `query:"k" minimum:"1" maximum:"100" default:"10" doc:"how many hits"`
	}
)

// bindQuery fills q (a pointer to one of the query structs) from the request, applying
// defaults and refusing values outside the tags' enum or range.
// queryFields are the query parameters of a query struct: its fields with a query tag,
// those of embedded structs included.
func queryFields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for _, f := range reflect.VisibleFields(t) {
		if !f.Anonymous && f.Tag.Get("query") != "" {
			out = append(out, f)
		}
	}
	return out
}

func bindQuery(c echo.Context, q any) error {
	v := reflect.ValueOf(q).Elem()
	for _, f := range queryFields(v.Type()) {
		field := v.FieldByIndex(f.Index)
		name := f.Tag.Get("query")
		raw := c.QueryParam(name)
		if raw == "" {
			raw = f.Tag.Get("default")
		}
		if raw == "" {
			if f.Tag.Get("required") == "true" {
				return engine.Errorf(engine.Invalid, "query parameter %s is needed", name)
			}
			continue
		}
		if enum := f.Tag.Get("enum"); enum != "" && !slices.Contains(strings.Split(enum, ","), raw) {
			return engine.Errorf(engine.Invalid, "%s must be one of %s, got %q", name, strings.ReplaceAll(enum, ",", ", "), raw)
		}
		switch f.Type.Kind() {
		case reflect.String:
			field.SetString(raw)
		case reflect.Int:
			lo, hi := int64(0), int64(1<<62)
			if t := f.Tag.Get("minimum"); t != "" {
				lo, _ = strconv.ParseInt(t, 10, 64)
			}
			if t := f.Tag.Get("maximum"); t != "" {
				hi, _ = strconv.ParseInt(t, 10, 64)
			}
			n, err := strconv.ParseInt(raw, 10, 64)
			if err != nil || n < lo || n > hi {
				return engine.Errorf(engine.Invalid, "%s must be an integer from %d to %d, got %q", name, lo, hi, raw)
			}
			field.SetInt(n)
		default:
			panic(fmt.Sprintf("bindQuery: %s has an unsupported kind", f.Name))
		}
	}
	return nil
}
