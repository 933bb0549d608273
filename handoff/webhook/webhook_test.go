package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kefu-ai/kefu/handoff"
	"github.com/kefu-ai/kefu/handoff/webhook"
	"github.com/kefu-ai/kefu/internal/testenv"
)

func TestSignatureIsStandardWebhooksV1(t *testing.T) {
	// python3: base64.b64encode(hmac.new(b's3cret', b'msg_1.1700000000.{"a":1}', hashlib.sha256).digest())
	want := "v1,JTnXZsicQmbYBUKbG0PXd2OqV6VmCFiMTEvW8yxopSo="
	if got := webhook.Sign([]byte("s3cret"), "msg_1", 1700000000, []byte(`{"a":1}`)); got != want {
		t.Fatalf("signature %q, want %q", got, want)
	}
	body := []byte(`{"a":1}`)
	headers := func(id, ts, sig string) http.Header {
		return http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {sig}}
	}
	now := time.Unix(1700000010, 0)
	secrets := [][]byte{[]byte("new"), []byte("s3cret")} // the second verifies: rotation
	if err := webhook.Verify(secrets, headers("msg_1", "1700000000", "v1,bm9wZQ== "+want), body, now, time.Minute); err != nil {
		t.Fatalf("own signature refused: %v", err)
	}
	for name, h := range map[string]http.Header{
		"another id (replayed under a new key)": headers("msg_2", "1700000000", want),
		"another time":                          headers("msg_1", "1700000001", want),
		"too old":                               headers("msg_1", "1699990000", webhook.Sign([]byte("s3cret"), "msg_1", 1699990000, body)),
		"no timestamp":                          headers("msg_1", "", want),
		"no id":                                 headers("", "1700000000", want),
		"no signature":                          headers("msg_1", "1700000000", ""),
	} {
		if err := webhook.Verify(secrets, h, body, now, time.Minute); !errors.Is(err, webhook.ErrSignature) {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
	if err := webhook.Verify(secrets, headers("msg_1", "1700000000", want), []byte(`{"a":2}`), now, time.Minute); err == nil {
		t.Errorf("a tampered body was accepted")
	}
}

// TestReferenceLibraryVerifiesDeliveries: what kefu sends verifies with the Standard
// Webhooks reference Go library, under each secret of a rotation.
func TestReferenceLibraryVerifiesDeliveries(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, body = r, must(io.ReadAll(r.Body))
	}))
	defer srv.Close()
	oldKey, newKey := []byte("an old secret of thirty-two bytes!"), []byte("the new secret, also long enough")
	s := &webhook.Sender{URL: srv.URL, Secrets: [][]byte{newKey, oldKey}}
	d := handoff.Delivery{Key: "conv-1:handoff:abc", Kind: handoff.KindHandoff, Body: []byte(`{"type":"handoff","id":"conv-1:handoff:abc"}`)}
	if err := s.Deliver(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if got.Header.Get("webhook-id") != d.Key || len(strings.Fields(got.Header.Get("webhook-signature"))) != 2 {
		t.Fatalf("headers: %v", got.Header)
	}
	for _, key := range [][]byte{newKey, oldKey} {
		wh, err := standardwebhooks.NewWebhook(webhook.EncodeSecret(key))
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, got.Header); err != nil {
			t.Errorf("the reference library refuses kefu's delivery: %v", err)
		}
		if err := wh.Verify(bytes.Replace(body, []byte("abc"), []byte("abd"), 1), got.Header); err == nil {
			t.Errorf("the reference library accepted a tampered body")
		}
	}
	other, _ := standardwebhooks.NewWebhook(webhook.EncodeSecret([]byte("somebody else's secret, 32 bytes")))
	if err := other.Verify(body, got.Header); err == nil {
		t.Errorf("another secret verified")
	}
}

// TestSinkRefusesReplaysAndStaleDeliveries: a retry is accepted once; the same signed
// request again, a stale timestamp and a wrong secret get 401 with the reason.
func TestSinkRefusesReplaysAndStaleDeliveries(t *testing.T) {
	key := []byte("k-0123456789abcdef0123456789abcdef")
	sink := &webhook.Sink{Secrets: [][]byte{key}}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	d := handoff.Delivery{Key: "conv:handoff:1", Kind: "handoff", Body: []byte(`{"type":"handoff"}`)}
	clock := time.Now()
	good := &webhook.Sender{URL: srv.URL, Secrets: [][]byte{key}, Now: func() time.Time { clock = clock.Add(time.Second); return clock }}
	for range 3 { // retries, each signed anew
		if err := good.Deliver(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	got, repeats := sink.Received()
	if len(got) != 1 || repeats != 2 || got[0].Key != d.Key || got[0].Kind != "handoff" {
		t.Fatalf("received %+v, repeats %d", got, repeats)
	}
	post := func(h http.Header, body []byte) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL, bytes.NewReader(body))
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, string(must(io.ReadAll(resp.Body)))
	}
	signed := func(id string, at time.Time, secret []byte) http.Header {
		ts := at.Unix()
		return http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {strconv.FormatInt(ts, 10)}, "Webhook-Signature": {webhook.Sign(secret, id, ts, d.Body)}}
	}
	captured := signed("conv:handoff:2", time.Now(), key)
	if code, msg := post(captured, d.Body); code != 200 {
		t.Fatalf("a fresh delivery: %d %s", code, msg)
	}
	if code, msg := post(captured, d.Body); code != 401 || !strings.Contains(msg, "replayed") {
		t.Errorf("a replay: %d %s", code, msg)
	}
	if code, msg := post(signed("conv:handoff:3", time.Now().Add(-6*time.Minute), key), d.Body); code != 401 || !strings.Contains(msg, "timestamp") {
		t.Errorf("six minutes old: %d %s", code, msg)
	}
	if code, msg := post(signed("conv:handoff:4", time.Now(), []byte("wrong")), d.Body); code != 401 || !strings.Contains(msg, "no signature matches") {
		t.Errorf("wrong secret: %d %s", code, msg)
	}
	// A receiver signing with the reference library is understood by the sink too.
	wh, _ := standardwebhooks.NewWebhook(webhook.EncodeSecret(key))
	sig, _ := wh.Sign("conv:handoff:5", time.Now(), d.Body)
	h := http.Header{"Webhook-Id": {"conv:handoff:5"}, "Webhook-Timestamp": {strconv.FormatInt(time.Now().Unix(), 10)}, "Webhook-Signature": {sig}}
	if code, msg := post(h, d.Body); code != 200 {
		t.Errorf("signed by the reference library: %d %s", code, msg)
	}
	if got, _ := sink.Received(); len(got) != 3 {
		t.Errorf("kept %d deliveries, want 3", len(got))
	}
}

func TestParseSecrets(t *testing.T) {
	got, err := webhook.ParseSecrets("whsec_" + "c2VjcmV0LW9uZQ==" + ", plain-two  three")
	if err != nil || len(got) != 3 || string(got[0]) != "secret-one" || string(got[1]) != "plain-two" || string(got[2]) != "three" {
		t.Fatalf("%q %v", got, err)
	}
	for _, bad := range []string{"", " , ", "ok whsec_!!notbase64"} {
		if _, err := webhook.ParseSecrets(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := webhook.ParseSecrets("ok whsec_!!"); err == nil || !strings.Contains(err.Error(), "secret 2") {
		t.Errorf("the error must name the secret's position: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestREADMEPythonReceiverVerifies runs the README's Python receiver (standard library
// only) on a real delivery: it accepts it under either secret and refuses a tampered body.
func TestREADMEPythonReceiverVerifies(t *testing.T) {
	python := testenv.Tool(t, "python3")
	readme, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "<!-- test: webhook receiver")
	_, code, ok2 := strings.Cut(after, "```python\n")
	code, _, ok3 := strings.Cut(code, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README has no Python receiver block")
	}
	var hdr http.Header
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hdr, body = r.Header, must(io.ReadAll(r.Body)) }))
	defer srv.Close()
	newKey := []byte("rotated-in secret, thirty-two by")
	s := &webhook.Sender{URL: srv.URL, Secrets: [][]byte{newKey, []byte("the old secret")}}
	if err := s.Deliver(context.Background(), handoff.Delivery{Key: "c-1:handoff:9f", Body: []byte(`{"type":"handoff","id":"c-1:handoff:9f","summary":"退款"}`)}); err != nil {
		t.Fatal(err)
	}
	driver := code + `
import json, sys
headers = {k.lower(): v for k, v in json.loads(sys.argv[1]).items()}
body = open(sys.argv[2], "rb").read()
secret = sys.argv[3]
secret = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
try:
    verify([secret], headers, body)
    print("verified")
except ValueError as e:
    print("refused:", e)
`
	dir := t.TempDir()
	run := func(body []byte, secret string) string {
		file := filepath.Join(dir, "body")
		os.WriteFile(file, body, 0o600)
		flat := map[string]string{}
		for k := range hdr {
			flat[k] = hdr.Get(k)
		}
		out, err := exec.Command(python, "-c", driver, string(must(json.Marshal(flat))), file, secret).CombinedOutput()
		if err != nil {
			t.Fatalf("python: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run(body, webhook.EncodeSecret(newKey)); got != "verified" {
		t.Errorf("new secret (whsec_ form): %s", got)
	}
	if got := run(body, "the old secret"); got != "verified" {
		t.Errorf("old secret (raw): %s", got)
	}
	if got := run(bytes.Replace(body, []byte("退款"), []byte("退货"), 1), "the old secret"); got != "refused: no signature matches" {
		t.Errorf("tampered body: %s", got)
	}
}

// FuzzVerify: whatever headers and body arrive at a receiver, Verify answers without
// panicking, and accepts only what the secret signed.
func FuzzVerify(f *testing.F) {
	secret := []byte("fuzz-secret")
	f.Add("id-1", "1700000000", webhook.Sign(secret, "id-1", 1700000000, []byte("{}")), []byte("{}"))
	f.Add("", "", "", []byte(nil))
	f.Add("x", "-1", "v1, v1,,, v2,abc", []byte("x"))
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {sig}}
		err := webhook.Verify([][]byte{secret}, h, body, time.Unix(1700000000, 0), time.Minute)
		if err == nil {
			n, _ := strconv.ParseInt(ts, 10, 64)
			if !strings.Contains(sig, webhook.Sign(secret, id, n, body)) {
				t.Fatalf("accepted an unsigned delivery: %q %q %q", id, ts, sig)
			}
		}
	})
}

// TestDeliveriesDoNotFollowRedirects: a desk answering 307 elsewhere does not get the
// signed transcript re-sent there; the attempt fails and is retried later.
func TestDeliveriesDoNotFollowRedirects(t *testing.T) {
	var stolen int
	thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { stolen++ }))
	defer thief.Close()
	desk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, thief.URL, http.StatusTemporaryRedirect)
	}))
	defer desk.Close()
	s := &webhook.Sender{URL: desk.URL, Secrets: [][]byte{[]byte("k")}, Client: &http.Client{}}
	err := s.Deliver(context.Background(), handoff.Delivery{Key: "c:handoff:1", Body: []byte(`{"type":"handoff"}`)})
	if err == nil || !strings.Contains(err.Error(), "307") || stolen != 0 {
		t.Errorf("err %v, redirected deliveries %d", err, stolen)
	}
}
