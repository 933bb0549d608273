package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kefu-ai/kefu/handoff"
	"github.com/kefu-ai/kefu/handoff/webhook"
)

// handoffSink runs `kefu handoff-sink`: a receiver that verifies handoff signatures and
// prints each handoff, plus the demo bot's order backend (/demo/...).
func handoffSink(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("handoff-sink", "[flags]", stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "address to listen on")
	secretEnv := fs.String("secret-env", "KEFU_HANDOFF_SECRET", "environment variable holding the signing secrets, separated by spaces or commas, each raw or whsec_BASE64; any one verifies (unset: the development secret, loopback only)")
	demo := fs.Bool("demo-backend", true, "also serve the demo bot's order backend under /demo/")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	secrets := [][]byte{[]byte(devSecret)}
	if list := os.Getenv(*secretEnv); list != "" {
		var err error
		if secrets, err = webhook.ParseSecrets(list); err != nil {
			return fmt.Errorf("$%s: %v", *secretEnv, err)
		}
		for i, s := range secrets {
			if len(s) < MinSecretBytes && !loopback(*addr) {
				return fmt.Errorf("$%s: secret %d is %d bytes; listening on %s needs at least %d", *secretEnv, i+1, len(s), *addr, MinSecretBytes)
			}
		}
	} else {
		if !loopback(*addr) {
			return fmt.Errorf("$%s is empty: set the signing secret to listen on %s", *secretEnv, *addr)
		}
		fmt.Fprintf(stderr, "handoff-sink: $%s is empty; verifying with the development secret\n", *secretEnv)
	}
	sink := &webhook.Sink{Secrets: secrets, Print: func(r webhook.Received) { printDelivery(stdout, r) }}
	mux := http.NewServeMux()
	mux.Handle("/handoff", sink)
	if *demo {
		mux.HandleFunc("GET /demo/orders/{id}", demoOrder)
		mux.HandleFunc("POST /demo/refunds", demoTicket("refund_id", "RF"))
		mux.HandleFunc("POST /demo/address", demoTicket("ticket", "AD"))
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "handoff-sink: listening on http://%s/handoff\n", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// printDelivery prints a handoff as a readable block (other deliveries on one line).
// Everything a customer could have typed goes through safe, so no text can move the
// terminal's cursor, change its colours or start a line of its own.
func printDelivery(w io.Writer, r webhook.Received) {
	if r.Kind != handoff.KindHandoff {
		fmt.Fprintf(w, "%s %s %s\n", r.At.Format(time.TimeOnly), safe(r.Kind), safe(string(r.Body)))
		return
	}
	var p handoff.Payload
	json.Unmarshal(r.Body, &p)
	fmt.Fprintf(w, "=== handoff %s: conversation %s, reason %s, priority %s, queue %s [%s], customer %s (%s)\n",
		safe(r.Key), safe(p.Conversation), safe(p.Reason), safe(p.Priority), safe(p.Queue), safe(strings.Join(p.Skills, " ")), safe(p.Customer.ID), safe(p.Customer.Tier))
	slots := make([]string, 0, len(p.Slots))
	for _, k := range slices.Sorted(maps.Keys(p.Slots)) {
		slots = append(slots, safe(k)+"="+safe(p.Slots[k]))
	}
	fmt.Fprintf(w, "    summary: %s\n    slots: %s\n", safe(p.Summary), strings.Join(slots, " "))
	for _, t := range p.Transcript {
		fmt.Fprintf(w, "    customer: %s  [%s, %s]\n", safe(t.Text), safe(t.Intent), safe(t.Emotion))
		for _, b := range t.Replies {
			fmt.Fprintf(w, "    bot:      %s\n", safe(b))
		}
	}
}

// safe writes control and format characters (escape sequences, newlines, direction
// marks) as Go escapes; letters of every script stay as they are.
func safe(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError || unicode.In(r, unicode.Zl, unicode.Zp):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// demoOrder answers an order lookup with a status derived from the order number; numbers
// ending in 0000 do not exist.
func demoOrder(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if strings.HasSuffix(id, "0000") {
		http.Error(w, `{"error":"no such order"}`, http.StatusNotFound)
		return
	}
	statuses := [][2]string{{"shipped", "已发货"}, {"out for delivery", "派送中"}, {"being packed", "正在打包"}}
	h := fnv.New32a()
	h.Write([]byte(id))
	st := statuses[h.Sum32()%uint32(len(statuses))]
	eta := time.Now().AddDate(0, 0, 1+int(h.Sum32()%3)).Format("2006-01-02")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"status_en": st[0], "status_zh": st[1], "eta": eta})
}

// demoTicket answers with a ticket number derived from the request.
func demoTicket(field, prefix string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		h := fnv.New32a()
		h.Write(body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{field: fmt.Sprintf("%s%08d", prefix, h.Sum32()%100000000)})
	}
}
