package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/engine"
)

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// startRequest starts a conversation; a public frontend's customer comes only as a
// signed identity.
type startRequest struct {
	engine.StartRequest
	Identity *Identity `json:"identity,omitempty" doc:"a public frontend's customer, signed by the site's server with the key's identity_secret"`
}

// Identity is a customer identity signed by a site's server (as Intercom's and Chatwoot's
// identity verification do): Signature is hex(HMAC-SHA256(identity_secret,
// id + "\n" + tier + "\n" + tags joined by ",")).
type Identity struct {
	ID        string   `json:"id" required:"true"`
	Tier      string   `json:"tier,omitempty"`
	Tags      []string `json:"tags,omitempty"`
	Signature string   `json:"signature" required:"true" pattern:"^[0-9a-f]{64}$"`
}

// SignIdentity is what a site's server computes for Identity.Signature.
func SignIdentity(secret []byte, id, tier string, tags []string) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "%s\n%s\n%s", id, tier, strings.Join(tags, ","))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) start(c echo.Context) error {
	var req startRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	if k := keyOf(c); k != nil && k.Role == RolePublic {
		if req.Customer.ID != "" || req.Customer.Tier != "" || len(req.Customer.Tags) > 0 {
			return engine.Errorf(engine.Invalid, "a public frontend cannot say who the customer is: send a signed identity")
		}
		if id := req.Identity; id != nil {
			if k.IdentitySecret == "" {
				return engine.Errorf(engine.Invalid, "key %q has no identity_secret: identities cannot be verified", k.Name)
			}
			want := SignIdentity([]byte(k.IdentitySecret), id.ID, id.Tier, id.Tags)
			if !hmac.Equal([]byte(want), []byte(strings.ToLower(id.Signature))) {
				return engine.Errorf(engine.Invalid, "identity.signature does not match: the customer stays anonymous only without an identity")
			}
			req.Customer = conversation.Customer{ID: id.ID, Tier: id.Tier, Tags: id.Tags}
		}
	} else if req.Identity != nil {
		return engine.Errorf(engine.Invalid, "identity is for public keys; a server-side frontend sends customer")
	}
	res, err := s.eng.Start(c.Request().Context(), req.StartRequest)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, res)
}

// access marks a public frontend's request with its conversation token (see
// engine.WithToken); other callers are trusted with every conversation.
func access(c echo.Context) context.Context {
	ctx := c.Request().Context()
	if k := keyOf(c); k != nil && k.Role == RolePublic {
		return engine.WithToken(ctx, c.Request().Header.Get("X-Conversation-Token"))
	}
	return ctx
}

func (s *Server) message(c echo.Context) error {
	var req engine.MessageRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	if roleOf(c) == RolePublic && (req.Customer.ID != "" || req.Customer.Tier != "" || len(req.Customer.Tags) > 0) {
		return engine.Errorf(engine.Invalid, "a public frontend cannot say who the customer is: the identity comes signed, at start")
	}
	if key := c.Request().Header.Get("Idempotency-Key"); key != "" {
		if req.MessageID != "" && req.MessageID != key {
			return engine.Errorf(engine.Invalid, "the Idempotency-Key header and message_id differ; send one of them")
		}
		req.MessageID = key
	}
	res, err := s.eng.Message(access(c), c.Param("id"), req)
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
	conv, err := s.eng.Conversation(access(c), c.Param("id"))
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
	// agent.* events are the agent desk's; the desk itself cannot rate or thumb for the customer.
	agentEvent := strings.HasPrefix(ev.Type, "agent.")
	switch role := roleOf(c); {
	case agentEvent && role != RoleAgent && role != RoleAdmin:
		return engine.Errorf(engine.Forbidden, "%s comes from the agent desk: it needs an agent key", truncate(ev.Type, 40))
	case role == RoleAgent && !agentEvent && ev.Type != "conversation.closed":
		return engine.Errorf(engine.Forbidden, "an agent key sends agent.* and conversation.closed events only")
	}
	res, err := s.eng.Event(access(c), c.Param("id"), ev)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) deleteConversation(c echo.Context) error {
	if err := s.eng.DeleteConversation(access(c), c.Param("id")); err != nil {
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

func (s *Server) retryDeadLetter(c echo.Context) error {
	key := c.Param("key")
	if err := s.eng.RetryDeadLetter(c.Request().Context(), key); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, Retried{Retried: key})
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
