// Package interop is the client interoperability matrix: real ACME clients
// (the lego library and CLI, certbot, dehydrated, uacme, acme-tiny,
// golang.org/x/crypto/acme driven like cert-manager, and Caddy's acmez)
// run every flow they support against acmegw and against Pebble, the
// reference server, and the results become docs/INTEROP.md.
//
// The package holds the parts that do not depend on how a server is
// started: the flows, the client drivers, the per-cell test context
// (Cell), the challenge responders, the probes that check a flow's effect
// on the server, and the report. The end-to-end test in cmd/acmegw
// (TestInterop) starts the servers, runs Run and writes the report; the
// rule it enforces is Violations: a flow that passes on Pebble must pass on
// acmegw.
package interop

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Flow is one thing a client can do with an ACME server.
type Flow string

// The flows of the matrix, in report order.
const (
	FlowRegister       Flow = "register"
	FlowHTTP01         Flow = "http-01"
	FlowDNS01          Flow = "dns-01"
	FlowTLSALPN01      Flow = "tls-alpn-01"
	FlowWildcard       Flow = "wildcard"
	FlowMultiName      Flow = "multi-name"
	FlowIP             Flow = "ip"
	FlowEAB            Flow = "eab"
	FlowRenewal        Flow = "renewal"
	FlowARI            Flow = "ari-renewal"
	FlowAlternateChain Flow = "alternate-chain"
	FlowRevokeAccount  Flow = "revoke-account-key"
	FlowRevokeCertKey  Flow = "revoke-cert-key"
	FlowKeyRollover    Flow = "key-rollover"
	FlowDeactivate     Flow = "deactivate"
)

// Flows lists every flow in report order.
var Flows = []Flow{
	FlowRegister, FlowHTTP01, FlowDNS01, FlowTLSALPN01, FlowWildcard, FlowMultiName, FlowIP,
	FlowEAB, FlowRenewal, FlowARI, FlowAlternateChain, FlowRevokeAccount, FlowRevokeCertKey,
	FlowKeyRollover, FlowDeactivate,
}

// flowDescriptions say what a passing cell has shown, for the report.
var flowDescriptions = map[Flow]string{
	FlowRegister:       "new account (terms agreed, contact); the server knows the account afterwards",
	FlowHTTP01:         "one name, http-01; the chain verifies to the server's root",
	FlowDNS01:          "one name, dns-01 through the client's DNS hook into the test's DNS server",
	FlowTLSALPN01:      "one name, tls-alpn-01 (RFC 8737)",
	FlowWildcard:       "`*.name` and `name` in one order, dns-01",
	FlowMultiName:      "three names in one order; the certificate names exactly those",
	FlowIP:             "IP address identifier 127.0.0.1 (RFC 8738), http-01",
	FlowEAB:            "registration with External Account Binding on a server that requires it, then an issuance",
	FlowRenewal:        "second issuance for the same names by the client's renewal command; new serial",
	FlowARI:            "renewalInfo (RFC 9773) consulted and the renewal order sent with `replaces`; a second order replacing the same certificate gets `alreadyReplaced`",
	FlowAlternateChain: "the client picks the alternate chain (`Link: rel=\"alternate\"`) to the server's second root",
	FlowRevokeAccount:  "revokeCert signed by the account key; the server records the revocation",
	FlowRevokeCertKey:  "revokeCert signed by the certificate's own key (jwk form)",
	FlowKeyRollover:    "keyChange: the account answers to the new key only",
	FlowDeactivate:     "account deactivation: the server refuses the key afterwards as deactivated",
}

// Status is a cell's outcome.
type Status string

// Cell outcomes.
const (
	Pass        Status = "pass"
	Fail        Status = "fail"
	Unsupported Status = "unsupported"
)

// The servers of the matrix.
const (
	ServerAcmegw = "acmegw"
	ServerPebble = "pebble"
)

// Result is one cell of the matrix: a client running a flow against a server.
type Result struct {
	Client   string
	Flow     Flow
	Server   string
	Status   Status
	Duration time.Duration // wall time of the cell (issuances, revocations and their checks)
	Detail   string        // why it is unsupported, or how it failed
	Notes    []string      // what the driver had to work around, even when it passed
}

// Matrix collects results from concurrent lanes. The zero value is ready.
type Matrix struct {
	mu       sync.Mutex
	results  []Result
	versions map[string]string
}

// Record adds one result.
func (m *Matrix) Record(r Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.results = append(m.results, r)
}

// SetVersion records the version of a client or server, for the report.
func (m *Matrix) SetVersion(name, version string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.versions == nil {
		m.versions = map[string]string{}
	}
	m.versions[name] = version
}

// Results returns a copy of the results recorded so far.
func (m *Matrix) Results() []Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.results)
}

// Get returns the result of one cell.
func (m *Matrix) Get(client string, flow Flow, server string) (Result, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.results {
		if r.Client == client && r.Flow == flow && r.Server == server {
			return r, true
		}
	}
	return Result{}, false
}

// Violation is a flow that passes on Pebble and fails on acmegw: the
// matrix's failing test.
type Violation struct {
	Client string
	Flow   Flow
	Detail string // acmegw's failure
}

func (v Violation) String() string {
	return fmt.Sprintf("%s %s passes on Pebble and fails on acmegw: %s", v.Client, v.Flow, v.Detail)
}

// Violations lists every client and flow that passes on Pebble but not on
// acmegw (failed, or recorded unsupported there only).
func (m *Matrix) Violations() []Violation {
	var out []Violation
	for _, r := range m.Results() {
		if r.Server != ServerPebble || r.Status != Pass {
			continue
		}
		gw, ok := m.Get(r.Client, r.Flow, ServerAcmegw)
		if !ok || gw.Status == Pass {
			continue
		}
		detail := gw.Detail
		if detail == "" {
			detail = string(gw.Status)
		}
		out = append(out, Violation{Client: r.Client, Flow: r.Flow, Detail: detail})
	}
	sortViolations(out)
	return out
}

// FailedOnBoth lists the cells that fail on every server, to be looked into
// (often the driver, not the server, is wrong).
func (m *Matrix) FailedOnBoth() []Result {
	var out []Result
	for _, r := range m.Results() {
		if r.Server != ServerAcmegw || r.Status != Fail {
			continue
		}
		if p, ok := m.Get(r.Client, r.Flow, ServerPebble); ok && p.Status == Fail {
			out = append(out, r)
		}
	}
	return out
}

func sortViolations(v []Violation) {
	sort.Slice(v, func(i, j int) bool {
		if v[i].Client != v[j].Client {
			return v[i].Client < v[j].Client
		}
		return slices.Index(Flows, v[i].Flow) < slices.Index(Flows, v[j].Flow)
	})
}

// Report is what the Markdown page says besides the results.
type Report struct {
	Command   string        // how to regenerate the page
	Generated time.Time     // when the run ended
	Runtime   time.Duration // wall time of the whole matrix
	Machine   string        // e.g. "linux/amd64, 2 CPUs, go1.26.8"
	Clients   []string      // column order
	Servers   []string      // e.g. {"acmegw", "pebble"}
	Fixes     []string      // server-side fixes the matrix led to (Markdown list items)
	Preface   string        // a paragraph after the header (how to run variants)
}

// Markdown renders the matrix as docs/INTEROP.md.
func (m *Matrix) Markdown(rep Report) string {
	m.mu.Lock()
	versions := make(map[string]string, len(m.versions))
	for k, v := range m.versions {
		versions[k] = v
	}
	m.mu.Unlock()

	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Client interoperability matrix\n\n")
	p("<!-- Generated by %s; do not edit by hand. -->\n\n", rep.Command)
	p("Real ACME clients run every flow they support against **acmegw** and against **Pebble** (Let's Encrypt's\n")
	p("reference test server), both on loopback with a DNS server the test controls. A flow that passes on Pebble\n")
	p("and fails on acmegw fails the test (`TestInterop` in `cmd/acmegw`, part of `./scripts/test`).\n\n")
	p("Regenerate with `%s`. Last run: %s, %s, matrix wall time %s.\n\n",
		rep.Command, rep.Generated.UTC().Format("2006-01-02 15:04 MST"), rep.Machine, rep.Runtime.Round(time.Second))

	if rep.Preface != "" {
		p("%s\n\n", strings.TrimSpace(rep.Preface))
	}
	p("Each cell reads `acmegw / Pebble`: ✓ pass, ✗ fail, – unsupported by the client (reasons below), with the\n")
	p("seconds the cell took (the flow's issuances, revocations and the checks on the server's side). Clients run\n")
	p("in parallel on one machine, so the seconds include waiting for the CPU; and Pebble validates in the\n")
	p("background, so its clients also sit out their polling intervals, where acmegw answers a validation that\n")
	p("finishes quickly in the challenge response itself.\n\n")

	p("| flow |")
	for _, c := range rep.Clients {
		p(" %s |", c)
	}
	p("\n|---|")
	for range rep.Clients {
		p("---|")
	}
	p("\n")
	for _, f := range Flows {
		p("| %s |", f)
		for _, c := range rep.Clients {
			var cells []string
			for _, s := range rep.Servers {
				r, ok := m.Get(c, f, s)
				cells = append(cells, cellText(r, ok))
			}
			p(" %s |", strings.Join(cells, " / "))
		}
		p("\n")
	}

	pass, fail, unsup := 0, 0, 0
	for _, r := range m.Results() {
		switch r.Status {
		case Pass:
			pass++
		case Fail:
			fail++
		case Unsupported:
			unsup++
		}
	}
	p("\n%d cells pass, %d fail, %d are unsupported by the client.\n", pass, fail, unsup)

	p("\n## Flows\n\n")
	for _, f := range Flows {
		p("- **%s**: %s.\n", f, flowDescriptions[f])
	}

	p("\n## Versions\n\n")
	p("| component | version |\n|---|---|\n")
	names := make([]string, 0, len(versions))
	for _, n := range append(slices.Clone(rep.Servers), rep.Clients...) {
		if _, ok := versions[n]; ok && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	var rest []string
	for n := range versions {
		if !slices.Contains(names, n) {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	for _, n := range append(names, rest...) {
		p("| %s | %s |\n", n, versions[n])
	}

	p("\n## Failures\n\n")
	var failures []Result
	for _, r := range m.sorted(rep) {
		if r.Status == Fail {
			failures = append(failures, r)
		}
	}
	if len(failures) == 0 {
		p("None.\n")
	}
	for _, r := range failures {
		p("- %s %s on %s: %s\n", r.Client, r.Flow, r.Server, oneLine(r.Detail))
	}

	p("\n## Notes\n\n")
	notes := map[string][]string{} // note → cells
	var noteOrder []string
	for _, r := range m.sorted(rep) {
		for _, n := range r.Notes {
			if _, ok := notes[n]; !ok {
				noteOrder = append(noteOrder, n)
			}
			notes[n] = append(notes[n], fmt.Sprintf("%s %s on %s", r.Client, r.Flow, r.Server))
		}
	}
	if len(noteOrder) == 0 {
		p("None.\n")
	}
	for _, n := range noteOrder {
		cells := notes[n]
		if len(cells) > 4 {
			cells = append(cells[:3], fmt.Sprintf("and %d more", len(cells)-3))
		}
		p("- %s (%s)\n", oneLine(n), strings.Join(cells, ", "))
	}

	p("\n## Unsupported by the client\n\n")
	for _, c := range rep.Clients {
		var lines []string
		seen := map[Flow]bool{}
		for _, s := range rep.Servers {
			for _, f := range Flows {
				r, ok := m.Get(c, f, s)
				if !ok || r.Status != Unsupported || seen[f] {
					continue
				}
				seen[f] = true
				lines = append(lines, fmt.Sprintf("  - %s: %s", f, oneLine(r.Detail)))
			}
		}
		if len(lines) == 0 {
			continue
		}
		p("- **%s**\n%s\n", c, strings.Join(lines, "\n"))
	}

	p("\n## Server-side fixes found by the matrix\n\n")
	violations := m.Violations()
	if len(violations) > 0 {
		p("**Open: flows that pass on Pebble and fail on acmegw in this run:**\n\n")
		for _, v := range violations {
			p("- %s %s: %s\n", v.Client, v.Flow, oneLine(v.Detail))
		}
		p("\n")
	}
	if len(rep.Fixes) == 0 {
		if len(violations) == 0 {
			p("None were needed: no flow passes on Pebble and fails on acmegw.\n")
		} else {
			p("None yet.\n")
		}
	}
	for _, f := range rep.Fixes {
		p("- %s\n", f)
	}
	return b.String()
}

// sorted returns the results in client, flow, server order.
func (m *Matrix) sorted(rep Report) []Result {
	rs := m.Results()
	idx := func(list []string, s string) int {
		if i := slices.Index(list, s); i >= 0 {
			return i
		}
		return len(list)
	}
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Client != b.Client {
			return idx(rep.Clients, a.Client) < idx(rep.Clients, b.Client)
		}
		if a.Flow != b.Flow {
			return slices.Index(Flows, a.Flow) < slices.Index(Flows, b.Flow)
		}
		return idx(rep.Servers, a.Server) < idx(rep.Servers, b.Server)
	})
	return rs
}

func cellText(r Result, ok bool) string {
	if !ok {
		return "?"
	}
	switch r.Status {
	case Pass:
		return fmt.Sprintf("✓ %.1fs", r.Duration.Seconds())
	case Fail:
		return fmt.Sprintf("✗ %.1fs", r.Duration.Seconds())
	default:
		return "–"
	}
}

// oneLine keeps a detail on one Markdown line and short enough to read.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	const max = 400
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
