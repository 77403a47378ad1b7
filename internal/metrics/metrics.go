// Package metrics holds the server's Prometheus metrics: tool calls,
// upstream requests, runs, credits charged and waits. No label carries a
// key, a prompt's text or an input: labels are tool names, API names,
// route templates, statuses and outcomes. Every method is safe on a nil
// *Metrics, which records nothing (metrics are off by default).
package metrics

import (
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one set of the server's metrics, in a registry of its own.
type Metrics struct {
	reg         *prometheus.Registry
	toolCalls   *prometheus.CounterVec
	toolSeconds *prometheus.HistogramVec
	upstream    *prometheus.CounterVec
	upSeconds   *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec
	runs        *prometheus.CounterVec
	credits     *prometheus.CounterVec
	waiting     *prometheus.GaugeVec
	waitSeconds *prometheus.HistogramVec
	storeOps    *prometheus.HistogramVec
	storeErrors *prometheus.CounterVec
	mu          sync.Mutex
	ended       map[string]bool // runs whose end was counted
}

// New returns the metrics, with the Go runtime's and the process's.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), ended: map[string]bool{}}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.toolCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bpmcp_tool_calls_total",
		Help: "Tool calls by tool and outcome (ok, tool_error: an isError result, protocol_error)."}, []string{"tool", "outcome"})
	m.toolSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bpmcp_tool_call_seconds",
		Help: "Duration of tool calls, waits included.", Buckets: []float64{.01, .05, .1, .5, 1, 5, 15, 30, 60, 120, 600}}, []string{"tool"})
	m.upstream = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bpmcp_upstream_requests_total",
		Help: "Requests to the upstream APIs by API, method, route template and HTTP status (0: no answer)."},
		[]string{"api", "method", "route", "status"})
	m.upSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bpmcp_upstream_request_seconds",
		Help: "Duration of upstream requests.", Buckets: prometheus.DefBuckets}, []string{"api", "method", "route"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bpmcp_upstream_429_total",
		Help: "429 answers seen from the upstream APIs."}, []string{"api"})
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bpmcp_runs_total",
		Help: "Runs and generations by API and event: started, succeeded, failed, not_started, unconfirmed."}, []string{"api", "event"})
	m.credits = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bpmcp_credits_charged_total",
		Help: "Credits charged by the runs this server saw end."}, []string{"api"})
	m.waiting = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bpmcp_waits_in_progress",
		Help: "Calls waiting for a run, a generation or a turn."}, []string{"api"})
	m.waitSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bpmcp_wait_seconds",
		Help: "How long calls waited for runs.", Buckets: []float64{.1, .5, 1, 5, 15, 30, 45, 60, 120, 300, 600}}, []string{"api"})
	m.storeOps = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bpmcp_store_operation_seconds",
		Help: "Latency of shared-state store operations.", Buckets: []float64{.0005, .001, .0025, .005, .01, .05, .1, .5}}, []string{"op"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bpmcp_store_errors_total",
		Help: "Failed shared-state store operations."}, []string{"op"})
	for _, c := range []prometheus.Collector{m.toolCalls, m.toolSeconds, m.upstream, m.upSeconds, m.rateLimited, m.runs,
		m.credits, m.waiting, m.waitSeconds, m.storeOps, m.storeErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ToolCall records one tool call.
func (m *Metrics) ToolCall(tool, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.toolCalls.WithLabelValues(tool, outcome).Inc()
	m.toolSeconds.WithLabelValues(tool).Observe(d.Seconds())
}

// idSegment matches the parts of a path that are ids, not route.
var idSegment = regexp.MustCompile(`/(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|job_[^/]+)(/|$)`)

// Route turns a request path into its template: ids become {id}.
func Route(path string) string {
	for {
		r := idSegment.ReplaceAllString(path, "/{id}$1")
		if r == path {
			return r
		}
		path = r
	}
}

// Upstream records one request to an upstream API; route is a template.
func (m *Metrics) Upstream(api, method, route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.upstream.WithLabelValues(api, method, route, strconv.Itoa(status)).Inc()
	m.upSeconds.WithLabelValues(api, method, route).Observe(d.Seconds())
	if status == http.StatusTooManyRequests {
		m.rateLimited.WithLabelValues(api).Inc()
	}
}

// RunStarted records a run or generation the upstream accepted.
func (m *Metrics) RunStarted(api string) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(api, "started").Inc()
}

// RunEnded records once how a run ended (succeeded, failed, not_started,
// unconfirmed) and what it charged (credits < 0: unknown).
func (m *Metrics) RunEnded(api, id, event string, credits int) {
	if m == nil || id == "" {
		return
	}
	m.mu.Lock()
	seen := m.ended[api+"/"+id]
	if !seen {
		if len(m.ended) >= 100000 {
			m.ended = map[string]bool{} // bounded: a run seen again after this counts again
		}
		m.ended[api+"/"+id] = true
	}
	m.mu.Unlock()
	if seen {
		return
	}
	m.runs.WithLabelValues(api, event).Inc()
	if credits > 0 {
		m.credits.WithLabelValues(api).Add(float64(credits))
	}
}

// Waiting records a call that starts waiting; the returned function
// records its end.
func (m *Metrics) Waiting(api string) (done func()) {
	if m == nil {
		return func() {}
	}
	start := time.Now()
	g := m.waiting.WithLabelValues(api)
	g.Inc()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.Dec()
			m.waitSeconds.WithLabelValues(api).Observe(time.Since(start).Seconds())
		})
	}
}

// StoreOp records one shared-state store operation.
func (m *Metrics) StoreOp(op string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.storeOps.WithLabelValues(op).Observe(d.Seconds())
	if err != nil {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}
