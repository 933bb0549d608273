package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/kefu-ai/kefu/engine"
)

func (s *Server) analyticsSummary(c echo.Context) error {
	var q engine.AnalyticsQuery
	if err := bindQuery(c, &q); err != nil {
		return err
	}
	sum, err := s.eng.Summary(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sum)
}

func (s *Server) analyticsSeries(c echo.Context) error {
	var q engine.SeriesQuery
	if err := bindQuery(c, &q); err != nil {
		return err
	}
	series, err := s.eng.Series(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, series)
}

func (s *Server) analyticsUnresolved(c echo.Context) error {
	var q engine.UnansweredQuery
	if err := bindQuery(c, &q); err != nil {
		return err
	}
	u, err := s.eng.Unanswered(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, u)
}

// analyticsEvents streams the period's events as JSON lines; the period is checked before
// the first byte, so a bad one still gets its 400.
func (s *Server) analyticsEvents(c echo.Context) error {
	var q engine.AnalyticsQuery
	if err := bindQuery(c, &q); err != nil {
		return err
	}
	if err := s.eng.CheckPeriod(q); err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/x-ndjson")
	c.Response().WriteHeader(http.StatusOK)
	_, err := s.eng.ExportEvents(c.Request().Context(), q, c.Response())
	if err != nil {
		s.cfg.Logger.Error("analytics export cut short", "err", err)
	}
	return nil
}
