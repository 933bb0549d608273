package webhook_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/handoff"
	"github.com/kefu-ai/kefu/handoff/webhook"
)

func TestSignatureIsHMACOverTimestampAndBody(t *testing.T) {
	// printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
	want := "sha256=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
	got := webhook.Sign([]byte("s3cret"), 1700000000, []byte(`{"a":1}`))
	if got != want {
		t.Fatalf("signature %q, want %q", got, want)
	}
	now := time.Unix(1700000010, 0)
	body := []byte(`{"a":1}`)
	if err := webhook.Verify([]byte("s3cret"), "1700000000", got, body, now, time.Minute); err != nil {
		t.Fatalf("own signature refused: %v", err)
	}
	for name, tc := range map[string]struct {
		secret, ts, sig string
		body            []byte
	}{
		"other secret":  {"other", "1700000000", got, body},
		"tampered body": {"s3cret", "1700000000", got, []byte(`{"a":2}`)},
		"other time":    {"s3cret", "1700000001", got, body},
		"too old":       {"s3cret", "1699990000", webhook.Sign([]byte("s3cret"), 1699990000, body), body},
		"no timestamp":  {"s3cret", "", got, body},
	} {
		if err := webhook.Verify([]byte(tc.secret), tc.ts, tc.sig, tc.body, now, time.Minute); !errors.Is(err, webhook.ErrSignature) {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
}

func TestSenderAndSinkKeepOnePerKey(t *testing.T) {
	sink := &webhook.Sink{Secret: []byte("k")}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	good := &webhook.Sender{URL: srv.URL, Secret: []byte("k")}
	d := handoff.Delivery{Key: "conv:handoff:1", Kind: "handoff", Body: []byte(`{"type":"handoff"}`)}
	for range 3 {
		if err := good.Deliver(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	got, repeats := sink.Received()
	if len(got) != 1 || repeats != 2 || got[0].Key != d.Key || got[0].Kind != "handoff" {
		t.Fatalf("received %+v, repeats %d", got, repeats)
	}
	bad := &webhook.Sender{URL: srv.URL, Secret: []byte("wrong")}
	if err := bad.Deliver(context.Background(), d); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("a wrongly signed delivery must be refused: %v", err)
	}
}
