package httpapi

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"
)

// op documents one route for /openapi.json. A test checks that the document and the
// routes echo serves are the same set.
type op struct {
	method, path, summary string
	role                  Role   // "" for open routes
	request, response     string // component schema names ("" for none / a plain object)
	params                []string
}

var ops = []op{
	{"GET", "/healthz", "Liveness", "", "", "", nil},
	{"GET", "/readyz", "Readiness: model loaded, bot loaded, state store reachable (503 otherwise)", "", "", "", nil},
	{"GET", "/metrics", "Prometheus metrics", RoleAdmin, "", "", nil},
	{"GET", "/openapi.json", "This document", "", "", "", nil},
	{"POST", "/v1/nlu/parse", "Intent and emotion of a text", RoleClient, "ParseRequest", "", nil},
	{"POST", "/v1/conversations/{id}/messages", "Send a customer message; get the bot's answer", RoleClient, "MessageRequest", "MessageResult", nil},
	{"GET", "/v1/conversations/{id}", "A conversation's state, slots and recent transcript", RoleClient, "", "", nil},
	{"POST", "/v1/conversations/{id}/events", "CSAT, thumbs, agent.released or conversation.closed", RoleClient, "Event", "", nil},
	{"DELETE", "/v1/conversations/{id}", "End and erase a conversation", RoleClient, "", "", nil},
	{"GET", "/v1/admin/outbox/dead", "Handoff deliveries that failed every attempt", RoleAdmin, "", "", nil},
	{"POST", "/v1/admin/reload", "Reload the bot bundle from disk (refused if invalid)", RoleAdmin, "", "", nil},
	{"GET", "/v1/kb/articles", "List articles", RoleEditor, "", "", []string{"status", "tag", "q"}},
	{"POST", "/v1/kb/articles", "Create an article", RoleEditor, "Article", "", nil},
	{"GET", "/v1/kb/articles/{id}", "Get an article", RoleEditor, "", "", nil},
	{"PUT", "/v1/kb/articles/{id}", "Update an article (If-Match: version)", RoleEditor, "Article", "", nil},
	{"DELETE", "/v1/kb/articles/{id}", "Delete an article", RoleEditor, "", "", nil},
	{"POST", "/v1/kb/articles/{id}/publish", "Publish an article", RoleEditor, "", "", nil},
	{"GET", "/v1/kb/articles/{id}/history", "Every version of an article", RoleEditor, "", "", nil},
	{"POST", "/v1/kb/import", "Import articles from CSV or YAML, all or nothing", RoleEditor, "", "", nil},
	{"GET", "/v1/kb/export", "Export articles as CSV or YAML", RoleEditor, "", "", []string{"format"}},
	{"GET", "/v1/kb/audit", "The audit log", RoleEditor, "", "", []string{"limit"}},
	{"GET", "/v1/kb/search", "Search with scores and confidence", RoleEditor, "", "", []string{"q", "lang", "k"}},
	{"GET", "/v1/kb/experiments", "List A/B experiments", RoleEditor, "", "", nil},
	{"POST", "/v1/kb/experiments", "Start an A/B experiment on an article's answer variants", RoleEditor, "", "", nil},
	{"GET", "/v1/kb/experiments/{id}", "An experiment's report", RoleEditor, "", "", nil},
	{"POST", "/v1/kb/experiments/{id}/stop", "Stop an experiment", RoleEditor, "", "", nil},
	{"POST", "/v1/kb/experiments/{id}/promote", "Make a variant the control and stop", RoleEditor, "", "", nil},
	{"POST", "/v1/kb/answer", "Answer a question from the knowledge base", RoleClient, "", "", nil},
	{"POST", "/v1/kb/feedback", "Report an answer's outcome", RoleClient, "", "", nil},
}

var schemas = map[string]any{
	"Error": obj(map[string]any{"error": obj(map[string]any{
		"code":    map[string]any{"type": "string", "enum": []string{"invalid", "unauthorized", "forbidden", "not_found", "conflict", "too_large", "rate_limited", "overloaded", "unavailable", "canceled", "internal"}},
		"message": str(), "request_id": str()}, "code", "message")}, "error"),
	"ParseRequest": obj(map[string]any{"text": str(), "lang": enum("zh", "en", "auto"), "top_k": integer()}, "text"),
	"Customer":     obj(map[string]any{"id": str(), "tier": str(), "tags": arr(str())}),
	"MessageRequest": obj(map[string]any{"text": map[string]any{"type": "string", "minLength": 1, "maxLength": 4000},
		"lang": enum("zh", "en", "auto"), "channel": str(), "customer": ref("Customer"),
		"metadata":   map[string]any{"type": "object", "additionalProperties": str()},
		"message_id": map[string]any{"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"}}, "text"),
	"MessageResult": obj(map[string]any{
		"conversation": str(), "message_id": str(), "replayed": map[string]any{"type": "boolean"}, "turn": integer(), "lang": str(), "took_ms": num(),
		"messages": arr(obj(map[string]any{"text": str()}, "text")),
		"intent":   obj(map[string]any{"name": str(), "confidence": num()}),
		"emotion":  obj(map[string]any{"label": str(), "score": num()}),
		"flow":     str(), "state": str(),
		"slots":   map[string]any{"type": "object", "additionalProperties": str()},
		"source":  enum("dialog", "kb", "clarify", "handoff"),
		"kb":      obj(map[string]any{"article": str(), "question": str(), "text": str(), "variant": str(), "experiment": str(), "score": num(), "confidence": num(), "found": map[string]any{"type": "boolean"}}),
		"handoff": obj(map[string]any{"id": str(), "status": enum("queued", "released"), "reason": str(), "priority": enum("normal", "high", "urgent"), "at": str()}),
	}, "conversation", "messages", "intent", "emotion", "slots", "source"),
	"Event":   obj(map[string]any{"type": enum("csat", "thumbs", "agent.released", "conversation.closed"), "score": integer(), "thumb": enum("up", "down")}, "type"),
	"Article": obj(map[string]any{"id": str(), "lang": str(), "status": enum("draft", "published"), "questions": arr(str()), "answers": arr(map[string]any{"type": "object"}), "tags": arr(str())}, "id", "questions", "answers"),
}

func str() map[string]any     { return map[string]any{"type": "string"} }
func num() map[string]any     { return map[string]any{"type": "number"} }
func integer() map[string]any { return map[string]any{"type": "integer"} }
func arr(items any) map[string]any {
	return map[string]any{"type": "array", "items": items}
}
func enum(v ...string) map[string]any { return map[string]any{"type": "string", "enum": v} }
func ref(name string) map[string]any  { return map[string]any{"$ref": "#/components/schemas/" + name} }
func obj(props map[string]any, required ...string) map[string]any {
	o := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// served lists the documented routes this server answers (KB routes only with a KB).
func (s *Server) served() []op {
	var out []op
	for _, o := range ops {
		if s.cfg.KB == nil && strings.HasPrefix(o.path, "/v1/kb/") {
			continue
		}
		out = append(out, o)
	}
	return out
}

// openAPI builds the OpenAPI 3 document of the routes in ops.
func openAPI(version string, ops []op) map[string]any {
	paths := map[string]any{}
	errResp := map[string]any{"description": "error", "content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}}
	for _, o := range ops {
		item, _ := paths[o.path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[o.path] = item
		}
		resp := map[string]any{"description": "OK"}
		if o.response != "" {
			resp["content"] = map[string]any{"application/json": map[string]any{"schema": ref(o.response)}}
		}
		code := "200"
		if o.method == "DELETE" && strings.HasPrefix(o.path, "/v1/conversations") {
			code = "204"
		}
		operation := map[string]any{"summary": o.summary, "responses": map[string]any{code: resp, "default": errResp}}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(o.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": str()})
		}
		for _, q := range o.params {
			params = append(params, map[string]any{"name": q, "in": "query", "schema": str()})
		}
		if params != nil {
			operation["parameters"] = params
		}
		if o.request != "" {
			operation["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": ref(o.request)}}}
		}
		if o.role != "" {
			operation["security"] = []any{map[string]any{"bearer": []string{}}, map[string]any{"apiKey": []string{}}}
			operation["x-kefu-role"] = string(o.role)
		}
		item[strings.ToLower(o.method)] = operation
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info":    map[string]any{"title": "kefu", "version": version, "description": "Customer-service conversation engine. Errors share one shape (Error)."},
		"paths":   paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer"},
				"apiKey": map[string]any{"type": "apiKey", "in": "header", "name": "X-API-Key"},
			},
		},
	}
}

func (s *Server) openAPIHandler(c echo.Context) error {
	return c.JSON(http.StatusOK, openAPI(s.cfg.Version, s.served()))
}

// Routes lists the routes the server answers, as "METHOD /path/{param}".
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.e.Routes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		out = append(out, r.Method+" "+echoParam.ReplaceAllString(r.Path, "{$1}"))
	}
	return out
}

// Documented lists the routes /openapi.json describes, in the same form.
func (s *Server) Documented() []string {
	var out []string
	for _, o := range s.served() {
		out = append(out, o.method+" "+o.path)
	}
	return out
}

var echoParam = regexp.MustCompile(`:([a-z_]+)`)
