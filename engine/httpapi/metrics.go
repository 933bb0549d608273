package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kefu-ai/kefu/engine"
)

// metrics are the server's Prometheus series, in a registry of its own (several servers
// may run in one process, as they do in tests). client_golang writes the exposition
// format; the Go runtime and process collectors give the go_* and process_* series that
// standard dashboards and alerts expect (process_cpu_seconds_total gives CPU per request).
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	intents  *prometheus.CounterVec
	replies  *prometheus.CounterVec
	handoffs *prometheus.CounterVec
	kb       *prometheus.CounterVec
}

// durationBuckets suit a service that answers in about a millisecond: 100 µs to 10 s.
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kefu_http_requests_total", Help: "HTTP requests by method, route and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kefu_http_request_duration_seconds", Help: "HTTP request latency by route.", Buckets: durationBuckets,
		}, []string{"route"}),
		intents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kefu_intents_total", Help: "Customer messages by understood intent.",
		}, []string{"intent"}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kefu_replies_total", Help: "Customer messages by what answered them.",
		}, []string{"source"}),
		handoffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kefu_handoffs_total", Help: "Conversations handed to people, by reason.",
		}, []string{"reason"}),
		kb: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kefu_knowledge_base_answers_total", Help: "Knowledge-base fallbacks, found or not.",
		}, []string{"result"}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.intents, m.replies, m.handoffs, m.kb,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&engineCollector{s})
	for _, r := range []string{"found", "not_found"} {
		m.kb.WithLabelValues(r)
	}
	return m
}

// methods are the HTTP methods counted by name; any other is "other", so a client cannot
// add series by inventing method names.
var methods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true, "PATCH": true, "OPTIONS": true}

func (m *metrics) request(method, route string, status int, d time.Duration) {
	if !methods[method] {
		method = "other"
	}
	if route == "" || status == http.StatusNotFound && route == "/*" {
		route = "unknown"
	}
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) turn(r *engine.MessageResult) {
	m.intents.WithLabelValues(r.Intent.Name).Inc()
	m.replies.WithLabelValues(r.Source).Inc()
	if r.Source == "handoff" && r.Handoff != nil && len(r.Messages) > 0 {
		m.handoffs.WithLabelValues(r.Handoff.Reason).Inc()
	}
	if r.KB != nil {
		m.kb.WithLabelValues("found").Inc()
	} else if r.Source == "clarify" {
		m.kb.WithLabelValues("not_found").Inc()
	}
}

// engineCollector reads what changes outside requests at scrape time: what is running
// (kefu_build_info; a reload changes the bot) and the queues' depths.
type engineCollector struct{ s *Server }

var (
	buildInfoDesc = prometheus.NewDesc("kefu_build_info", "kefu's version, the loaded model and bot; always 1.",
		[]string{"version", "model", "model_version", "bot"}, nil)
	outboxDesc = prometheus.NewDesc("kefu_outbox_depth", "Handoff deliveries waiting or being retried.", nil, nil)
	queueDesc  = prometheus.NewDesc("kefu_model_queue_depth", "Texts waiting for the model.", nil, nil)
)

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- buildInfoDesc
	ch <- outboxDesc
	ch <- queueDesc
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	eng := c.s.eng
	model, bot := eng.Model(), ""
	if m := eng.Bot(); m != nil {
		bot = m.Bot().Name
	}
	ch <- prometheus.MustNewConstMetric(buildInfoDesc, prometheus.GaugeValue, 1, c.s.cfg.Version, model.Name, model.Version, bot)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if n, err := eng.OutboxDepth(ctx); err == nil { // an unreachable store leaves the series out
		ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, float64(n))
	}
	if n, ok := eng.ModelQueueDepth(); ok {
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(n))
	}
}

func (s *Server) metricsHandler() echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
}
