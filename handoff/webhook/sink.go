package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Received is one delivery a Sink accepted.
type Received struct {
	Key  string          `json:"key"`
	Kind string          `json:"kind"`
	Body json.RawMessage `json:"body"`
	At   time.Time       `json:"at"`
}

// Sink receives deliveries as a handoff API should: it verifies the signature and the
// timestamp (401 with the reason when wrong or outside the tolerance), refuses a replay
// (the very same signed request again: 401), keeps one delivery per webhook-id (a retry,
// signed anew, is answered 200 and not kept again) and reports each new one to Print.
type Sink struct {
	// Secrets verify; any one of them may have signed (key rotation).
	Secrets [][]byte
	Print   func(Received) // may be nil
	// Tolerance for timestamps; default 5 minutes.
	Tolerance time.Duration

	mu       sync.Mutex
	seen     map[string]bool      // webhook-id
	replays  map[string]time.Time // webhook-signature seen → when it can be forgotten
	received []Received
	repeats  int
}

// ServeHTTP accepts POSTed deliveries.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST deliveries here", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	tol := s.Tolerance
	if tol == 0 {
		tol = 5 * time.Minute
	}
	now := time.Now()
	if err := Verify(s.Secrets, r.Header, body, now, tol); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var typed struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &typed); err != nil || typed.Type == "" {
		http.Error(w, "the body must be a JSON object with a type", http.StatusBadRequest)
		return
	}
	key := r.Header.Get(HeaderID)
	rec := Received{Key: key, Kind: typed.Type, Body: body, At: now}
	s.mu.Lock()
	if s.seen == nil {
		s.seen, s.replays = map[string]bool{}, map[string]time.Time{}
	}
	for sig, until := range s.replays { // a signature older than the tolerance cannot come back
		if now.After(until) {
			delete(s.replays, sig)
		}
	}
	sig := r.Header.Get(HeaderSignature)
	if _, replayed := s.replays[sig]; replayed {
		s.mu.Unlock()
		http.Error(w, "replayed: this signed request was received before", http.StatusUnauthorized)
		return
	}
	s.replays[sig] = now.Add(2 * tol)
	fresh := !s.seen[key]
	if fresh {
		s.seen[key] = true
		s.received = append(s.received, rec)
	} else {
		s.repeats++
	}
	s.mu.Unlock()
	if fresh && s.Print != nil {
		s.Print(rec)
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"accepted":%t}`+"\n", fresh)
}

// Received returns the deliveries kept so far, in arrival order, and how many repeats of
// known keys came in.
func (s *Sink) Received() ([]Received, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...), s.repeats
}
