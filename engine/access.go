package engine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"

	"github.com/kefu-ai/kefu/conversation"
)

// A public frontend (a web widget, an app) holds a key anyone can read, so its key alone
// opens nothing: it starts a conversation (Start), gets a server-generated id and a
// conversation token, and shows the token for every later call. The HTTP layer says so
// with WithToken; a caller without it (a server-side frontend, an agent desk, an
// operator) is trusted with every conversation.

type tokenKey struct{}

// WithToken marks ctx as a public frontend's call that shows token: only the conversation
// started with that token answers, every other id is NotFound (as if it did not exist).
func WithToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, tokenKey{}, token)
}

// checkAccess lets a public frontend's call reach c only with c's token; exists says
// whether c was loaded (a public frontend cannot create a conversation by writing to it).
func checkAccess(ctx context.Context, c *conversation.Conversation, exists bool) error {
	token, public := ctx.Value(tokenKey{}).(string)
	if !public {
		return nil
	}
	if !exists || c.TokenHash == "" || token == "" ||
		subtle.ConstantTimeCompare([]byte(c.TokenHash), []byte(hashToken(token))) != 1 {
		return Errorf(NotFound, "no such conversation") // the same words as for an id nobody has: no oracle
	}
	return nil
}

func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// StartRequest begins a conversation whose id kefu chooses.
type StartRequest struct {
	Lang     string                `json:"lang,omitempty" enum:"zh,en,auto"`
	Channel  string                `json:"channel,omitempty"`
	Customer conversation.Customer `json:"customer"`
	Metadata map[string]string     `json:"metadata,omitempty"`
}

// Started is a new conversation: its id and, for a public frontend, the token that opens
// it (shown once: kefu keeps only its hash).
type Started struct {
	Conversation string `json:"conversation" required:"true"`
	Token        string `json:"token,omitempty" doc:"send it as X-Conversation-Token with every call about this conversation"`
}

// Start creates a conversation under a new random id (c_ and 32 hexadecimal digits) with
// a 256-bit token, stored hashed. Errors: Invalid, Unavailable.
func (e *Engine) Start(ctx context.Context, req StartRequest) (*Started, error) {
	if _, err := e.machine(); err != nil {
		return nil, err
	}
	if err := checkCustomer(MessageRequest{Customer: req.Customer, Channel: req.Channel, Metadata: req.Metadata}); err != nil {
		return nil, err
	}
	if req.Lang != "" && req.Lang != "zh" && req.Lang != "en" && req.Lang != "auto" {
		return nil, Errorf(Invalid, "lang must be zh, en or auto, got %q", truncate(req.Lang, 20))
	}
	var raw [16]byte
	rand.Read(raw[:])
	id := "c_" + hex.EncodeToString(raw[:])
	var tok [32]byte
	rand.Read(tok[:])
	token := base64.RawURLEncoding.EncodeToString(tok[:])
	create := func() *conversation.Conversation {
		c := conversation.New(id, e.now())
		c.Customer, c.Channel, c.Metadata, c.TokenHash = req.Customer, req.Channel, req.Metadata, hashToken(token)
		if req.Lang == "zh" || req.Lang == "en" {
			c.Lang = req.Lang
		}
		return c
	}
	err := e.update(context.WithoutCancel(ctx), id, create, func(c *conversation.Conversation) (plan, error) {
		if c.Version != 0 {
			return plan{}, Errorf(Conflict, "conversation id %s exists already; start again", id)
		}
		return plan{write: true}, nil
	})
	if err != nil {
		return nil, err
	}
	return &Started{Conversation: id, Token: token}, nil
}
