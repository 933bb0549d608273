package main

import (
	"cmp"
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

// benchHTTP drives a running `kefu serve` with concurrent conversations (closed loop:
// each sends its next message when the last is answered) or, with --rate, at a fixed
// arrival rate (open loop: latency counts from when each message was due, so a server that
// falls behind cannot hide its queue), and reports throughput, latency and, when /metrics
// answers, the server's CPU time per message.
func benchHTTP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench http", "[flags]", stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "the kefu server")
	levels := fs.String("conversations", "50,200", "concurrent conversations per run, comma-separated")
	duration := fs.Duration("duration", 10*time.Second, "how long each run lasts")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured load before each run")
	key := fs.String("key", os.Getenv("KEFU_API_KEY"), "client API key ($KEFU_API_KEY)")
	jsonOut := fs.String("json", "", "also write the figures to this JSON file")
	rates := fs.String("rate", "", "open loop: messages per second, comma-separated (e.g. 1000,2000); instead of --conversations")
	metricsKey := fs.String("metrics-key", os.Getenv("KEFU_METRICS_KEY"), "admin key for /metrics, to report the server's CPU per message ($KEFU_METRICS_KEY; default --key)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	mkey := cmp.Or(*metricsKey, *key)
	if *rates != "" {
		var runs []openRun
		for _, l := range strings.Split(*rates, ",") {
			rate, err := strconv.ParseFloat(strings.TrimSpace(l), 64)
			if err != nil || rate <= 0 {
				return fmt.Errorf("--rate: %q is not a positive number", l)
			}
			if *warmup > 0 {
				if _, err := openLoop(ctx, *url, *key, "", rate, *warmup, "w"); err != nil {
					return err
				}
			}
			r, err := openLoop(ctx, *url, *key, mkey, rate, *duration, "o")
			if err != nil {
				return err
			}
			runs = append(runs, r)
			cpu := "server CPU: no /metrics"
			if r.CPUPerMessageUS != nil {
				cpu = fmt.Sprintf("server CPU %.0f µs/message", *r.CPUPerMessageUS)
			}
			fmt.Fprintf(stdout, "rate %6.0f/s: %8.0f answered/s  p50 %6.2f ms  p99 %7.2f ms  errors %d  (%d sent in %.1fs; %s)\n",
				r.Rate, r.PerSecond, r.P50MS, r.P99MS, r.Errors, r.Sent, r.Seconds, cpu)
		}
		if *jsonOut != "" {
			data, _ := json.MarshalIndent(runs, "", "  ")
			return os.WriteFile(*jsonOut, append(data, '\n'), 0o644)
		}
		return nil
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

// openRun is one fixed-rate run.
type openRun struct {
	Rate            float64        `json:"rate_per_s"`
	Sent            int            `json:"sent"`
	Seconds         float64        `json:"seconds"`
	PerSecond       float64        `json:"answered_per_s"`
	P50MS           float64        `json:"p50_ms"`
	P99MS           float64        `json:"p99_ms"`
	Errors          int            `json:"errors"`
	Statuses        map[string]int `json:"statuses"`
	CPUPerMessageUS *float64       `json:"server_cpu_us_per_message,omitempty"` // nil without /metrics
}

// openLoop sends messages at rate for d: message i is due at start + i/rate, whatever the
// answers before it, and its latency counts from then. Consecutive messages follow the
// script of one conversation after another.
func openLoop(ctx context.Context, url, key, metricsKey string, rate float64, d time.Duration, tag string) (openRun, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	cpu0, cpuOK := serverCPU(ctx, client, url, metricsKey)
	stamp := time.Now().UnixNano()
	var mu sync.Mutex
	var lat []float64
	statuses := map[string]int{}
	var wg sync.WaitGroup
	start := time.Now()
	n := int(rate * d.Seconds())
	for i := range n {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		select {
		case <-time.After(time.Until(due)):
		case <-ctx.Done():
			return openRun{}, ctx.Err()
		}
		lines := script[(i/len(script[0]))%2]
		conv := fmt.Sprintf("open-%s-%d-%d", tag, stamp, i/len(lines))
		body := `{"text":` + strconv.Quote(lines[i%len(lines)]) + `,"channel":"bench"}`
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/conversations/"+conv+"/messages", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			status := "error"
			if resp, err := client.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				status = strconv.Itoa(resp.StatusCode)
			}
			ms := float64(time.Since(due).Microseconds()) / 1000
			mu.Lock()
			lat = append(lat, ms)
			statuses[status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	slices.Sort(lat)
	r := openRun{Rate: rate, Sent: n, Seconds: secs, PerSecond: float64(statuses["200"]) / secs, Statuses: statuses, Errors: failures(statuses)}
	if len(lat) > 0 {
		r.P50MS, r.P99MS = quantile(lat, 0.5), quantile(lat, 0.99)
	}
	if cpu1, ok := serverCPU(ctx, client, url, metricsKey); ok && cpuOK && n > 0 {
		us := (cpu1 - cpu0) / float64(n) * 1e6
		r.CPUPerMessageUS = &us
	}
	return r, nil
}

// serverCPU reads process_cpu_seconds_total from the server's /metrics.
func serverCPU(ctx context.Context, client *http.Client, url, key string) (float64, bool) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/metrics", nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != 200 {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "process_cpu_seconds_total "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
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
		P50MS: quantile(lat, 0.5), P99MS: quantile(lat, 0.99), Statuses: statuses, Errors: failures(statuses)}
	return r, nil
}

// failures counts the answers other than 200 (and the requests with no answer).
func failures(statuses map[string]int) int {
	n := 0
	for k, v := range statuses {
		if k != "200" {
			n += v
		}
	}
	return n
}
