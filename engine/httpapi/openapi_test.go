package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/kefu-ai/kefu/engine/httpapi"
	"github.com/kefu-ai/kefu/internal/testenv"
)

// The API tests talk to servers wrapped by contractServer: every request and response
// is checked against the server's own /openapi.json with kin-openapi's validators. A
// response that does not validate fails the test that caused it; a request that does not
// validate must have been refused with a 4xx. When the whole package ran, TestMain also
// checks that every documented operation answered at least one validated success.

var contract = struct {
	sync.Mutex
	ok         map[string]bool // "METHOD /path" with a validated 2xx
	all        map[string]bool // every documented operation
	violations []string        // of servers shared between tests, reported by TestMain
}{ok: map[string]bool{}, all: map[string]bool{}}

func TestMain(m *testing.M) {
	// The KB answers in YAML and CSV, which the validator must see as the strings they are
	// documented to be, not parse.
	asText := func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(body)
		return string(b), err
	}
	openapi3filter.RegisterBodyDecoder("application/yaml", asText)
	openapi3filter.RegisterBodyDecoder("text/csv", asText)
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", asText)
	flag.Parse()
	code := m.Run()
	for _, v := range contract.violations {
		fmt.Fprintln(os.Stderr, "FAIL: a shared test server:", v)
		code = 1
	}
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && !testing.Short() && len(contract.all) > 0 {
		var missing []string
		for op := range contract.all {
			if !contract.ok[op] {
				missing = append(missing, op)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: no test got a validated success from %d documented operations:\n  %s\n", len(missing), strings.Join(missing, "\n  "))
			code = 1
		}
	}
	os.Exit(code)
}

// contractServer serves api over HTTP, checking each exchange against its document.
// A nil t is for a server shared between tests: TestMain reports what it finds.
func contractServer(t *testing.T, api *httpapi.Server) *httptest.Server {
	fail := func(format string, args ...any) {
		contract.Lock()
		defer contract.Unlock()
		contract.violations = append(contract.violations, fmt.Sprintf(format, args...))
	}
	if t != nil {
		t.Helper()
		fail = t.Errorf
	}
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err == nil {
		err = doc.Validate(context.Background())
	}
	if err != nil {
		panic(fmt.Sprintf("/openapi.json is not valid OpenAPI 3: %v", err))
	}
	doc.Servers = nil // match any host: httptest picks the port
	router, err := legacy.NewRouter(doc)
	if err != nil {
		panic(err)
	}
	contract.Lock()
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			contract.all[method+" "+path] = true
		}
	}
	contract.Unlock()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checkExchange(fail, router, api, w, r)
	}))
	if t != nil {
		t.Cleanup(srv.Close)
	}
	return srv
}

func checkExchange(fail func(string, ...any), router routers.Router, api http.Handler, w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())

	if !slices.Contains([]string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}, r.Method) {
		return // an invented method is no operation (and kin-openapi's router panics on one)
	}
	route, params, err := router.FindRoute(r)
	if err != nil {
		return // not an operation (unknown path or method): nothing to check
	}
	check := r.Clone(context.Background())
	check.Body = io.NopCloser(bytes.NewReader(body))
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route, Options: opts}
	what := r.Method + " " + route.Path
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil && rec.Code < 400 {
		fail("%s: the request does not match /openapi.json but was answered %d: %v", what, rec.Code, err)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
		Body: io.NopCloser(bytes.NewReader(rec.Body.Bytes())), Options: opts}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		fail("%s: the %d response does not match /openapi.json: %v\nbody: %.300s", what, rec.Code, err, rec.Body.String())
		return
	}
	if rec.Code < 300 {
		contract.Lock()
		contract.ok[what] = true
		contract.Unlock()
	}
}

// TestOpenAPILint lints the document with Redocly CLI's recommended rules: no errors.
func TestOpenAPILint(t *testing.T) {
	redocly := testenv.Tool(t, "redocly")
	api, _ := kbAPI(t)
	file := filepath.Join(t.TempDir(), "openapi.json")
	var pretty bytes.Buffer
	_ = json.Indent(&pretty, api.OpenAPI(), "", "  ")
	if err := os.WriteFile(file, pretty.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(redocly, "lint", "--config", filepath.Join(testenv.RepoRoot(), "scripts", "redocly", "redocly.yaml"), "--format", "stylish", file)
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redocly lint: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "warning") {
		t.Logf("redocly lint warnings:\n%s", out)
	}
}

// TestOpenAPIDocument: the document names every operation, its body and its responses.
func TestOpenAPIDocument(t *testing.T) {
	api, _ := kbAPI(t)
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			what := method + " " + path
			if op.OperationID == "" || ids[op.OperationID] {
				t.Errorf("%s: operationId %q missing or not unique", what, op.OperationID)
			}
			ids[op.OperationID] = true
			if len(op.Tags) == 0 || op.Summary == "" || op.Security == nil {
				t.Errorf("%s: needs tags, a summary and security", what)
			}
			ok := false
			for code, resp := range op.Responses.Map() {
				if code[0] == '2' {
					ok = true
				}
				if code[0] >= '4' && resp.Value.Content.Get("application/json").Schema.Ref != "#/components/schemas/Error" {
					t.Errorf("%s %s: errors must answer with the Error schema", what, code)
				}
			}
			if !ok || op.Responses.Value("500") == nil {
				t.Errorf("%s: needs a success and a 500 response", what)
			}
			if (method == "POST" || method == "PUT") && op.RequestBody == nil && !slices.Contains([]string{"publishArticle", "stopExperiment", "reloadBot", "retryDeadLetter"}, op.OperationID) {
				t.Errorf("%s: a %s without a request body", what, method)
			}
		}
	}
	open := map[string]bool{"getHealth": true, "getReadiness": true, "getOpenAPI": true}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if open[op.OperationID] != (len(*op.Security) == 0) {
				t.Errorf("%s: security %v", op.OperationID, *op.Security)
			}
		}
	}
	msg := doc.Components.Schemas["MessageRequest"].Value
	if msg == nil || msg.Properties["text"].Value.MaxLength == nil || *msg.Properties["text"].Value.MaxLength != 4000 ||
		msg.Properties["message_id"].Value.Pattern == "" || !slices.Contains(msg.Required, "text") {
		t.Errorf("MessageRequest: the text limit, message id pattern and required text come from the Go type: %+v", msg)
	}
	if ev := doc.Components.Schemas["Event"].Value; len(ev.Properties["type"].Value.Enum) != 5 {
		t.Errorf("Event.type enum: %v", ev.Properties["type"].Value.Enum)
	}
	if len(doc.Servers) == 0 {
		t.Errorf("no servers")
	}
}
