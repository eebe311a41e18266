package interop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cell is the testing.TB of one matrix cell. It wraps the lane's test so
// that helpers written for tests (validationtest, testpebble, the
// gateway harness) work unchanged, but a failure ends only the cell and is
// recorded in the matrix instead of failing the test: whether a failure
// fails the test is decided by the matrix rule (Violations). Cleanups
// registered on a Cell run when the cell ends, so the ports its
// responders and servers held are free for the next cell of the lane.
//
// As with testing.T, FailNow (Fatal, Fatalf, Skip...) must be called from
// the goroutine running the cell.
type Cell struct {
	testing.TB // the lane's test: TempDir, Name, and the log at the end

	// Client, Flow and Server say what the cell runs; Domains derives the
	// cell's DNS names from them.
	Client string
	Flow   Flow
	Server *Server

	ctx    context.Context
	cancel context.CancelFunc

	mu          sync.Mutex
	failed      bool
	unsupported string
	msgs        []string
	logs        strings.Builder
	cleanups    []func()
	values      map[string]any
	notes       []string
}

// value returns the cell's value under key, made by mk on first use
// (a responder that holds a port for the rest of the cell).
func (c *Cell) value(key string, mk func() any) any {
	c.mu.Lock()
	v, ok := c.values[key]
	c.mu.Unlock()
	if ok {
		return v
	}
	v = mk()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.values == nil {
		c.values = map[string]any{}
	}
	c.values[key] = v
	return v
}

// errUnsupported marks a cell whose client turned out not to support the flow.
var errUnsupported = errors.New("unsupported")

// RunCell runs f as one cell under tb with a timeout, and returns its
// result. The cell's log goes to tb.Log when it did not pass.
func RunCell(tb testing.TB, timeout time.Duration, client string, flow Flow, s *Server, f func(c *Cell)) Result {
	ctx, cancel := context.WithTimeout(tb.Context(), timeout)
	c := &Cell{TB: tb, ctx: ctx, cancel: cancel, Client: client, Flow: flow, Server: s}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if v := recover(); v != nil {
				c.mu.Lock()
				c.failed = true
				c.msgs = append(c.msgs, fmt.Sprintf("panic: %v", v))
				c.mu.Unlock()
			}
		}()
		f(c)
	}()
	<-done
	elapsed := time.Since(start)
	c.runCleanups()
	cancel()

	c.mu.Lock()
	defer c.mu.Unlock()
	r := Result{Client: client, Flow: flow, Server: s.Kind, Duration: elapsed, Notes: c.notes}
	switch {
	case c.unsupported != "":
		r.Status, r.Detail = Unsupported, c.unsupported
	case c.failed:
		tb.Logf("cell failed after %s:\n%s", elapsed.Round(time.Millisecond), c.logs.String())
		r.Status, r.Detail = Fail, strings.Join(c.msgs, "; ")
	default:
		if os.Getenv("ACMEGW_INTEROP_DEBUG") == "1" {
			tb.Logf("cell passed in %s:\n%s", elapsed.Round(time.Millisecond), c.logs.String())
		}
		r.Status = Pass
	}
	return r
}

// Note records something the report should say about this cell even when
// it passes (a server quirk the driver had to work around).
func (c *Cell) Note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.logf("note: %s", msg)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.notes, msg) {
		c.notes = append(c.notes, msg)
	}
}

func (c *Cell) runCleanups() {
	for {
		c.mu.Lock()
		n := len(c.cleanups)
		if n == 0 {
			c.mu.Unlock()
			return
		}
		f := c.cleanups[n-1]
		c.cleanups = c.cleanups[:n-1]
		c.mu.Unlock()
		func() {
			defer func() { _ = recover() }()
			f()
		}()
	}
}

// Context is canceled when the cell ends or times out.
func (c *Cell) Context() context.Context { return c.ctx }

// Cleanup registers f to run when the cell ends (last registered, first run).
func (c *Cell) Cleanup(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cleanups = append(c.cleanups, f)
}

// Helper is a no-op: cell logs carry no caller positions.
func (c *Cell) Helper() {}

// Log and Logf write to the cell's log, shown when the cell does not pass.
func (c *Cell) Log(args ...any) { c.logf("%s", fmt.Sprintln(args...)) }

// Logf: see Log.
func (c *Cell) Logf(format string, args ...any) { c.logf(format, args...) }

func (c *Cell) logf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := fmt.Sprintf(format, args...)
	c.logs.WriteString(strings.TrimRight(s, "\n"))
	c.logs.WriteByte('\n')
}

// Error and Errorf mark the cell failed and go on.
func (c *Cell) Error(args ...any) { c.errorf("%s", strings.TrimSuffix(fmt.Sprintln(args...), "\n")) }

// Errorf: see Error.
func (c *Cell) Errorf(format string, args ...any) { c.errorf(format, args...) }

func (c *Cell) errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.logf("%s", msg)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed = true
	c.msgs = append(c.msgs, firstLine(msg))
}

// Fatal and Fatalf mark the cell failed and end it.
func (c *Cell) Fatal(args ...any) { c.Error(args...); c.FailNow() }

// Fatalf: see Fatal.
func (c *Cell) Fatalf(format string, args ...any) { c.Errorf(format, args...); c.FailNow() }

// Fail marks the cell failed.
func (c *Cell) Fail() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed = true
}

// FailNow marks the cell failed and ends it.
func (c *Cell) FailNow() {
	c.Fail()
	runtime.Goexit()
}

// Failed reports whether the cell failed.
func (c *Cell) Failed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}

// Unsupportedf ends the cell, recording that the client (or this
// environment) cannot run the flow, and why.
func (c *Cell) Unsupportedf(format string, args ...any) {
	c.mu.Lock()
	c.unsupported = fmt.Sprintf(format, args...)
	c.mu.Unlock()
	runtime.Goexit()
}

// Skip, Skipf and SkipNow record the cell as unsupported: a helper that
// skips (a missing program) has found something the cell cannot do.
func (c *Cell) Skip(args ...any) { c.Unsupportedf("%s", strings.TrimSpace(fmt.Sprintln(args...))) }

// Skipf: see Skip.
func (c *Cell) Skipf(format string, args ...any) { c.Unsupportedf(format, args...) }

// SkipNow: see Skip.
func (c *Cell) SkipNow() { c.Unsupportedf("skipped") }

// Skipped reports whether the cell was recorded unsupported.
func (c *Cell) Skipped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unsupported != ""
}

// Setenv would change the whole process's environment under parallel
// lanes; cells pass environments to the processes they start instead.
func (c *Cell) Setenv(key, value string) { panic("interop: Cell.Setenv is not supported") }

// Domains returns n DNS names for the cell, unique in the matrix
// (<flow>.<server>.<client>.test, then n1.<flow>..., n2...), each with an A
// record for 127.0.0.1 in the server's DNS.
func (c *Cell) Domains(n int) []string {
	base := fmt.Sprintf("%s.%s.%s.test", c.Flow, c.Server.Kind, c.Client)
	names := []string{base}
	for i := 1; i < n; i++ {
		names = append(names, fmt.Sprintf("n%d.%s", i, base))
	}
	for _, name := range names {
		c.Server.DNS.AddA(name, "127.0.0.1")
	}
	return names
}

// Domain is the cell's first DNS name (see Domains).
func (c *Cell) Domain() string { return c.Domains(1)[0] }

// Must fails the cell with what when err is not nil.
func (c *Cell) Must(err error, what string) {
	if err != nil {
		c.Fatalf("%s: %v", what, err)
	}
}

// firstLine condenses a failure message for the report: its first line
// and, for a client's output, its last lines, which usually say why.
func firstLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 7 {
		lines = append([]string{lines[0], "…"}, lines[len(lines)-5:]...)
	}
	return strings.Join(lines, " ⏎ ")
}
