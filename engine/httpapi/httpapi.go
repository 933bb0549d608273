// Package httpapi serves the engine over HTTP with echo. Every error leaves through one
// handler that maps engine error codes to HTTP statuses (see Status).
package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/kb"
)

// Config tunes the HTTP layer.
type Config struct {
	// BodyLimit is the largest request body in bytes; default 1 MiB.
	BodyLimit int64
	// Logger receives one line per request (no message text); default slog.Default().
	Logger *slog.Logger
	// Keys are the API keys; none means every route is open (kefu serve allows that only
	// on a loopback address).
	Keys []Key
	// KB is the knowledge base; nil leaves out the /v1/kb routes.
	KB *kb.KB
	// ImportLimit is the largest KB import body in bytes; default 32 MiB.
	ImportLimit int64
	// Reload reloads the bot bundle (POST /v1/admin/reload) and says what it loaded; nil
	// when the bot is embedded.
	Reload func() (string, error)
	// Version is kefu's version, shown in /openapi.json and kefu_build_info.
	Version string
	// Limiter enforces the keys' rates; default a LocalLimiter (per process). With several
	// nodes give a RedisLimiter so that a key's rate holds across them.
	Limiter Limiter
	// CORSOrigins are the browser origins (scheme://host[:port]) allowed to call the API;
	// none by default (see ParseOrigins).
	CORSOrigins []string
	// OpenMetrics serves /metrics without a key (for a Prometheus on a private network);
	// otherwise it needs an admin key.
	OpenMetrics bool
	// SessionTTL is how long a console sign-in lasts; default 8 hours.
	SessionTTL time.Duration
}

// Server is kefu's HTTP API.
type Server struct {
	eng     *engine.Engine
	cfg     Config
	e       *echo.Echo
	keys    *keyring
	metrics *metrics
	guesses guessLimit // failed authentications per source address
	openapi []byte     // the document /openapi.json serves
	// The console's pages and sessions (console.go).
	pages    map[string]*template.Template
	sessions sessions
	localMu  sync.Mutex
	local    *session // the loopback operator's, without keys
}

// New builds the API over eng; it fails on an invalid key.
func New(eng *engine.Engine, cfg Config) (*Server, error) {
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 1 << 20
	}
	if cfg.ImportLimit <= 0 {
		cfg.ImportLimit = 32 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Limiter == nil {
		cfg.Limiter = NewLocalLimiter()
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	keys, err := newKeyring(cfg.Keys)
	if err != nil {
		return nil, err
	}
	s := &Server{eng: eng, cfg: cfg, e: echo.New(), keys: keys}
	s.metrics = newMetrics(s)
	e := s.e
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	s.browserHeaders()
	e.Use(requestIDs)
	e.Use(s.logRequests)
	e.Use(middleware.Recover())

	rs := s.routes()
	s.register(rs)
	if cfg.KB != nil {
		if err := s.console(); err != nil {
			return nil, fmt.Errorf("console templates: %w", err)
		}
	}
	doc, err := s.document(rs)
	if err != nil {
		return nil, fmt.Errorf("building the OpenAPI document: %w", err)
	}
	if s.openapi, err = json.Marshal(doc); err != nil {
		return nil, err
	}
	return s, nil
}

// ServeHTTP makes the server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.e.ServeHTTP(w, r) }

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, Health{Status: "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	// A probe waits a few seconds at most: readiness answers within its own deadline, so a
	// hung store reads as not ready, not as a probe timeout.
	ctx, cancel := context.WithTimeout(c.Request().Context(), time.Second)
	defer cancel()
	if err := s.eng.Ready(ctx); err != nil {
		if ctx.Err() != nil {
			return engine.Errorf(engine.Unavailable, "not ready: the state store did not answer within 1s")
		}
		return err
	}
	return c.JSON(http.StatusOK, Readiness{Status: "ready", Model: s.eng.Model()})
}

func (s *Server) parse(c echo.Context) error {
	var req engine.ParseRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	res, err := s.eng.Parse(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// decode reads a JSON body strictly: within the size limit, valid UTF-8, one object, known
// fields only, no key twice (nor in another case). Errors name the field or the position.
func (s *Server) decode(c echo.Context, v any) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, s.cfg.BodyLimit+1))
	if err != nil {
		return engine.Errorf(engine.Invalid, "reading body: %v", err)
	}
	if int64(len(body)) > s.cfg.BodyLimit {
		return engine.Errorf(engine.TooLarge, "body is over the limit of %d bytes", s.cfg.BodyLimit)
	}
	if !utf8.Valid(body) {
		return engine.Errorf(engine.Invalid, "body is not valid UTF-8")
	}
	if err := duplicateKey(body); err != nil {
		return engine.Errorf(engine.Invalid, "invalid JSON: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return engine.Errorf(engine.Invalid, "invalid JSON: %s", describeJSONError(err))
	}
	if dec.More() {
		return engine.Errorf(engine.Invalid, "invalid JSON: more than one value in the body")
	}
	return nil
}

func describeJSONError(err error) string {
	var typ *json.UnmarshalTypeError
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be %s, got %s", typ.Field, typ.Type, typ.Value)
	case errors.As(err, &syn):
		return fmt.Sprintf("%v at byte %d", syn, syn.Offset)
	case errors.Is(err, io.EOF):
		return "empty body"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "body ends early"
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + f
	}
	return err.Error()
}

// Status maps each engine error code to its HTTP status.
var Status = map[engine.Code]int{
	engine.Invalid:      http.StatusBadRequest,
	engine.Unauthorized: http.StatusUnauthorized,
	engine.Forbidden:    http.StatusForbidden,
	engine.NotFound:     http.StatusNotFound,
	engine.Conflict:     http.StatusConflict,
	engine.TooLarge:     http.StatusRequestEntityTooLarge,
	engine.RateLimited:  http.StatusTooManyRequests,
	engine.Overloaded:   http.StatusServiceUnavailable,
	engine.Unavailable:  http.StatusServiceUnavailable,
	engine.Canceled:     499, // client closed request (nginx's convention); the client is gone
	engine.Internal:     http.StatusInternalServerError,
}

// errorBody is the JSON every error answers with ("Error" in /openapi.json).
type errorBody struct {
	Error errorDetail `json:"error" required:"true"`
}

// errorDetail says what went wrong.
type errorDetail struct {
	Code      engine.Code `json:"code" required:"true" enum:"ErrorCodes"`
	Message   string      `json:"message" required:"true"`
	RequestID string      `json:"request_id,omitempty"`
}

func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, detail := s.describe(c, err)
	body := errorBody{Error: detail}
	body.Error.RequestID = requestID(c)
	if status == http.StatusServiceUnavailable && c.Response().Header().Get("Retry-After") == "" {
		c.Response().Header().Set("Retry-After", "1")
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, body)
}

// describe is what err answers, for the API and the console alike: the HTTP status of its
// code and the message callers may see; a cause behind it is logged.
func (s *Server) describe(c echo.Context, err error) (int, errorDetail) {
	err = engine.Translate(err)
	var d errorDetail
	var he *echo.HTTPError
	if errors.As(err, &he) {
		d.Code, d.Message = codeForStatus(he.Code), strings.ToLower(http.StatusText(he.Code))
		if m, ok := he.Message.(string); ok && he.Code != http.StatusInternalServerError {
			d.Message = m
		}
		return he.Code, d
	}
	d.Code = engine.ErrorCode(err)
	var e *engine.Error
	if errors.As(err, &e) && d.Code != engine.Internal {
		d.Message = e.Message
		if e.Err != nil {
			s.cfg.Logger.Warn("request failed", "request_id", requestID(c), "code", d.Code, "err", e.Err)
		}
	} else {
		d.Message = "internal error"
		s.cfg.Logger.Error("internal error", "request_id", requestID(c), "err", err)
	}
	return Status[d.Code], d
}

// codeForStatus names the code of an error echo raised itself (unknown route, wrong method).
func codeForStatus(status int) engine.Code {
	switch {
	case status == http.StatusNotFound:
		return engine.NotFound
	case status == http.StatusRequestEntityTooLarge:
		return engine.TooLarge
	case status == http.StatusServiceUnavailable:
		return engine.Unavailable
	case status < 500:
		return engine.Invalid
	}
	return engine.Internal
}

// requestIDs gives every request an id, answered in X-Request-ID and logged: the caller's
// when it is short and well formed (so a chain of services can share one), else a new one.
func requestIDs(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !requestIDPattern.MatchString(id) {
			var b [16]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}

// logRequests writes one structured line per request: method, route, status, duration and
// request id. Bodies are never logged: customers' messages are personal data.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		s.metrics.request(c.Request().Method, c.Path(), status, time.Since(start))
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		s.cfg.Logger.Log(c.Request().Context(), level, "request",
			"method", c.Request().Method, "route", c.Path(), "status", status,
			"ms", strconv.FormatFloat(float64(time.Since(start).Microseconds())/1000, 'f', 2, 64),
			"request_id", requestID(c))
		return nil
	}
}
