package digicert_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/dcv"
	"github.com/acmegw/acmegw/issuer/digicert"
	"github.com/acmegw/acmegw/issuer/digicert/digicerttest"
	"github.com/acmegw/acmegw/validation/validationtest"
)

// update re-records the fixtures from the fake:
//
//	go test ./issuer/digicert -run TestRecordedFixtures -update
var update = flag.Bool("update", false, "re-record testdata/digicert/*.json from digicerttest")

const fixtureDir = "../../testdata/digicert"

// fixture is one recorded conversation with the Services API: the brand's
// configuration, the steps the test drove, every request and answer, the
// DCV records published, and the outcome.
type fixture struct {
	Description string        `json:"description"`
	Config      fixtureConfig `json:"config"`
	// Steps are "submit", "poll", "revoke", or "fake:..." for what happened
	// at DigiCert between calls (an approval, a rejection), which the
	// replay skips: its effect is in the recorded answers.
	Steps     []string                `json:"steps"`
	Published []fixtureRecord         `json:"published,omitempty"`
	Expect    fixtureOutcome          `json:"expect"`
	Exchanges []digicerttest.Exchange `json:"exchanges"`
}

type fixtureConfig struct {
	APIKey         string `json:"api_key"`
	Product        string `json:"product"`
	OrganizationID int    `json:"organization_id,omitempty"`
	DCVMethod      string `json:"dcv_method,omitempty"`
	ValidityDays   int    `json:"validity_days,omitempty"`
	SkipApproval   bool   `json:"skip_approval,omitempty"`
	OrderID        string `json:"order_id"`
}

type fixtureRecord struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

type fixtureOutcome struct {
	// Outcome is "issued", "pending", "revoked" or "error".
	Outcome           string `json:"outcome"`
	LeafCommonName    string `json:"leaf_common_name,omitempty"`
	Permanent         bool   `json:"permanent,omitempty"`
	Type              string `json:"type,omitempty"`
	Contains          string `json:"contains,omitempty"`
	RetryAfterSeconds int    `json:"retry_after_seconds,omitempty"`
}

// memPublisher records what the brand publishes, for the replay.
type memPublisher struct {
	mu                     sync.Mutex
	published, unpublished []dcv.Record
}

func (p *memPublisher) Publish(_ context.Context, r dcv.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = append(p.published, r)
	return nil
}

func (p *memPublisher) Unpublish(_ context.Context, r dcv.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unpublished = append(p.unpublished, r)
	return nil
}

func (p *memPublisher) Method() string { return "dns-provider" }

// runSteps drives b through steps for the CSR and names and reports the
// outcome of the last one. hook runs the "fake:" steps.
func runSteps(t *testing.T, b *digicert.Brand, orderID string, csr *x509.CertificateRequest, names, steps []string,
	hook func(step string)) fixtureOutcome {
	t.Helper()
	ctx := context.Background()
	var (
		res    issuer.Result
		err    error
		ticket string
		leaf   *x509.Certificate
		out    fixtureOutcome
	)
	for _, step := range steps {
		switch {
		case step == "submit":
			res, err = b.Submit(ctx, issuer.Request{OrderID: orderID, CSR: csr, DNSNames: names})
		case step == "poll":
			res, err = b.Poll(ctx, ticket)
		case step == "revoke":
			err = b.Revoke(ctx, leaf, 1)
			if err == nil {
				out = fixtureOutcome{Outcome: "revoked"}
			}
		case strings.HasPrefix(step, "fake:"):
			if hook != nil {
				hook(step)
			}
			continue
		default:
			t.Fatalf("unknown step %q", step)
		}
		switch {
		case err != nil:
			ie, _ := issuer.AsError(err)
			out = fixtureOutcome{Outcome: "error", Permanent: issuer.IsPermanent(err)}
			if ie != nil {
				out.Type, out.RetryAfterSeconds = ie.Type, int(ie.RetryAfter/time.Second)
			}
			out.Contains = err.Error()
		case step == "revoke":
		case len(res.Chain) > 0:
			leaf = res.Leaf
			out = fixtureOutcome{Outcome: "issued", LeafCommonName: res.Leaf.Subject.CommonName}
		default:
			ticket = res.Ticket
			out = fixtureOutcome{Outcome: "pending"}
		}
	}
	return out
}

// scenario is a conversation to record from the fake.
type scenario struct {
	file, description string
	opts              digicerttest.Options
	cfg               fixtureConfig
	names             []string
	steps             []string
	dns               bool
	// before runs once the fake is up (rate limits); hook runs "fake:" steps.
	before func(*digicerttest.Server)
	hook   func(*digicerttest.Server, string)
	// contains is the part of the error kept in the fixture: the whole
	// message would tie it to this machine's ports.
	contains string
}

var scenarios = []scenario{
	{
		file:        "dv_dns_txt_token.json",
		description: "DV order: pending with a token per domain, TXT records at _dnsauth.<domain>, check-dcv issues, pem_all download",
		cfg:         fixtureConfig{Product: "ssl_dv_geotrust", ValidityDays: 30, OrderID: "gw-order-dv"},
		names:       []string{"shop.example", "www.shop.example"},
		steps:       []string{"submit", "poll"},
		dns:         true,
	},
	{
		file:        "ov_prevalidated_then_revoked.json",
		description: "OV order for a pre-validated organization and domain: the chain comes in the order answer; then revocation by serial",
		opts:        digicerttest.Options{PrevalidatedDomains: []string{"example.com"}},
		cfg:         fixtureConfig{Product: "ssl_securesite_pro", OrganizationID: 1234, ValidityDays: 30, SkipApproval: true, OrderID: "gw-order-pre"},
		names:       []string{"www.example.com", "example.com"},
		steps:       []string{"submit", "revoke"},
	},
	{
		file:        "ov_review_then_approved.json",
		description: "OV order: DCV done at the first poll, needs_approval until DigiCert's review approves, then issued",
		cfg:         fixtureConfig{Product: "ssl_securesite_pro", OrganizationID: 77, ValidityDays: 30, OrderID: "gw-order-ov"},
		names:       []string{"corp.example"},
		steps:       []string{"submit", "poll", "poll", "fake:approve", "poll"},
		dns:         true,
		hook: func(f *digicerttest.Server, _ string) {
			_ = f.Approve(f.Orders()[len(f.Orders())-1])
		},
	},
	{
		file:        "ev_rejected.json",
		description: "EV order rejected by DigiCert's review: a permanent error with the processor's comment",
		cfg:         fixtureConfig{Product: "ssl_ev_basic", OrganizationID: 5, ValidityDays: 30, OrderID: "gw-order-ev"},
		names:       []string{"bank.example"},
		steps:       []string{"submit", "poll", "fake:reject", "poll"},
		dns:         true,
		hook: func(f *digicerttest.Server, _ string) {
			_ = f.Reject(f.Orders()[len(f.Orders())-1], "The organization's registration could not be verified.")
		},
		contains: "registration could not be verified",
	},
	{
		file:        "bad_api_key.json",
		description: "a wrong X-DC-DEVKEY: 401, a permanent error telling the operator to check the key",
		cfg:         fixtureConfig{APIKey: "wrong-key", Product: "ssl_basic", OrganizationID: 1, ValidityDays: 30, OrderID: "gw-order-key"},
		names:       []string{"a.example"},
		steps:       []string{"submit"},
		contains:    "check the DigiCert API key",
	},
	{
		file:        "rate_limited.json",
		description: "429 with Retry-After: a transient error that asks to come back after it",
		cfg:         fixtureConfig{Product: "ssl_basic", OrganizationID: 1, ValidityDays: 30, OrderID: "gw-order-429"},
		names:       []string{"busy.example"},
		steps:       []string{"submit"},
		before:      func(f *digicerttest.Server) { f.RateLimit(1, 30*time.Second) },
		contains:    "DigiCert rate limit",
	},
	{
		file:        "invalid_dns_name.json",
		description: "400 invalid_dns_name: a permanent rejectedIdentifier with DigiCert's message",
		cfg:         fixtureConfig{Product: "ssl_basic", OrganizationID: 1, ValidityDays: 30, OrderID: "gw-order-400"},
		names:       []string{"bad_label.example"},
		steps:       []string{"submit"},
		contains:    "bad_label.example is not a valid domain name",
	},
}

func (sc scenario) record(t *testing.T) fixture {
	t.Helper()
	opts := sc.opts
	var pub dcv.Publisher = &memPublisher{}
	if sc.dns {
		srv := validationtest.NewDNSServer(t)
		opts.Resolver = srv.Addr()
		pub = newDNSPublisher(srv)
	}
	fake := digicerttest.New(t, opts)
	if sc.before != nil {
		sc.before(fake)
	}
	cfg := sc.cfg
	b := newBrand(t, fake, digicert.Config{APIKey: cfg.APIKey, Product: cfg.Product, OrganizationID: cfg.OrganizationID,
		DCVMethod: cfg.DCVMethod, ValidityDays: cfg.ValidityDays, SkipApproval: cfg.SkipApproval, Publisher: pub})
	if cfg.APIKey == "" {
		cfg.APIKey = fake.APIKey()
	}
	out := runSteps(t, b, cfg.OrderID, newCSR(t, sc.names[0], sc.names...), sc.names, sc.steps,
		func(step string) { sc.hook(fake, step) })
	if out.Outcome == "error" {
		if !strings.Contains(out.Contains, sc.contains) || sc.contains == "" {
			t.Fatalf("%s: error %q does not contain %q", sc.file, out.Contains, sc.contains)
		}
		out.Contains = sc.contains
	}
	fx := fixture{Description: sc.description, Config: cfg, Steps: sc.steps, Expect: out, Exchanges: fake.Exchanges()}
	var published []dcv.Record
	switch p := pub.(type) {
	case *dnsPublisher:
		published, _ = p.calls()
	case *memPublisher:
		published = p.published
	}
	for _, r := range published {
		fx.Published = append(fx.Published, fixtureRecord{Name: r.Name, Type: r.Type, Value: r.Value})
	}
	return fx
}

func TestRecordedFixtures(t *testing.T) {
	if *update {
		if err := os.MkdirAll(fixtureDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, sc := range scenarios {
			fx := sc.record(t)
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(fx); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(fixtureDir, sc.file), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < len(scenarios) {
		t.Fatalf("%d fixtures in %s, want %d; record them with -update", len(files), fixtureDir, len(scenarios))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			replay(t, file)
		})
	}
}

// replay runs the brand against the recorded answers: each request must be
// the recorded one (method, path, JSON body, API key), in order, and the
// outcome must be the recorded one.
func replay(t *testing.T, file string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var fx fixture
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if n := bytes.Count(raw, []byte(`"`+fx.Config.APIKey+`"`)); n != 1 {
		t.Errorf("the API key appears %d times; the recording must keep headers out", n)
	}

	var mu sync.Mutex
	next := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		path := strings.TrimPrefix(r.URL.RequestURI(), digicerttest.BasePath)
		if next >= len(fx.Exchanges) {
			t.Errorf("unexpected request %s %s after the recorded ones", r.Method, path)
			http.Error(w, "unexpected", http.StatusInternalServerError)
			return
		}
		want := fx.Exchanges[next]
		next++
		if r.Method != want.Method || path != want.Path {
			t.Errorf("request %d: %s %s, recorded %s %s", next, r.Method, path, want.Method, want.Path)
		}
		if got := r.Header.Get("X-DC-DEVKEY"); got != fx.Config.APIKey {
			t.Errorf("request %d: X-DC-DEVKEY %q, want the configured key", next, got)
		}
		body, _ := io.ReadAll(r.Body)
		if !jsonEqual(body, want.Request) {
			t.Errorf("request %d %s %s body:\n%s\nrecorded:\n%s", next, r.Method, path, body, want.Request)
		}
		if want.RetryAfter != "" {
			w.Header().Set("Retry-After", want.RetryAfter)
		}
		switch {
		case len(want.Response) > 0:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(want.Status)
			_, _ = w.Write(want.Response)
		case want.ResponseText != "":
			w.Header().Set("Content-Type", "application/x-pem-file")
			w.WriteHeader(want.Status)
			_, _ = io.WriteString(w, want.ResponseText)
		default:
			w.WriteHeader(want.Status)
		}
	}))
	defer srv.Close()

	pub := &memPublisher{}
	b, err := digicert.New("digicert-replay", digicert.Config{APIKey: fx.Config.APIKey, BaseURL: srv.URL + digicerttest.BasePath,
		Product: fx.Config.Product, OrganizationID: fx.Config.OrganizationID, DCVMethod: fx.Config.DCVMethod,
		ValidityDays: fx.Config.ValidityDays, SkipApproval: fx.Config.SkipApproval, Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	csr, names := recordedCSR(t, &fx)
	got := runSteps(t, b, fx.Config.OrderID, csr, names, fx.Steps, nil)

	if got.Outcome != fx.Expect.Outcome || got.LeafCommonName != fx.Expect.LeafCommonName || got.Permanent != fx.Expect.Permanent ||
		got.Type != fx.Expect.Type || got.RetryAfterSeconds != fx.Expect.RetryAfterSeconds ||
		!strings.Contains(got.Contains, fx.Expect.Contains) {
		t.Errorf("outcome %+v, recorded %+v", got, fx.Expect)
	}
	mu.Lock()
	if next != len(fx.Exchanges) {
		t.Errorf("%d of %d recorded requests made", next, len(fx.Exchanges))
	}
	mu.Unlock()
	var published []fixtureRecord
	for _, r := range pub.published {
		published = append(published, fixtureRecord{Name: r.Name, Type: r.Type, Value: r.Value})
	}
	if !reflect.DeepEqual(published, fx.Published) {
		t.Errorf("published %+v, recorded %+v", published, fx.Published)
	}
	if fx.Expect.Outcome != "pending" && len(pub.unpublished) != len(pub.published) {
		t.Errorf("published %d records but removed %d once the order ended", len(pub.published), len(pub.unpublished))
	}
}

// recordedCSR takes the CSR and names from the recorded order request, so
// that the replayed request can be byte-for-byte the recorded one.
func recordedCSR(t *testing.T, fx *fixture) (*x509.CertificateRequest, []string) {
	t.Helper()
	for _, ex := range fx.Exchanges {
		if ex.Method != http.MethodPost {
			continue
		}
		var body struct {
			Certificate struct {
				CommonName string   `json:"common_name"`
				DNSNames   []string `json:"dns_names"`
				CSR        string   `json:"csr"`
			} `json:"certificate"`
		}
		if err := json.Unmarshal(ex.Request, &body); err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode([]byte(body.Certificate.CSR))
		if blk == nil {
			t.Fatal("recorded order holds no PEM CSR")
		}
		csr, err := x509.ParseCertificateRequest(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return csr, append([]string{body.Certificate.CommonName}, body.Certificate.DNSNames...)
	}
	t.Fatal("no recorded order request")
	return nil, nil
}

// jsonEqual compares two JSON documents by value; two empty bodies are equal.
func jsonEqual(a, b []byte) bool {
	a, b = bytes.TrimSpace(a), bytes.TrimSpace(b)
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
