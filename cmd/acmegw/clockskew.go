package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acmegw/acmegw/storage"
)

// maxClockSkew is how far this instance's clock may be from Redis's before
// serve warns. Used-nonce marks outlive their nonces by a minute
// (acme's nonceMarkSlack); two instances each within this of Redis are
// within twice this of each other, well inside that minute.
const maxClockSkew = 10 * time.Second

// clockSkewBack is how close the clocks must come again before a skew that
// went beyond maxClockSkew counts as over: a skew hovering at the limit
// would otherwise log a warning and its end at every check.
const clockSkewBack = maxClockSkew * 4 / 5

// clockSkewInterval is how often serve re-reads Redis's clock after the
// start-up check: clocks drift, or get stepped, while an instance runs,
// and a rate-limit check that spends nothing decides on this instance's
// clock. Once a minute costs one TIME round trip.
const clockSkewInterval = time.Minute

// clockSkewReminder is how often the warning is repeated while the skew
// stays beyond maxClockSkew: once per change would be forgotten in a log
// that runs for weeks, once per check would flood it.
const clockSkewReminder = time.Hour

// clockSkewer is a store that can measure this instance's clock against
// its own (redis.Store); the memory store has no other clock to compare.
type clockSkewer interface {
	ClockSkew(context.Context) (time.Duration, error)
}

// startClockSkewCheck checks this instance's clock against the store's
// now, then again every interval until ctx ends or the returned stop is
// called; stop waits for the check loop to return, so call it before
// closing the store. The last measured skew is exported on reg as
// acmegw_clock_skew_seconds. Stores that cannot tell get neither the
// gauge nor the loop.
func startClockSkewCheck(ctx context.Context, store storage.Store, log *slog.Logger, reg prometheus.Registerer, interval time.Duration) (stop func()) {
	c, ok := store.(clockSkewer)
	if !ok {
		return func() {}
	}
	m := &clockSkewMonitor{store: c, log: log, gauge: &clockSkewGauge{}}
	reg.MustRegister(m.gauge)
	m.check(ctx, time.Now())

	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	ticker := time.NewTicker(interval)
	go func() {
		defer close(done)
		defer ticker.Stop()
		m.run(ctx, ticker.C)
	}()
	return func() {
		cancel()
		<-done
	}
}

// clockSkewMonitor measures the skew and logs only its changes: a warning
// when it goes beyond maxClockSkew, repeated every clockSkewReminder while
// it stays there, and a line when it comes back.
type clockSkewMonitor struct {
	store clockSkewer
	log   *slog.Logger
	gauge *clockSkewGauge

	// skewed is whether the last measurement was beyond maxClockSkew;
	// skewedSince and warnedAt are when that began and when it was last
	// warned about. Only the goroutine running check uses them.
	skewed      bool
	skewedSince time.Time
	warnedAt    time.Time
}

// run checks the skew on every tick until ctx ends. Each tick's time is
// taken as the time of its check, so tests can drive it with a channel
// and times of their own.
func (m *clockSkewMonitor) run(ctx context.Context, ticks <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticks:
			m.check(ctx, now)
		}
	}
}

// check measures the skew once, at now, updates the gauge and logs a change.
// A failed read (Redis services may refuse TIME) is no news: it keeps the
// gauge and the state of the last good measurement, and the gauge's
// timestamp series shows how old that is.
func (m *clockSkewMonitor) check(ctx context.Context, now time.Time) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	skew, err := m.store.ClockSkew(ctx)
	if err != nil {
		m.log.Debug("could not read Redis's clock", "err", err)
		return
	}
	m.gauge.set(skew, now)
	rounded := skew.Round(time.Millisecond)
	msg := clockSkewWarning(skew)
	switch {
	case msg != "" && !m.skewed:
		m.skewed, m.skewedSince, m.warnedAt = true, now, now
		m.log.Warn(msg, "clock_skew", rounded)
	case msg != "" && now.Sub(m.warnedAt) >= clockSkewReminder:
		m.warnedAt = now
		m.log.Warn(msg, "clock_skew", rounded, "skewed_for", now.Sub(m.skewedSince).Round(time.Second))
	case m.skewed && skew.Abs() <= clockSkewBack:
		m.skewed = false
		m.log.Info("this instance's clock is back within "+clockSkewBack.String()+" of Redis's",
			"clock_skew", rounded, "skewed_for", now.Sub(m.skewedSince).Round(time.Second))
	default:
		m.log.Debug("clock checked against Redis's", "clock_skew", rounded)
	}
}

// clockSkewWarning is the warning for a clock skew (local minus Redis),
// or "" if it is within maxClockSkew.
func clockSkewWarning(skew time.Duration) string {
	if skew.Abs() <= maxClockSkew {
		return ""
	}
	return "this instance's clock and Redis's differ by more than " + maxClockSkew.String() +
		"; synchronize every instance's clock (NTP): nonce replay protection needs instance clocks within a minute of each other, or a nonce used on one instance can be replayed on another," +
		" and rate-limit checks that spend nothing decide on this instance's clock while spends use Redis's, so they disagree"
}

var clockSkewDesc = prometheus.NewDesc("acmegw_clock_skew_seconds",
	"This instance's clock minus Redis's (TIME), in seconds, as last measured (at start-up, then every minute); "+
		"nonce replay protection and rate-limit checks need it within "+maxClockSkew.String()+". Absent until a measurement succeeds.",
	nil, nil)

var clockSkewMeasuredDesc = prometheus.NewDesc("acmegw_clock_skew_measured_timestamp_seconds",
	"When acmegw_clock_skew_seconds was last measured, in Unix seconds. A failed read of Redis's clock keeps the last "+
		"measurement, so alert on its age (time() minus this) as well as on the skew.",
	nil, nil)

// clockSkewGauge is the acmegw_clock_skew_seconds gauge and the time it was
// measured. Unlike a prometheus.Gauge it reports nothing until the first
// measurement, so a Redis that refuses TIME does not read as a perfectly
// synchronized one.
type clockSkewGauge struct {
	mu       sync.Mutex
	measured time.Time // zero until the first measurement
	skew     time.Duration
}

func (g *clockSkewGauge) set(skew time.Duration, at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.measured, g.skew = at, skew
}

// Describe implements prometheus.Collector.
func (g *clockSkewGauge) Describe(ch chan<- *prometheus.Desc) {
	ch <- clockSkewDesc
	ch <- clockSkewMeasuredDesc
}

// Collect implements prometheus.Collector.
func (g *clockSkewGauge) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	measured, skew := g.measured, g.skew
	g.mu.Unlock()
	if !measured.IsZero() {
		ch <- prometheus.MustNewConstMetric(clockSkewDesc, prometheus.GaugeValue, skew.Seconds())
		ch <- prometheus.MustNewConstMetric(clockSkewMeasuredDesc, prometheus.GaugeValue, float64(measured.UnixNano())/1e9)
	}
}
