package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/kefu-ai/kefu/engine"
)

func (s *Server) message(c echo.Context) error {
	var req engine.MessageRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	if key := c.Request().Header.Get("Idempotency-Key"); key != "" {
		if req.MessageID != "" && req.MessageID != key {
			return engine.Errorf(engine.Invalid, "the Idempotency-Key header and message_id differ; send one of them")
		}
		req.MessageID = key
	}
	res, err := s.eng.Message(c.Request().Context(), c.Param("id"), req)
	if err != nil {
		return err
	}
	if res.Replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
	} else {
		s.metrics.turn(res)
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) conversation(c echo.Context) error {
	conv, err := s.eng.Conversation(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, conv)
}

func (s *Server) event(c echo.Context) error {
	var ev engine.Event
	if err := s.decode(c, &ev); err != nil {
		return err
	}
	res, err := s.eng.Event(c.Request().Context(), c.Param("id"), ev)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) deleteConversation(c echo.Context) error {
	if err := s.eng.DeleteConversation(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) deadLetters(c echo.Context) error {
	dead, err := s.eng.DeadLetters(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, DeadLetters{DeadLetters: orEmpty(dead), Count: len(dead)})
}

func (s *Server) reload(c echo.Context) error {
	if s.cfg.Reload == nil {
		return engine.Errorf(engine.Unavailable, "this server has no bot bundle to reload")
	}
	what, err := s.cfg.Reload()
	if err != nil {
		return engine.Errorf(engine.Invalid, "reload refused, the running bot stays: %v", err)
	}
	return c.JSON(http.StatusOK, Reloaded{Reloaded: what})
}
