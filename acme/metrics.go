package acme

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the Prometheus series of one Server. Labels are bounded sets
// (route templates, problem types, challenge types) so cardinality stays flat.
type metrics struct {
	registry    *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	orders      *prometheus.CounterVec
	validations *prometheus.CounterVec
	storeErrors prometheus.Counter
	problems    *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "acmegw_http_requests_total", Help: "ACME requests by endpoint, method and HTTP status.",
		}, []string{"endpoint", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "acmegw_http_request_duration_seconds", Help: "ACME request latency by endpoint.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"endpoint"}),
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "acmegw_orders_total", Help: "Orders reaching a stored state (pending, processing, valid, invalid; ready is derived on read), by state and brand.",
		}, []string{"state", "brand"}),
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "acmegw_validations_total", Help: "Challenge validations by type and result.",
		}, []string{"type", "result"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "acmegw_storage_errors_total", Help: "Requests failed because the store (Redis) was unreachable or failing.",
		}),
		problems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "acmegw_problems_total", Help: "Problem documents sent, by ACME error type.",
		}, []string{"type"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.orders, m.validations, m.storeErrors, m.problems,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// Registerer is the registry behind the Server's /metrics, for series the
// process keeps outside acme (serve's clock-skew gauge) to be served with
// acme's own.
func (s *Server) Registerer() prometheus.Registerer { return s.metrics.registry }

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

func (m *metrics) observeRequest(endpoint, method string, status int, d time.Duration) {
	if endpoint == "" {
		endpoint = "unmatched"
	}
	m.requests.WithLabelValues(endpoint, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(endpoint).Observe(d.Seconds())
}

// routeLabel records the matched route template for the request's metrics.
func routeLabel(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rl, ok := r.Context().Value(logKey{}).(*requestLog); ok {
			if route := mux.CurrentRoute(r); route != nil {
				rl.endpoint, _ = route.GetPathTemplate()
			}
		}
		next.ServeHTTP(w, r)
	})
}
