package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acmegw/acmegw/internal/testlog"
	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/storage"
	"github.com/acmegw/acmegw/storage/memory"
)

// clockSkewWarningText is part of the warning every test looks for.
const clockSkewWarningText = "nonce replay protection needs instance clocks within a minute"

func TestClockSkewWarning(t *testing.T) {
	for _, c := range []struct {
		skew time.Duration
		warn bool
	}{
		{0, false},
		{300 * time.Millisecond, false},
		{-2 * time.Second, false},
		{10 * time.Second, false},
		{-10 * time.Second, false},
		{10*time.Second + time.Millisecond, true},
		{11 * time.Second, true},
		{-11 * time.Second, true},
		{5 * time.Minute, true},
		{-time.Hour, true},
	} {
		msg := clockSkewWarning(c.skew)
		if c.warn && (!strings.Contains(msg, clockSkewWarningText) || !strings.Contains(msg, "rate-limit checks")) {
			t.Errorf("skew %v: warning %q, want one naming nonces and rate limits", c.skew, msg)
		}
		if !c.warn && msg != "" {
			t.Errorf("skew %v: warning %q, want none", c.skew, msg)
		}
	}
}

// skewStore is a store that reports a clock skew, or fails to; set
// changes what it reports, from any goroutine.
type skewStore struct {
	storage.Store
	mu    sync.Mutex
	skew  time.Duration
	err   error
	calls chan struct{} // if not nil, signalled (without blocking) after each read
}

func (s *skewStore) set(skew time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skew, s.err = skew, err
}

func (s *skewStore) ClockSkew(context.Context) (time.Duration, error) {
	s.mu.Lock()
	skew, err := s.skew, s.err
	s.mu.Unlock()
	if s.calls != nil {
		select {
		case s.calls <- struct{}{}:
		default:
		}
	}
	return skew, err
}

// skewGauge reads acmegw_clock_skew_seconds from reg; ok is false when
// reg has no such series.
func skewGauge(t *testing.T, reg prometheus.Gatherer) (seconds float64, ok bool) {
	return gaugeValue(t, reg, "acmegw_clock_skew_seconds")
}

// gaugeValue reads the single series of the gauge name from reg; ok is
// false when reg has no such series.
func gaugeValue(t *testing.T, reg prometheus.Gatherer, name string) (v float64, ok bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// TestWarnsWhenClockSkewed runs the start-up check against stores that
// report a skew: a warning naming it when it is large, nothing above debug
// otherwise or when the store cannot tell; the gauge holds the measured
// skew, and is absent when there is none.
func TestWarnsWhenClockSkewed(t *testing.T) {
	for _, c := range []struct {
		name  string
		store storage.Store
		warn  string  // "" for no warning, else the logged clock_skew
		gauge float64 // NaN for no gauge
	}{
		{"ahead", &skewStore{Store: memory.New(), skew: 42 * time.Second}, "clock_skew=42s", 42},
		{"behind", &skewStore{Store: memory.New(), skew: -90 * time.Second}, "clock_skew=-1m30s", -90},
		{"in step", &skewStore{Store: memory.New(), skew: 3 * time.Second}, "", 3},
		{"TIME fails", &skewStore{Store: memory.New(), err: errors.New("TIME refused")}, "", math.NaN()},
		{"memory", memory.New(), "", math.NaN()},
	} {
		var buf testlog.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
		reg := prometheus.NewRegistry()
		// An interval that never comes within the test: only the start-up check runs.
		stop := startClockSkewCheck(t.Context(), c.store, log, reg, time.Hour)
		stop()
		got := buf.String()
		if c.warn == "" && got != "" {
			t.Errorf("%s: logged %q, want nothing", c.name, got)
		}
		if c.warn != "" && (!strings.Contains(got, "level=WARN") || !strings.Contains(got, clockSkewWarningText) || !strings.Contains(got, c.warn)) {
			t.Errorf("%s: logged %q, want a warning with %s", c.name, got, c.warn)
		}
		v, ok := skewGauge(t, reg)
		if math.IsNaN(c.gauge) && ok {
			t.Errorf("%s: acmegw_clock_skew_seconds = %v, want none", c.name, v)
		}
		if !math.IsNaN(c.gauge) && (!ok || v != c.gauge) {
			t.Errorf("%s: acmegw_clock_skew_seconds = %v (present %v), want %v", c.name, v, ok, c.gauge)
		}
		if _, ok := gaugeValue(t, reg, "acmegw_clock_skew_measured_timestamp_seconds"); ok == math.IsNaN(c.gauge) {
			t.Errorf("%s: acmegw_clock_skew_measured_timestamp_seconds present %v, want it with the skew", c.name, ok)
		}
	}
}

// TestClockSkewLoggedOnChange drives the periodic check through a skew
// that goes out, stays out, fails to be read, nears the limit, comes back
// and goes out again, with check times of its own: it warns on going out
// and then only hourly, says when the skew is back (within 8 s, so a skew
// hovering at 10 s does not log at every check), and keeps the gauge at the
// last measurement.
func TestClockSkewLoggedOnChange(t *testing.T) {
	store := &skewStore{Store: memory.New()}
	var buf testlog.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	m := &clockSkewMonitor{store: store, log: log, gauge: &clockSkewGauge{}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.gauge)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	for _, step := range []struct {
		name  string
		at    time.Duration // after t0
		skew  time.Duration
		err   error
		log   string // "" for nothing at info and above, else a substring of the one line
		level string
		gauge float64
	}{
		{"in step at start-up", 0, 2 * time.Second, nil, "", "", 2},
		{"goes out", time.Minute, 30 * time.Second, nil, clockSkewWarningText, "WARN", 30},
		{"stays out", 2 * time.Minute, 31 * time.Second, nil, "", "", 31},
		{"still out, under the hour", 60*time.Minute + 59*time.Second, -40 * time.Second, nil, "", "", -40},
		{"out for the hour", 61 * time.Minute, 35 * time.Second, nil, "skewed_for=1h0m0s", "WARN", 35},
		{"out, just reminded", 62 * time.Minute, 35 * time.Second, nil, "", "", 35},
		{"TIME fails", 63 * time.Minute, 0, errors.New("TIME refused"), "", "", 35},
		{"near the limit, not back yet", 63*time.Minute + 30*time.Second, 9 * time.Second, nil, "", "", 9},
		{"back", 64 * time.Minute, -time.Second, nil, "back within 8s", "INFO", -1},
		{"stays back", 65 * time.Minute, 500 * time.Millisecond, nil, "", "", 0.5},
		{"out again", 66 * time.Minute, -11 * time.Second, nil, clockSkewWarningText, "WARN", -11},
	} {
		store.set(step.skew, step.err)
		off := buf.Len()
		m.check(t.Context(), t0.Add(step.at))
		got := buf.From(off)
		switch {
		case step.log == "" && got != "":
			t.Errorf("%s: logged %q, want nothing", step.name, got)
		case step.log != "" && (strings.Count(got, "\n") != 1 || !strings.Contains(got, "level="+step.level) || !strings.Contains(got, step.log)):
			t.Errorf("%s: logged %q, want one %s line with %q", step.name, got, step.level, step.log)
		}
		if v, ok := skewGauge(t, reg); !ok || v != step.gauge {
			t.Errorf("%s: acmegw_clock_skew_seconds = %v (present %v), want %v", step.name, v, ok, step.gauge)
		}
		// A failed read keeps the last measurement's time, so its age shows.
		measuredAt := t0.Add(step.at)
		if step.err != nil {
			measuredAt = t0.Add(62 * time.Minute)
		}
		if v, ok := gaugeValue(t, reg, "acmegw_clock_skew_measured_timestamp_seconds"); !ok || v != float64(measuredAt.Unix()) {
			t.Errorf("%s: acmegw_clock_skew_measured_timestamp_seconds = %v (present %v), want %v", step.name, v, ok, measuredAt.Unix())
		}
	}
}

// TestClockSkewLoop runs the loop on ticks the test sends: each tick
// measures the skew (the gauge follows it, the change is logged once), and
// the loop returns when its context is cancelled.
func TestClockSkewLoop(t *testing.T) {
	store := &skewStore{Store: memory.New(), calls: make(chan struct{}, 1)}
	var buf testlog.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	m := &clockSkewMonitor{store: store, log: log, gauge: &clockSkewGauge{}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.gauge)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ticks := make(chan time.Time)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.run(ctx, ticks)
	}()
	now := time.Now()
	for i, skew := range []time.Duration{time.Second, 20 * time.Second, 21 * time.Second, 22 * time.Second} {
		store.set(skew, nil)
		ticks <- now.Add(time.Duration(i) * time.Minute)
		<-store.calls // the tick's check has read skew; set no other before it
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the check loop did not return after its context was cancelled")
	}
	if v, ok := skewGauge(t, reg); !ok || v != 22 {
		t.Errorf("acmegw_clock_skew_seconds = %v (present %v), want 22", v, ok)
	}
	if got := buf.String(); strings.Count(got, "level=WARN") != 1 || !strings.Contains(got, "clock_skew=20s") {
		t.Errorf("logged %q, want one warning, for 20s", got)
	}
}

// TestClockSkewCheckStops starts the check as serve does, with a short
// interval, sees it re-check, and stops it: stop returns once the loop
// has, both when serve's context ends first and when it does not.
func TestClockSkewCheckStops(t *testing.T) {
	for _, cancelFirst := range []bool{true, false} {
		store := &skewStore{Store: memory.New(), skew: time.Second, calls: make(chan struct{}, 1)}
		ctx, cancel := context.WithCancel(t.Context())
		stop := startClockSkewCheck(ctx, store, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), time.Millisecond)
		<-store.calls // the start-up check
		<-store.calls // a periodic one
		if cancelFirst {
			cancel()
		}
		stopped := make(chan struct{})
		go func() {
			stop()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			t.Fatalf("cancel first %v: stop did not return", cancelFirst)
		}
		cancel()
	}
}

// TestClockSkewCheckedAtStartUp starts serve on a real Redis on this
// machine, whose clock is the gateway's: the check runs (its debug line)
// and does not warn.
func TestClockSkewCheckedAtStartUp(t *testing.T) {
	gw := startGateway(t, gatewayOptions{RedisURL: testredis.StartServer(t).URL()})
	// stderr is copied from a pipe; give the copy a moment to catch up.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(gw.Log(), "clock checked against Redis's") && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	log := gw.Log()
	if !strings.Contains(log, "clock checked against Redis's") {
		t.Errorf("no clock check in the start-up log:\n%s", log)
	}
	if strings.Contains(log, clockSkewWarningText) {
		t.Errorf("warned about clock skew against a local Redis:\n%s", log)
	}
	// The gauge is served beside acme's own series.
	resp, err := gw.HTTPClient(t).Get(gw.BaseURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "\nacmegw_clock_skew_seconds ") || !strings.Contains(string(body), "\nacmegw_jobs_queued ") {
		t.Errorf("/metrics: %s, want acmegw_clock_skew_seconds and acme's series:\n%s", resp.Status, body)
	}
}
