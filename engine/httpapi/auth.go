package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/kefu-ai/kefu/engine"
)

// Role is what an API key may do:
//   - client: a server-side frontend (its key stays on a server): conversations by any id,
//     NLU, KB answers and feedback;
//   - public: a browser or app frontend (its key is public): it starts conversations and
//     then uses only those, each with its conversation token;
//   - agent: the agent desk: reads conversations and sends agent.* events;
//   - editor: the knowledge base; admin: everything.
type Role string

// Roles.
const (
	RoleClient Role = "client"
	RolePublic Role = "public"
	RoleAgent  Role = "agent"
	RoleEditor Role = "editor"
	RoleAdmin  Role = "admin"
)

// Key is one API key from configuration.
type Key struct {
	// Name identifies the key in logs and in the KB's audit log.
	Name string `yaml:"name"`
	Role Role   `yaml:"role"`
	// Secret is the key itself, or SHA256 its hex SHA-256 (so the file need not hold it).
	Secret string `yaml:"key,omitempty"`
	SHA256 string `yaml:"key_sha256,omitempty"`
	// Rate is the requests per second the key may send on average; 0 means no limit.
	// Burst is how many it may send at once; default max(1, Rate).
	Rate  float64 `yaml:"rate,omitempty"`
	Burst int     `yaml:"burst,omitempty"`
	// IdentitySecret (public keys) verifies the customer identity a public frontend sends
	// at start: HMAC-SHA256 signed by the site's server; at least 32 bytes.
	IdentitySecret string `yaml:"identity_secret,omitempty"`
}

// Check validates a key's fields.
func (k *Key) Check() error {
	switch {
	case k.Name == "":
		return fmt.Errorf("a key needs a name")
	case !slices.Contains([]Role{RoleClient, RolePublic, RoleAgent, RoleEditor, RoleAdmin}, k.Role):
		return fmt.Errorf("key %q: role must be client, public, agent, editor or admin, got %q", k.Name, k.Role)
	case k.IdentitySecret != "" && k.Role != RolePublic:
		return fmt.Errorf("key %q: identity_secret is for public keys", k.Name)
	case k.IdentitySecret != "" && len(k.IdentitySecret) < 32:
		return fmt.Errorf("key %q: identity_secret must be at least 32 bytes", k.Name)
	case (k.Secret == "") == (k.SHA256 == ""):
		return fmt.Errorf("key %q: give exactly one of key and key_sha256", k.Name)
	case k.Secret != "" && len(k.Secret) < 16:
		return fmt.Errorf("key %q: a key must be at least 16 characters", k.Name)
	case k.SHA256 != "" && len(k.SHA256) != 64:
		return fmt.Errorf("key %q: key_sha256 must be 64 hex digits", k.Name)
	case k.Rate < 0 || math.IsNaN(k.Rate) || k.Burst < 0:
		return fmt.Errorf("key %q: rate and burst must be ≥ 0", k.Name)
	}
	if k.SHA256 != "" {
		if _, err := hex.DecodeString(k.SHA256); err != nil {
			return fmt.Errorf("key %q: key_sha256 must be 64 hex digits", k.Name)
		}
	}
	return nil
}

// keyring checks keys.
type keyring struct {
	keys []*keyEntry
}

type keyEntry struct {
	Key
	hash [32]byte
}

func newKeyring(keys []Key) (*keyring, error) {
	r := &keyring{}
	names := map[string]bool{}
	for _, k := range keys {
		if err := k.Check(); err != nil {
			return nil, err
		}
		if names[k.Name] {
			return nil, fmt.Errorf("key %q: two keys have this name (names identify keys in logs and rate limits)", k.Name)
		}
		names[k.Name] = true
		e := &keyEntry{Key: k}
		if k.Secret != "" {
			e.hash = sha256.Sum256([]byte(k.Secret))
		} else {
			b, _ := hex.DecodeString(k.SHA256)
			copy(e.hash[:], b)
		}
		if e.Burst == 0 {
			e.Burst = max(1, int(math.Ceil(e.Rate)))
		}
		r.keys = append(r.keys, e)
	}
	return r, nil
}

// lookup finds the key presented, comparing hashes in constant time.
func (r *keyring) lookup(secret string) *keyEntry {
	h := sha256.Sum256([]byte(secret))
	var found *keyEntry
	for i := range r.keys {
		if subtle.ConstantTimeCompare(h[:], r.keys[i].hash[:]) == 1 {
			found = r.keys[i]
		}
	}
	return found
}

// refuse ends the connection after a refusal, so the server neither reads nor waits for
// a body nobody was allowed to send.
func refuse(c echo.Context) { c.Response().Header().Set("Connection", "close") }

// sourceIP is the address the connection comes from (not X-Forwarded-For, which the
// caller writes).
func sourceIP(c echo.Context) string {
	host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		return c.Request().RemoteAddr
	}
	return host
}

// guessLimit counts failed authentications per source address: after FailedAuthBurst
// failures, more than one each FailedAuthEvery, every request from the address that needs
// a key is refused with 429 until the penalty is over, before its key is looked at, so
// keys cannot be guessed at speed. It is per process.
type guessLimit struct {
	mu    sync.Mutex
	addrs map[string]*rate.Limiter
}

// Failed-authentication budget per source address.
const (
	FailedAuthBurst = 10
	FailedAuthEvery = 6 * time.Second
)

// blocked says how long ip must still wait, 0 if it may try.
func (g *guessLimit) blocked(ip string, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	lim := g.addrs[ip]
	if lim == nil {
		return 0
	}
	if tokens := lim.TokensAt(now); tokens < 1 {
		return time.Duration((1 - tokens) * float64(FailedAuthEvery))
	}
	return 0
}

// failed counts one failed authentication of ip.
func (g *guessLimit) failed(ip string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.addrs == nil {
		g.addrs = map[string]*rate.Limiter{}
	}
	lim := g.addrs[ip]
	if lim == nil {
		if len(g.addrs) > 100_000 { // a flood of addresses: forget those whose budget is whole again
			for k, l := range g.addrs {
				if l.TokensAt(now) >= FailedAuthBurst {
					delete(g.addrs, k)
				}
			}
		}
		lim = rate.NewLimiter(rate.Every(FailedAuthEvery), FailedAuthBurst)
		g.addrs[ip] = lim
	}
	lim.AllowN(now, 1) // takes a token when there is one; a refused failure needs none
}

// ctxActor and ctxKey are where the middleware leaves the caller's name (KB audit log)
// and key for handlers.
const (
	ctxActor = "kefu.actor"
	ctxKey   = "kefu.key"
)

// keyOf is the caller's key; nil when no keys are configured (everything open).
func keyOf(c echo.Context) *keyEntry {
	k, _ := c.Get(ctxKey).(*keyEntry)
	return k
}

// roleOf is the caller's role; admin when no keys are configured.
func roleOf(c echo.Context) Role {
	if k := keyOf(c); k != nil {
		return k.Role
	}
	return RoleAdmin
}

// actor names who made the request: the key's name, or "anonymous" with no keys.
func actor(c echo.Context) string {
	if a, ok := c.Get(ctxActor).(string); ok {
		return a
	}
	return "anonymous"
}

// require lets a request through when its key has one of the roles (admin always has), and
// counts it against the key's rate. With no keys configured everything is open (kefu serve
// only allows that on a loopback address).
func (s *Server) require(roles ...Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if s.keys == nil || len(s.keys.keys) == 0 {
				return next(c)
			}
			secret := c.Request().Header.Get("X-API-Key")
			if auth := c.Request().Header.Get("Authorization"); secret == "" && auth != "" {
				scheme, token, _ := strings.Cut(auth, " ")
				if strings.EqualFold(scheme, "Bearer") {
					secret = strings.TrimSpace(token)
				}
			}
			ip := sourceIP(c)
			if wait := s.guesses.blocked(ip, time.Now()); wait > 0 {
				refuse(c)
				c.Response().Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
				return engine.Errorf(engine.RateLimited, "too many failed authentications from this address; wait %s", wait.Round(time.Second))
			}
			if secret == "" {
				refuse(c)
				s.guesses.failed(ip, time.Now())
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="kefu"`)
				return engine.Errorf(engine.Unauthorized, "an API key is needed: send it as Authorization: Bearer KEY or X-API-Key")
			}
			k := s.keys.lookup(secret)
			if k == nil {
				refuse(c)
				s.guesses.failed(ip, time.Now())
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="kefu"`)
				return engine.Errorf(engine.Unauthorized, "unknown API key")
			}
			c.Set(ctxActor, k.Name)
			c.Set(ctxKey, k)
			// The key's rate counts every request it makes, refused ones too.
			if k.Rate > 0 {
				if ok, wait := s.cfg.Limiter.Allow(c.Request().Context(), k.Name, k.Rate, k.Burst); !ok {
					c.Response().Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
					return engine.Errorf(engine.RateLimited, "key %q is over its rate of %g requests/s", k.Name, k.Rate)
				}
			}
			if !slices.Contains(roles, k.Role) && k.Role != RoleAdmin {
				refuse(c)
				return engine.Errorf(engine.Forbidden, "key %q has role %s; this needs %s", k.Name, k.Role, joinRoles(roles))
			}
			return next(c)
		}
	}
}

func joinRoles(roles []Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, " or ")
}
