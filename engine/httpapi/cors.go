package httpapi

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// ParseOrigins reads a comma-separated list of browser origins allowed to call the API
// (CORS), each exactly scheme://host[:port]. "*" is refused: kefu answers only the
// frontends it was told about.
func ParseOrigins(list string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(list, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o == "*" {
			return nil, fmt.Errorf("origin \"*\" is not allowed: list each frontend's origin, such as https://shop.example.com")
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("origin %q: want scheme://host[:port] with no path, such as https://shop.example.com", o)
		}
		out = append(out, strings.ToLower(o))
	}
	return out, nil
}

// browserHeaders are added before routing, so that every answer (404s and preflights
// too) carries them: the security headers always, CORS for the configured origins.
func (s *Server) browserHeaders() {
	s.e.Pre(middleware.SecureWithConfig(middleware.SecureConfig{
		ContentTypeNosniff: "nosniff",
		XFrameOptions:      "DENY",
		ReferrerPolicy:     "no-referrer",
	}))
	if len(s.cfg.CORSOrigins) == 0 {
		return
	}
	s.e.Pre(middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins:  s.cfg.CORSOrigins,
		AllowMethods:  []string{"GET", "POST", "PUT", "DELETE"},
		AllowHeaders:  []string{echo.HeaderAuthorization, "X-API-Key", echo.HeaderContentType, "Idempotency-Key", echo.HeaderXRequestID},
		ExposeHeaders: []string{echo.HeaderRetryAfter, "Idempotent-Replayed", echo.HeaderXRequestID, echo.HeaderWWWAuthenticate},
		// Keys travel in headers, never cookies: no credentials mode.
		AllowCredentials: false,
		MaxAge:           600,
	}))
}
