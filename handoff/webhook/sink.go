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

// Sink receives deliveries: it verifies signatures (401 when wrong), keeps one per
// idempotency key (a repeat is answered 200 and not kept again), and reports each new one
// to Print. It is the receiving end for demos and tests; a real handoff API does the same.
type Sink struct {
	Secret []byte
	Print  func(Received) // may be nil
	// Tolerance for timestamps; default 5 minutes.
	Tolerance time.Duration

	mu       sync.Mutex
	seen     map[string]bool
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
	if err := Verify(s.Secret, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, time.Now(), tol); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	key := r.Header.Get(HeaderKey)
	if key == "" || !json.Valid(body) {
		http.Error(w, "an Idempotency-Key header and a JSON body are needed", http.StatusBadRequest)
		return
	}
	rec := Received{Key: key, Kind: r.Header.Get(HeaderKind), Body: body, At: time.Now()}
	s.mu.Lock()
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
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
