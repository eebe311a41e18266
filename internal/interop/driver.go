package interop

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// Driver runs one client's flows.
type Driver struct {
	Name string
	// Version describes the client's version(s) for the report.
	Version func() string
	// Programs are the installed programs the driver runs (checked before
	// the matrix starts, so that a missing client is never a quiet failure).
	Programs []string
	// Flows run one flow against a server; a flow function fails its cell
	// through the Cell like a test through its testing.T.
	Flows map[Flow]func(c *Cell, s *Server)
	// Unsupported says why the client cannot run a flow at all.
	Unsupported map[Flow]string
}

// Tools are the client programs that are built rather than installed.
type Tools struct {
	Lego string // the lego CLI executable
}

// Drivers returns every client driver of the matrix, in report order.
func Drivers(tools Tools) []*Driver {
	return []*Driver{
		legoLibDriver(),
		legoCLIDriver(tools.Lego),
		certbotDriver(),
		dehydratedDriver(),
		uacmeDriver(),
		acmeTinyDriver(),
		xcryptoDriver(),
		acmezDriver(),
	}
}

// cellTimeout bounds one cell; a client that waits for a certificate
// longer than this has failed.
const cellTimeout = 4 * time.Minute

// RunLane runs the driver's flows, one after another, against one server
// and records them in m. Flows the client does not support are recorded
// as such without running.
func RunLane(tb testing.TB, m *Matrix, d *Driver, s *Server, flows []Flow) {
	for _, f := range flows {
		r := Result{Client: d.Name, Flow: f, Server: s.Kind}
		if reason, ok := d.Unsupported[f]; ok {
			r.Status, r.Detail = Unsupported, reason
		} else if run, ok := d.Flows[f]; ok {
			r = RunCell(tb, cellTimeout, d.Name, f, s, func(c *Cell) { run(c, s) })
		} else {
			r.Status, r.Detail = Fail, "the driver has no code for this flow"
		}
		if r.Status == Fail && s.Log != nil {
			tb.Logf("%s log, last lines:\n%s", s.Kind, tail(s.Log(), 40))
		}
		if r.Status != Unsupported {
			tb.Logf("%-16s %-20s %-7s %-4s %5.1fs %s", d.Name, f, s.Kind, r.Status, r.Duration.Seconds(), oneLine(r.Detail))
		}
		m.Record(r)
	}
	if os.Getenv("ACMEGW_INTEROP_DEBUG") == "1" && s.Log != nil {
		tb.Logf("%s log:\n%s", s.Kind, s.Log())
	}
}

// Check reports drivers that neither run nor excuse a flow.
func (d *Driver) Check() error {
	for _, f := range Flows {
		_, run := d.Flows[f]
		_, excused := d.Unsupported[f]
		if run == excused {
			return fmt.Errorf("driver %s: flow %s must be either run or declared unsupported (run %v, unsupported %v)", d.Name, f, run, excused)
		}
	}
	for f := range d.Flows {
		if !slices.Contains(Flows, f) {
			return fmt.Errorf("driver %s: unknown flow %q", d.Name, f)
		}
	}
	return nil
}
