// Package webhook sends kefu's handoff deliveries to the handoff API over HTTP, signed in
// the Standard Webhooks format (https://www.standardwebhooks.com, spec v1), and receives
// them (Sink, behind `kefu handoff-sink`).
//
// Every request carries:
//
//	webhook-id:         the delivery's key: the idempotency key, the same on every attempt
//	webhook-timestamp:  Unix seconds of this attempt
//	webhook-signature:  v1,BASE64(HMAC-SHA256(secret, id + "." + timestamp + "." + body)),
//	                    one per configured secret, separated by spaces (key rotation)
//
// The body's "type" says what it is (handoff or message), so the id, the kind and the
// content are all signed.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kefu-ai/kefu/handoff"
)

// Header names (Standard Webhooks).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix marks a base64-encoded secret, as Standard Webhooks libraries expect them.
const secretPrefix = "whsec_"

// ParseSecrets reads a list of signing secrets separated by spaces or commas. A secret
// written whsec_BASE64 is those bytes (the form Standard Webhooks libraries take); any
// other is its own bytes. The first signs; all verify. Errors name the secret's position.
func ParseSecrets(list string) ([][]byte, error) {
	var out [][]byte
	for i, s := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		if b64, ok := strings.CutPrefix(s, secretPrefix); ok {
			key, err := base64.StdEncoding.DecodeString(b64)
			if err != nil || len(key) == 0 {
				return nil, fmt.Errorf("secret %d starts with whsec_ but the rest is not base64", i+1)
			}
			out = append(out, key)
			continue
		}
		out = append(out, []byte(s))
	}
	if len(out) == 0 {
		return nil, errors.New("no secret in the list")
	}
	return out, nil
}

// EncodeSecret writes key in the whsec_ form a Standard Webhooks library takes.
func EncodeSecret(key []byte) string { return secretPrefix + base64.StdEncoding.EncodeToString(key) }

// Sign returns the v1 signature of a delivery with id sent at ts.
func Sign(secret []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ErrSignature: a request's signature is missing, wrong or too old.
var ErrSignature = errors.New("bad signature")

// Verify checks the headers of a delivery: a timestamp within tolerance of now and a v1
// signature by one of secrets.
func Verify(secrets [][]byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id := h.Get(HeaderID)
	if id == "" {
		return fmt.Errorf("%w: no %s", ErrSignature, HeaderID)
	}
	ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no valid %s", ErrSignature, HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %d is more than %s away from now", ErrSignature, ts, tolerance)
	}
	given := strings.Fields(h.Get(HeaderSignature))
	for _, secret := range secrets {
		want := []byte(Sign(secret, id, ts, body))
		for _, sig := range given {
			if hmac.Equal(want, []byte(sig)) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: no signature matches", ErrSignature)
}

// Sender posts deliveries to URL.
type Sender struct {
	URL string
	// Secrets sign each delivery, one signature each (the first first): during a rotation
	// a receiver that knows either the old or the new secret verifies it.
	Secrets [][]byte
	Client  *http.Client // default a plain client; redirects are never followed; the outbox bounds each attempt
	Now     func() time.Time
}

// Deliver posts d once; an error (network, non-2xx status) means retry later.
func (s *Sender) Deliver(ctx context.Context, d handoff.Delivery) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(d.Body))
	if err != nil {
		return err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ts := now().Unix()
	sigs := make([]string, len(s.Secrets))
	for i, secret := range s.Secrets {
		sigs[i] = Sign(secret, d.Key, ts, d.Body)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderID, d.Key)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, strings.Join(sigs, " "))
	c := &http.Client{}
	if s.Client != nil {
		*c = *s.Client
	}
	// A redirect would re-send the signed transcript somewhere else: a 3xx is a failure.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
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
