package httpapi

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"
	"github.com/labstack/echo/v4"

	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/kb"
)

// The OpenAPI document is generated from the route table (routes.go) and the Go types it
// names, with kin-openapi's openapi3gen. Struct tags next to the json tag add what Go's
// types cannot say: required:"true", enum:"a,b", minimum, maximum, minLength, maxLength,
// minItems, pattern, default and doc (a description). Pattern and length tags may name one of
// the constants below, so the document and the code that checks a value share one source.

var namedLimits = map[string]string{
	"IDPattern":         engine.IDPattern,
	"kb.IDPattern":      kb.IDPattern,
	"kb.VariantPattern": kb.VariantPattern,
	"MaxTextRunes":      strconv.Itoa(engine.MaxTextRunes),
	"ErrorCodes":        errorCodes(),
}

// errorCodes lists the codes of Status, the error codes an answer can carry.
func errorCodes() string {
	var codes []string
	for c := range Status {
		codes = append(codes, string(c))
	}
	slices.Sort(codes)
	return strings.Join(codes, ",")
}

var tagDescriptions = map[string]string{
	"operations":     "Health, readiness, metrics and this document",
	"nlu":            "The model: intent and emotion of a text",
	"conversations":  "Customer conversations: messages, events, state, erasure (chat frontends)",
	"admin":          "Operators: dead letters, bot reload",
	"knowledge-base": "Articles, search and answers (knowledge-base editors; answers for chat frontends)",
	"experiments":    "A/B tests of answer variants on live traffic",
}

// customize applies the struct tags described above to a generated schema.
func customize(_ string, t reflect.Type, tag reflect.StructTag, s *openapi3.Schema) error {
	if t.Kind() == reflect.Struct && s.Properties != nil {
		no := false
		s.AdditionalProperties = openapi3.AdditionalProperties{Has: &no}
		s.Required = nil
		for _, f := range reflect.VisibleFields(t) {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.Anonymous && f.IsExported() && name != "-" && f.Tag.Get("required") == "true" {
				s.Required = append(s.Required, cmp.Or(name, f.Name))
			}
		}
		return nil // a struct's schema is shared: field tags describe the field, not its type
	}
	if t.Kind() == reflect.Array { // fixed-size arrays such as a confidence interval [lo, hi]
		item, err := openapi3gen.NewSchemaRefForValue(reflect.Zero(t.Elem()).Interface(), nil)
		if err != nil {
			return err
		}
		n := uint64(t.Len())
		s.Type, s.Items, s.MinItems, s.MaxItems = &openapi3.Types{"array"}, item, n, &n
	}
	get := func(key string) string {
		v := tag.Get(key)
		if named, ok := namedLimits[v]; ok {
			return named
		}
		return v
	}
	num := func(key string) (*float64, error) {
		v := get(key)
		if v == "" {
			return nil, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("tag %s:%q is not a number", key, v)
		}
		return &f, nil
	}
	var err error
	if s.Min, err = num("minimum"); err != nil {
		return err
	}
	if s.Max, err = num("maximum"); err != nil {
		return err
	}
	for key, dst := range map[string]*uint64{"minLength": &s.MinLength, "minItems": &s.MinItems} {
		if v := get(key); v != "" {
			if *dst, err = strconv.ParseUint(v, 10, 64); err != nil {
				return fmt.Errorf("tag %s:%q: %v", key, v, err)
			}
		}
	}
	if v := get("maxLength"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("tag maxLength:%q: %v", v, err)
		}
		s.MaxLength = &n
	}
	if v := get("pattern"); v != "" {
		s.Pattern = v
	}
	if v := get("enum"); v != "" {
		for _, e := range strings.Split(v, ",") {
			s.Enum = append(s.Enum, e)
		}
	}
	if v := get("default"); v != "" {
		if s.Type.Is("integer") {
			n, _ := strconv.Atoi(v)
			s.Default = n
		} else {
			s.Default = v
		}
	}
	if v := tag.Get("doc"); v != "" {
		s.Description = v
	}
	if tag.Get("nullable") == "true" {
		s.Nullable = true
	}
	return nil
}

// schemaName names a type's component schema: its Go name, capitalised; errorBody is Error.
func schemaName(t reflect.Type) string {
	if t == reflect.TypeFor[errorBody]() {
		return "Error"
	}
	n := t.Name()
	return strings.ToUpper(n[:1]) + n[1:]
}

// document builds the OpenAPI 3 document of rs.
func (s *Server) document(rs []route) (*openapi3.T, error) {
	schemas := openapi3.Schemas{}
	gen := openapi3gen.NewGenerator(
		openapi3gen.SchemaCustomizer(customize),
		openapi3gen.CreateComponentSchemas(openapi3gen.ExportComponentSchemasOptions{ExportComponentSchemas: true, ExportTopLevelSchema: true}),
		openapi3gen.CreateTypeNameGenerator(schemaName),
	)
	schemaOf := func(v any) (*openapi3.SchemaRef, error) {
		return gen.NewSchemaRefForValue(v, schemas)
	}
	errRef, err := schemaOf(errorBody{})
	if err != nil {
		return nil, err
	}
	doc := &openapi3.T{
		OpenAPI: "3.0.3",
		Info: &openapi3.Info{Title: "kefu", Version: cmp.Or(s.cfg.Version, "dev"),
			Description: "kefu, a conversation engine for customer service. Every error answers with one shape " +
				"(Error: a code, a message and the request id), with the HTTP status of its code.",
		},
		Servers: openapi3.Servers{{URL: "/", Description: "the server that serves this document"}},
		Paths:   openapi3.NewPaths(),
		Components: &openapi3.Components{
			Schemas: schemas,
			SecuritySchemes: openapi3.SecuritySchemes{
				"bearer": {Value: openapi3.NewSecurityScheme().WithType("http").WithScheme("bearer").WithDescription("an API key as a bearer token")},
				"apiKey": {Value: openapi3.NewSecurityScheme().WithType("apiKey").WithIn("header").WithName("X-API-Key").WithDescription("an API key in X-API-Key")},
			},
		},
	}
	seenTags := map[string]bool{}
	for _, r := range rs {
		if !seenTags[r.tag] {
			seenTags[r.tag] = true
			doc.Tags = append(doc.Tags, &openapi3.Tag{Name: r.tag, Description: tagDescriptions[r.tag]})
		}
		op := &openapi3.Operation{OperationID: r.id, Summary: r.summary, Tags: []string{r.tag}, Responses: openapi3.NewResponses()}
		op.Responses.Delete("default")
		open := r.role == "" || r.path == "/metrics" && s.cfg.OpenMetrics
		if open {
			op.Security = &openapi3.SecurityRequirements{}
		} else {
			op.Security = &openapi3.SecurityRequirements{{"bearer": []string{}}, {"apiKey": []string{}}}
			roles := []string{string(r.role)}
			for _, a := range r.also {
				roles = append(roles, string(a))
			}
			op.Extensions = map[string]any{"x-kefu-roles": roles}
		}
		path := echoParam.ReplaceAllString(r.path, "{$1}")
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			pattern := engine.IDPattern
			if strings.HasPrefix(path, "/v1/kb/") {
				pattern = kb.IDPattern
			}
			p := openapi3.NewPathParameter(m[1]).WithSchema(openapi3.NewStringSchema().WithPattern(pattern))
			op.AddParameter(p)
		}
		if r.query != nil {
			for _, f := range queryFields(reflect.TypeOf(r.query)) {
				sch, err := gen.GenerateSchemaRef(f.Type)
				if err != nil {
					return nil, err
				}
				v := *sch.Value
				if err := customize(f.Name, f.Type, f.Tag, &v); err != nil {
					return nil, err
				}
				desc := v.Description
				v.Description = ""
				p := openapi3.NewQueryParameter(f.Tag.Get("query")).WithSchema(&v).WithDescription(desc)
				p.Required = f.Tag.Get("required") == "true"
				op.AddParameter(p)
			}
		}
		for _, h := range r.headers {
			sch := openapi3.NewStringSchema().WithPattern(engine.IDPattern)
			if h.name == "X-Conversation-Token" {
				sch = openapi3.NewStringSchema().WithPattern(`^[A-Za-z0-9_-]{43}$`)
			}
			op.AddParameter(openapi3.NewHeaderParameter(h.name).WithDescription(h.doc).WithSchema(sch))
		}
		switch {
		case r.body != nil:
			ref, err := schemaOf(r.body)
			if err != nil {
				return nil, err
			}
			op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).WithJSONSchemaRef(ref)}
		case r.rawBody != nil:
			content := openapi3.Content{}
			for _, mt := range r.rawBody {
				content[mt] = openapi3.NewMediaType().WithSchema(openapi3.NewStringSchema())
			}
			op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).WithContent(content)}
		}
		ok := openapi3.NewResponse().WithDescription(http.StatusText(r.status))
		switch {
		case r.resp != nil:
			ref, err := schemaOf(r.resp)
			if err != nil {
				return nil, err
			}
			ok.WithJSONSchemaRef(ref)
		case r.rawResp != nil:
			ok.Content = openapi3.Content{}
			for _, mt := range r.rawResp {
				ok.Content[mt] = openapi3.NewMediaType().WithSchema(openapi3.NewStringSchema())
			}
		}
		if r.id == "sendMessage" {
			ok.Headers = openapi3.Headers{"Idempotent-Replayed": {Value: &openapi3.Header{Parameter: openapi3.Parameter{
				Description: "true when this is the answer to an earlier send of the same message id",
				Schema:      openapi3.NewStringSchema().WithEnum("true").NewRef()}}}}
		}
		op.Responses.Set(strconv.Itoa(r.status), &openapi3.ResponseRef{Value: ok})
		for _, code := range r.errors(open) {
			resp := openapi3.NewResponse().WithDescription(http.StatusText(code)).WithJSONSchemaRef(errRef)
			if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
				resp.Headers = openapi3.Headers{"Retry-After": {Value: &openapi3.Header{Parameter: openapi3.Parameter{
					Description: "seconds to wait before trying again", Schema: openapi3.NewIntegerSchema().NewRef()}}}}
			}
			op.Responses.Set(strconv.Itoa(code), &openapi3.ResponseRef{Value: resp})
		}
		doc.AddOperation(path, r.method, op)
	}
	return doc, nil
}

// errors lists the error statuses an operation can answer.
func (r route) errors(open bool) []int {
	var codes []int
	if r.invalid || r.body != nil || r.rawBody != nil || r.query != nil || strings.Contains(r.path, ":") {
		codes = append(codes, http.StatusBadRequest)
	}
	if !open {
		codes = append(codes, http.StatusUnauthorized, http.StatusForbidden)
	}
	if r.notFound {
		codes = append(codes, http.StatusNotFound)
	}
	if r.conflict {
		codes = append(codes, http.StatusConflict)
	}
	if r.body != nil || r.rawBody != nil {
		codes = append(codes, http.StatusRequestEntityTooLarge)
	}
	if !open {
		codes = append(codes, http.StatusTooManyRequests)
	}
	codes = append(codes, http.StatusInternalServerError)
	if r.path != "/healthz" && r.path != "/openapi.json" {
		codes = append(codes, http.StatusServiceUnavailable)
	}
	slices.Sort(codes)
	return codes
}

var (
	pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)
	echoParam = regexp.MustCompile(`:([a-z_]+)`)
)

func (s *Server) openAPIHandler(c echo.Context) error {
	return c.JSONBlob(http.StatusOK, s.openapi)
}

// OpenAPI returns the document /openapi.json serves.
func (s *Server) OpenAPI() []byte { return s.openapi }

// Routes lists the API routes the server answers, as "METHOD /path/{param}" (not the
// console's pages).
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.e.Routes() {
		if r.Method == echo.RouteNotFound || r.Path == "/console" || strings.HasPrefix(r.Path, "/console/") { // the console's pages are HTML, not the API
			continue
		}
		out = append(out, r.Method+" "+echoParam.ReplaceAllString(r.Path, "{$1}"))
	}
	return out
}

// Documented lists the routes /openapi.json describes, in the same form.
func (s *Server) Documented() []string {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	_ = json.Unmarshal(s.openapi, &doc)
	var out []string
	for path, item := range doc.Paths {
		for method := range item {
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	return out
}
