package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// script is what one benchmark conversation says, in order: small talk, KB questions and a
// refund flow that is filled and then cancelled (no action calls, no handoffs), half in
// Chinese, half in English.
var script = [][]string{
	{"你好", "我想退款", "订单号 KF20261122", "收到的商品坏了", "不用了，取消吧", "退款多久能到账", "运费怎么算", "谢谢", "再见"},
	{"hello", "I want a refund", "order KF20261123", "it arrived broken", "no, cancel it", "how long does a refund take", "what payment methods do you accept", "thanks", "bye"},
}

// benchHTTP drives a running `kefu serve` with concurrent conversations and reports
// throughput and latency for each concurrency level.
func benchHTTP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench http", "[flags]", stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "the kefu server")
	levels := fs.String("conversations", "50,200", "concurrent conversations per run, comma-separated")
	duration := fs.Duration("duration", 10*time.Second, "how long each run lasts")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured load before each run")
	key := fs.String("key", os.Getenv("KEFU_API_KEY"), "client API key ($KEFU_API_KEY)")
	jsonOut := fs.String("json", "", "also write the figures to this JSON file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var runs []httpRun
	for _, l := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil || n < 1 {
			return fmt.Errorf("--conversations: %q is not a positive number", l)
		}
		if *warmup > 0 {
			if _, err := loadRun(ctx, *url, *key, n, *warmup, "w"); err != nil {
				return err
			}
		}
		r, err := loadRun(ctx, *url, *key, n, *duration, "b")
		if err != nil {
			return err
		}
		runs = append(runs, r)
		fmt.Fprintf(stdout, "%4d conversations: %8.0f messages/s  p50 %6.2f ms  p99 %6.2f ms  errors %d  (%d messages in %.1fs)\n",
			r.Conversations, r.PerSecond, r.P50MS, r.P99MS, r.Errors, r.Messages, r.Seconds)
	}
	if *jsonOut != "" {
		data, _ := json.MarshalIndent(runs, "", "  ")
		return os.WriteFile(*jsonOut, append(data, '\n'), 0o644)
	}
	return nil
}

type httpRun struct {
	Conversations int            `json:"conversations"`
	Messages      int            `json:"messages"`
	Seconds       float64        `json:"seconds"`
	PerSecond     float64        `json:"messages_per_s"`
	P50MS         float64        `json:"p50_ms"`
	P99MS         float64        `json:"p99_ms"`
	Errors        int            `json:"errors"`
	Statuses      map[string]int `json:"statuses"`
}

func loadRun(ctx context.Context, url, key string, n int, d time.Duration, tag string) (httpRun, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}, Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	stamp := time.Now().UnixNano()
	var mu sync.Mutex
	var lat []float64
	statuses := map[string]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lines := script[w%2]
			var mine []float64
			mineStatus := map[string]int{}
			for i := 0; ctx.Err() == nil; i++ {
				conv := fmt.Sprintf("bench-%s-%d-%d-%d", tag, stamp, w, i/len(lines))
				body := `{"text":` + strconv.Quote(lines[i%len(lines)]) + `,"channel":"bench","customer":{"id":"bench-` + strconv.Itoa(w) + `"}}`
				req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/conversations/"+conv+"/messages", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if key != "" {
					req.Header.Set("Authorization", "Bearer "+key)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if ctx.Err() != nil {
					if resp != nil {
						resp.Body.Close()
					}
					break
				}
				if err != nil {
					mineStatus["error"]++
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mine = append(mine, float64(time.Since(t0).Microseconds())/1000)
				mineStatus[strconv.Itoa(resp.StatusCode)]++
			}
			mu.Lock()
			lat = append(lat, mine...)
			for k, v := range mineStatus {
				statuses[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	client.CloseIdleConnections()
	if len(lat) == 0 {
		return httpRun{}, fmt.Errorf("no answer from %s: %v", url, statuses)
	}
	slices.Sort(lat)
	r := httpRun{Conversations: n, Messages: len(lat), Seconds: secs, PerSecond: float64(statuses["200"]) / secs,
		P50MS: quantile(lat, 0.5), P99MS: quantile(lat, 0.99), Statuses: statuses}
	for k, v := range statuses {
		if k != "200" {
			r.Errors += v
		}
	}
	return r, nil
}
