package httpapi_test

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/engine/httpapi"
	"github.com/kefu-ai/kefu/internal/testenv"
)

// TestRateLimitHoldsAcrossNodes: one key at 20 requests/s (burst 1), 100 requests spread
// over one second, alternating between two nodes. With the Redis limiter the two nodes
// accept about 20 in all, the rest 429 with Retry-After; each node keeping its own bucket
// (the in-process limiter) would accept about twice that.
func TestRateLimitHoldsAcrossNodes(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	clf, _ := bundleModelAndKB(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	keys := []httpapi.Key{{Name: "widget", Role: httpapi.RoleClient, Secret: clientKey, Rate: 20, Burst: 1}}
	run := func(limiters [2]httpapi.Limiter) (accepted int, expected float64) {
		var urls [2]string
		for i, lim := range limiters {
			api, err := httpapi.New(engine.New(engine.Config{NLU: clf}), httpapi.Config{Logger: log, Keys: keys, Limiter: lim})
			if err != nil {
				t.Fatal(err)
			}
			urls[i] = contractServer(t, api).URL
		}
		start := time.Now()
		for i := range 100 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * 10 * time.Millisecond)))
			req, _ := http.NewRequest("POST", urls[i%2]+"/v1/nlu/parse", strings.NewReader(`{"text":"where is my order"}`))
			req.Header.Set("Authorization", "Bearer "+clientKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				accepted++
			case 429:
				if resp.Header.Get("Retry-After") == "" {
					t.Errorf("a 429 without Retry-After")
				}
			default:
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
		// GCRA lets one request through every 50 ms, plus the burst of one.
		return accepted, time.Since(start).Seconds()*20 + 1
	}
	p := strings.TrimSuffix(prefix, ":")
	shared, want := run([2]httpapi.Limiter{httpapi.NewRedisLimiter(rdb, p, log), httpapi.NewRedisLimiter(rdb, p, log)})
	if float64(shared) < 0.75*want || float64(shared) > 1.25*want {
		t.Errorf("two nodes sharing the limit in Redis accepted %d, want about %.0f", shared, want)
	}
	local, want := run([2]httpapi.Limiter{httpapi.NewLocalLimiter(), httpapi.NewLocalLimiter()})
	// Each node sees a request every 20 ms and takes the first one 50 ms after the last it
	// took, so about one in three: 1.67 times a single bucket's share in all.
	if float64(local) < 1.3*want {
		t.Errorf("per-process limits accepted only %d (want about twice %.0f): the test cannot tell shared limits apart", local, want)
	}
	t.Logf("accepted: %d with Redis, %d with one bucket per node (%.0f expected for one bucket)", shared, local, want)
}
