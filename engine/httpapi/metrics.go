package httpapi

import (
	"bufio"
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kefu-ai/kefu/engine"
)

// metrics are kept here and written in the Prometheus text format (version 0.0.4).
type metrics struct {
	mu       sync.Mutex
	requests map[[3]string]uint64 // method, route, status
	latency  map[string]*histogram
	intents  map[string]uint64
	sources  map[string]uint64
	handoffs map[string]uint64
	kb       map[string]uint64 // found, not_found
}

// Latency buckets, seconds.
var buckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

type histogram struct {
	counts []uint64 // per bucket, not cumulative; last is +Inf
	sum    float64
	n      uint64
}

func newMetrics() *metrics {
	return &metrics{requests: map[[3]string]uint64{}, latency: map[string]*histogram{}, intents: map[string]uint64{},
		sources: map[string]uint64{}, handoffs: map[string]uint64{}, kb: map[string]uint64{}}
}

func (m *metrics) request(method, route string, status int, d time.Duration) {
	if route == "" {
		route = "unknown"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[[3]string{method, route, strconv.Itoa(status)}]++
	h := m.latency[route]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(buckets)+1)}
		m.latency[route] = h
	}
	sec := d.Seconds()
	i, _ := slices.BinarySearch(buckets, sec)
	h.counts[i]++
	h.sum += sec
	h.n++
}

func (m *metrics) turn(r *engine.MessageResult) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.intents[r.Intent.Name]++
	m.sources[r.Source]++
	if r.Source == "handoff" && r.Handoff != nil && len(r.Messages) > 0 {
		m.handoffs[r.Handoff.Reason]++
	}
	if r.KB != nil {
		m.kb["found"]++
	} else if r.Source == "clarify" {
		m.kb["not_found"]++
	}
}

// write renders every metric; gauges are read now.
func (m *metrics) write(w *bufio.Writer, gauges map[string]float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	head := func(name, typ, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	head("kefu_http_requests_total", "counter", "HTTP requests by method, route and status.")
	for _, k := range slices.SortedFunc(maps.Keys(m.requests), func(a, b [3]string) int {
		return cmp.Or(cmp.Compare(a[1], b[1]), cmp.Compare(a[0], b[0]), cmp.Compare(a[2], b[2]))
	}) {
		fmt.Fprintf(w, "kefu_http_requests_total{method=%q,route=%q,status=%q} %d\n", k[0], esc(k[1]), k[2], m.requests[k])
	}
	head("kefu_http_request_duration_seconds", "histogram", "HTTP request latency by route.")
	for _, route := range slices.Sorted(maps.Keys(m.latency)) {
		h := m.latency[route]
		var cum uint64
		for i, b := range buckets {
			cum += h.counts[i]
			fmt.Fprintf(w, "kefu_http_request_duration_seconds_bucket{route=%q,le=%q} %d\n", esc(route), strconv.FormatFloat(b, 'g', -1, 64), cum)
		}
		fmt.Fprintf(w, "kefu_http_request_duration_seconds_bucket{route=%q,le=\"+Inf\"} %d\n", esc(route), h.n)
		fmt.Fprintf(w, "kefu_http_request_duration_seconds_sum{route=%q} %g\n", esc(route), h.sum)
		fmt.Fprintf(w, "kefu_http_request_duration_seconds_count{route=%q} %d\n", esc(route), h.n)
	}
	counter := func(name, help, label string, values map[string]uint64) {
		head(name, "counter", help)
		for _, k := range slices.Sorted(maps.Keys(values)) {
			fmt.Fprintf(w, "%s{%s=%q} %d\n", name, label, esc(k), values[k])
		}
	}
	counter("kefu_intents_total", "Customer messages by understood intent.", "intent", m.intents)
	counter("kefu_replies_total", "Customer messages by what answered them.", "source", m.sources)
	counter("kefu_handoffs_total", "Conversations handed to people, by reason.", "reason", m.handoffs)
	counter("kefu_kb_answers_total", "Knowledge-base fallbacks, found or not.", "result", m.kb)
	for _, name := range slices.Sorted(maps.Keys(gauges)) {
		head(name, "gauge", gaugeHelp[name])
		fmt.Fprintf(w, "%s %g\n", name, gauges[name])
	}
}

var gaugeHelp = map[string]string{
	"kefu_outbox_depth":      "Handoff deliveries waiting or being retried.",
	"kefu_model_queue_depth": "Texts waiting for the model.",
}

func esc(s string) string { return strings.ToValidUTF8(s, "?") }

func (s *Server) metricsHandler(c echo.Context) error {
	gauges := map[string]float64{}
	if n, err := s.eng.OutboxDepth(c.Request().Context()); err == nil {
		gauges["kefu_outbox_depth"] = float64(n)
	}
	if n, ok := s.eng.ModelQueueDepth(); ok {
		gauges["kefu_model_queue_depth"] = float64(n)
	}
	c.Response().Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	c.Response().WriteHeader(http.StatusOK)
	w := bufio.NewWriter(c.Response())
	s.metrics.write(w, gauges)
	return w.Flush()
}
