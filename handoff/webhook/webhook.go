// Package webhook sends kefu's handoff deliveries to the handoff API over HTTP, signed, and
// receives them (Sink, behind `kefu handoff-sink`).
//
// Every request carries:
//
//	Idempotency-Key:   the delivery's key (same on every attempt)
//	X-Kefu-Kind:       handoff | message
//	X-Kefu-Timestamp:  Unix seconds
//	X-Kefu-Signature:  sha256=HEX(HMAC-SHA256(secret, timestamp + "." + body))
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kefu-ai/kefu/handoff"
)

// Header names.
const (
	HeaderKey       = "Idempotency-Key"
	HeaderKind      = "X-Kefu-Kind"
	HeaderTimestamp = "X-Kefu-Timestamp"
	HeaderSignature = "X-Kefu-Signature"
)

// Sign returns the signature header value for body sent at ts.
func Sign(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "%d.", ts)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// ErrSignature: a request's signature is missing, wrong or too old.
var ErrSignature = errors.New("bad signature")

// Verify checks a request's signature and that its timestamp is within tolerance of now.
func Verify(secret []byte, tsHeader, sigHeader string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no valid %s", ErrSignature, HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %d is more than %s away", ErrSignature, ts, tolerance)
	}
	if !hmac.Equal([]byte(Sign(secret, ts, body)), []byte(sigHeader)) {
		return fmt.Errorf("%w: signature does not match", ErrSignature)
	}
	return nil
}

// Sender posts deliveries to URL.
type Sender struct {
	URL    string
	Secret []byte
	Client *http.Client // default http.DefaultClient; the outbox bounds each attempt
}

// Deliver posts d once; an error (network, non-2xx status) means retry later.
func (s *Sender) Deliver(ctx context.Context, d handoff.Delivery) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(d.Body))
	if err != nil {
		return err
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderKey, d.Key)
	req.Header.Set(HeaderKind, d.Kind)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(s.Secret, ts, d.Body))
	c := s.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("handoff API answered %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}
