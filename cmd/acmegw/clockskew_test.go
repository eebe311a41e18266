package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

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
		if c.warn && !strings.Contains(msg, clockSkewWarningText) {
			t.Errorf("skew %v: warning %q, want one", c.skew, msg)
		}
		if !c.warn && msg != "" {
			t.Errorf("skew %v: warning %q, want none", c.skew, msg)
		}
	}
}

// skewStore is a store that reports a fixed clock skew, or fails to.
type skewStore struct {
	storage.Store
	skew time.Duration
	err  error
}

func (s skewStore) ClockSkew(context.Context) (time.Duration, error) { return s.skew, s.err }

// TestWarnsWhenClockSkewed runs the start-up check against stores that
// report a skew: a warning naming it when it is large, nothing above debug
// otherwise or when the store cannot tell.
func TestWarnsWhenClockSkewed(t *testing.T) {
	for _, c := range []struct {
		name  string
		store storage.Store
		warn  string // "" for no warning, else the logged clock_skew
	}{
		{"ahead", skewStore{Store: memory.New(), skew: 42 * time.Second}, "clock_skew=42s"},
		{"behind", skewStore{Store: memory.New(), skew: -90 * time.Second}, "clock_skew=-1m30s"},
		{"in step", skewStore{Store: memory.New(), skew: 3 * time.Second}, ""},
		{"TIME fails", skewStore{Store: memory.New(), err: errors.New("TIME refused")}, ""},
		{"memory", memory.New(), ""},
	} {
		var buf testlog.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
		warnIfClockSkewed(t.Context(), c.store, log)
		got := buf.String()
		if c.warn == "" {
			if got != "" {
				t.Errorf("%s: logged %q, want nothing", c.name, got)
			}
			continue
		}
		if !strings.Contains(got, "level=WARN") || !strings.Contains(got, clockSkewWarningText) || !strings.Contains(got, c.warn) {
			t.Errorf("%s: logged %q, want a warning with %s", c.name, got, c.warn)
		}
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
}
