package interop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func TestDriversCoverEveryFlow(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range Drivers(Tools{Lego: "lego"}) {
		if err := d.Check(); err != nil {
			t.Error(err)
		}
		if seen[d.Name] {
			t.Errorf("two drivers named %s", d.Name)
		}
		seen[d.Name] = true
		for f, reason := range d.Unsupported {
			if strings.TrimSpace(reason) == "" {
				t.Errorf("%s: flow %s is unsupported without a reason", d.Name, f)
			}
		}
	}
}

func TestViolationsAndReport(t *testing.T) {
	var m Matrix
	rec := func(client string, f Flow, server string, st Status, detail string, notes ...string) {
		m.Record(Result{Client: client, Flow: f, Server: server, Status: st, Duration: 1500 * time.Millisecond, Detail: detail, Notes: notes})
	}
	rec("a", FlowHTTP01, ServerAcmegw, Pass, "")
	rec("a", FlowHTTP01, ServerPebble, Pass, "")
	rec("a", FlowDNS01, ServerAcmegw, Fail, "boom | pipe")
	rec("a", FlowDNS01, ServerPebble, Pass, "")
	rec("a", FlowWildcard, ServerAcmegw, Fail, "both")
	rec("a", FlowWildcard, ServerPebble, Fail, "both")
	rec("a", FlowIP, ServerAcmegw, Pass, "", "a quirk")
	rec("a", FlowIP, ServerPebble, Fail, "pebble only", "a quirk")
	rec("b", FlowHTTP01, ServerAcmegw, Unsupported, "no such thing")
	rec("b", FlowHTTP01, ServerPebble, Unsupported, "no such thing")
	m.SetVersion("a", "1.0")
	m.SetVersion(ServerAcmegw, "git abc")

	v := m.Violations()
	if len(v) != 1 || v[0].Client != "a" || v[0].Flow != FlowDNS01 || v[0].Detail != "boom | pipe" {
		t.Fatalf("violations %v, want a dns-01 only", v)
	}
	if both := m.FailedOnBoth(); len(both) != 1 || both[0].Flow != FlowWildcard {
		t.Fatalf("failed on both: %v", both)
	}

	md := m.Markdown(Report{Command: "./scripts/interop", Generated: time.Unix(0, 0), Runtime: time.Minute,
		Machine: "test", Clients: []string{"a", "b"}, Servers: []string{ServerAcmegw, ServerPebble},
		Fixes: []string{"fixed a thing"}})
	for _, want := range []string{
		"| flow | a | b |",
		"| http-01 | ✓ 1.5s / ✓ 1.5s | – / – |",
		"| dns-01 | ✗ 1.5s / ✓ 1.5s |",
		"| register | ? / ? | ? / ? |",
		"- a dns-01 on acmegw: boom \\| pipe",
		"- a quirk (a ip on acmegw, a ip on pebble)",
		"  - http-01: no such thing",
		"| acmegw | git abc |",
		"| a | 1.0 |",
		"- fixed a thing",
		"- a dns-01: boom \\| pipe",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Count(md, "no such thing") != 1 {
		t.Errorf("an unsupported reason is listed once per client, not per server:\n%s", md)
	}
}

func TestCell(t *testing.T) {
	cleaned := false
	r := RunCell(t, time.Minute, "c", FlowHTTP01, &Server{Kind: ServerAcmegw}, func(c *Cell) {
		c.Cleanup(func() { cleaned = true })
		c.Logf("before")
		c.Fatalf("broken: %d", 42)
		t.Error("Fatalf did not end the cell")
	})
	if r.Status != Fail || r.Detail != "broken: 42" || !cleaned {
		t.Fatalf("failed cell: %+v, cleaned %v", r, cleaned)
	}
	if t.Failed() {
		return
	}

	r = RunCell(t, time.Minute, "c", FlowHTTP01, &Server{Kind: ServerPebble}, func(c *Cell) {
		c.Note("noted")
		c.Note("noted")
		c.Unsupportedf("cannot: %s", "reason")
	})
	if r.Status != Unsupported || r.Detail != "cannot: reason" || len(r.Notes) != 1 || r.Server != ServerPebble {
		t.Fatalf("unsupported cell: %+v", r)
	}

	r = RunCell(t, time.Minute, "c", FlowHTTP01, &Server{Kind: ServerPebble}, func(c *Cell) {
		select {
		case <-c.Context().Done():
			t.Error("context done while the cell runs")
		default:
		}
	})
	if r.Status != Pass || r.Duration <= 0 {
		t.Fatalf("passing cell: %+v", r)
	}

	r = RunCell(t, time.Minute, "c", FlowHTTP01, &Server{Kind: ServerPebble}, func(c *Cell) { panic("oops") })
	if r.Status != Fail || !strings.Contains(r.Detail, "oops") {
		t.Fatalf("panicking cell: %+v", r)
	}
}

func TestParseKey(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(rk)
	jwk, _ := json.Marshal(jose.JSONWebKey{Key: rk})
	for name, b := range map[string][]byte{
		"sec1":  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		"pkcs1": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}),
		"pkcs8": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		"jwk":   jwk,
	} {
		if _, err := parseKey(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	pub, _ := json.Marshal(jose.JSONWebKey{Key: rk.Public()})
	if _, err := parseKey(pub); err == nil {
		t.Error("a public JWK parsed as a private key")
	}
}

func TestSolverPort(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p := SolverPort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if p < 1024 || p > 65535 {
			t.Fatalf("port %d", p)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		l.Close()
	}
}
