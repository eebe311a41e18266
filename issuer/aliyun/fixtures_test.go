package aliyun

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmegw/acmegw/internal/acs3"
	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/aliyun/aliyuntest"
	"github.com/acmegw/acmegw/issuer/dcv"
)

// fixtureDir holds recorded request/response pairs of the CAS API, one
// exchange per file, with the documentation's example values.
const fixtureDir = "../../testdata/aliyun"

type fixture struct {
	Action   string            `json:"action"`
	Note     string            `json:"note"`
	Request  map[string]string `json:"request"`
	Status   int               `json:"status"`
	Response json.RawMessage   `json:"response"`
}

func loadFixtures(t *testing.T) map[string]fixture {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s: %v", fixtureDir, err)
	}
	out := map[string]fixture{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var fx fixture
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fx); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if fx.Action == "" || fx.Status == 0 || len(fx.Response) == 0 {
			t.Fatalf("%s: action, status and response are required", f)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = fx
	}
	return out
}

// fixtureServer answers each action with the fixture chosen for it, after
// checking the request's signature with the fake's verifier.
type fixtureServer struct {
	t   *testing.T
	srv *httptest.Server

	mu    sync.Mutex
	serve map[string]fixture // by action
	got   []string           // actions received
	last  map[string]map[string]string
}

func newFixtureServer(t *testing.T) *fixtureServer {
	fs := &fixtureServer{t: t, serve: map[string]fixture{}, last: map[string]map[string]string{}}
	fs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := aliyuntest.CheckSignature(r, nil, func(string) (string, bool) { return "secret", true }); err != nil {
			t.Errorf("fixture server: %v", err)
		}
		action := r.Header.Get("x-acs-action")
		fs.mu.Lock()
		fx, ok := fs.serve[action]
		fs.got = append(fs.got, action)
		params := map[string]string{}
		for k := range r.URL.Query() {
			params[k] = r.URL.Query().Get(k)
		}
		fs.last[action] = params
		fs.mu.Unlock()
		if !ok {
			t.Errorf("fixture server: no fixture for %s", action)
			w.WriteHeader(500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(fx.Status)
		_, _ = w.Write(fx.Response)
	}))
	t.Cleanup(fs.srv.Close)
	return fs
}

func (fs *fixtureServer) use(fxs ...fixture) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, fx := range fxs {
		fs.serve[fx.Action] = fx
	}
}

func (fs *fixtureServer) calls(action string) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := 0
	for _, a := range fs.got {
		if a == action {
			n++
		}
	}
	return n
}

// recordingPublisher remembers what it was asked to publish.
type recordingPublisher struct {
	mu  sync.Mutex
	pub []dcv.Record
}

func (p *recordingPublisher) Publish(_ context.Context, r dcv.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pub = append(p.pub, r)
	return nil
}
func (p *recordingPublisher) Unpublish(context.Context, dcv.Record) error { return nil }
func (p *recordingPublisher) Method() string                              { return "recording" }

// TestRecordedFixtures drives the adapter with the recorded answers: it must
// read every JSON shape Alibaba sends as intended.
func TestRecordedFixtures(t *testing.T) {
	fx := loadFixtures(t)
	fs := newFixtureServer(t)
	pub := &recordingPublisher{}
	is, err := New(Config{AccessKeyID: "LTAIfixture", AccessKeySecret: "secret", Endpoint: fs.srv.URL,
		ProductCode: "geotrust-dv-1-starter", Publisher: pub, ThrottleRetry: 9 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The fixture order, as a ticket without a key hash (the fixture CSR's
	// key is not the fixture chain's).
	tk := ticket{OrderID: 20260315000001, Product: "geotrust-dv-1-starter", Names: []string{"www.example.com", "example.com"}}

	t.Run("create", func(t *testing.T) {
		fs.use(fx["create_certificate_for_package_request"])
		res, err := is.Submit(ctx, request(t, ecKey(t), "www.example.com", "example.com"))
		if err != nil {
			t.Fatal(err)
		}
		if got := ticketOrder(t, res.Ticket); got != 20260315000001 {
			t.Errorf("OrderId = %d", got)
		}
	})
	t.Run("payed", func(t *testing.T) {
		fs.use(fx["describe_certificate_state_payed"])
		res, err := is.Poll(ctx, tk.encode())
		if err != nil || res.Ticket == "" || res.RetryAfter != DefaultPollInterval {
			t.Errorf("Poll = %+v, %v", res, err)
		}
	})
	t.Run("domain_verify DNS", func(t *testing.T) {
		fs.use(fx["describe_certificate_state_domain_verify_dns"])
		res, err := is.Poll(ctx, tk.encode())
		if err != nil {
			t.Fatal(err)
		}
		const value = "20200420000000223erigacv46uhaubchcm0o7spxi7i2isvjq59mlx9lucnkqcy"
		want := []dcv.Record{
			{Domain: "www.example.com", Name: "_dnsauth.www.example.com", Type: "TXT", Value: value},
			{Domain: "example.com", Name: "_dnsauth.example.com", Type: "TXT", Value: value},
		}
		if !slices.Equal(pub.pub, want) {
			t.Errorf("published %+v\nwant %+v", pub.pub, want)
		}
		if got, _ := parseTicket(res.Ticket); len(got.Records) != 2 {
			t.Errorf("ticket records = %+v", got.Records)
		}
	})
	t.Run("domain_verify FILE", func(t *testing.T) {
		fs.use(fx["describe_certificate_state_domain_verify_file"])
		_, err := is.Poll(ctx, tk.encode())
		ie, ok := issuer.AsError(err)
		if !ok || !ie.Permanent || !strings.Contains(ie.Detail, "FILE") || !strings.Contains(ie.Detail, "/.well-known/pki-validation/") {
			t.Errorf("Poll = %v, want a permanent error explaining FILE validation", err)
		}
	})
	t.Run("process", func(t *testing.T) {
		fs.use(fx["describe_certificate_state_process"])
		res, err := is.Poll(ctx, tk.encode())
		if err != nil || res.Ticket == "" || res.RetryAfter != DefaultReviewPollInterval {
			t.Errorf("Poll = %+v, %v", res, err)
		}
	})
	t.Run("certificate", func(t *testing.T) {
		fs.use(fx["describe_certificate_state_certificate"])
		res, err := is.Poll(ctx, tk.encode())
		if err != nil {
			t.Fatal(err)
		}
		certs, err := parseChain(string(res.Chain))
		if err != nil || len(certs) != 2 || res.Leaf == nil || res.Leaf.Subject.CommonName != "www.example.com" ||
			certs[1].Subject.CommonName != "Fixture CA" {
			t.Errorf("chain: %d certs, leaf %v, %v", len(certs), res.Leaf, err)
		}
	})
	t.Run("certificate for another key", func(t *testing.T) {
		fs.use(fx["describe_certificate_state_certificate"])
		other := tk
		other.KeyHash = keyHash([]byte("not this key"))
		if _, err := is.Poll(ctx, other.encode()); !issuer.IsPermanent(err) {
			t.Errorf("Poll = %v, want a permanent refusal of a certificate for another key", err)
		}
	})
	t.Run("verify_fail", func(t *testing.T) {
		fs.use(fx["describe_certificate_state_verify_fail"], fx["delete_certificate_request"])
		_, err := is.Poll(ctx, tk.encode())
		ie, ok := issuer.AsError(err)
		if !ok || !ie.Permanent || !strings.Contains(ie.Detail, "The organisation could not be verified.") {
			t.Errorf("Poll = %v", err)
		}
		if fs.calls("DeleteCertificateRequest") != 1 {
			t.Errorf("DeleteCertificateRequest not called")
		}
	})
	t.Run("revoke", func(t *testing.T) {
		fs.use(fx["list_user_certificate_order"], fx["describe_certificate_state_certificate"], fx["cancel_certificate_for_package_request"])
		certs, _ := parseChain(mustString(t, fx["describe_certificate_state_certificate"].Response, "Certificate"))
		if err := is.Revoke(ctx, certs[0], 1); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		fs.mu.Lock()
		defer fs.mu.Unlock()
		if got := fs.last["CancelCertificateForPackageRequest"]["OrderId"]; got != "20260315000001" {
			t.Errorf("cancelled OrderId %q", got)
		}
		if got := fs.last["ListUserCertificateOrder"]; got["Keyword"] != "www.example.com" || got["OrderType"] != "CPACK" {
			t.Errorf("list parameters %v", got)
		}
	})
	errorCases := []struct {
		fixture   string
		permanent bool
		typ       string
		text      string
	}{
		{"error_throttling_user", false, "rateLimited", "Throttling.User"},
		{"error_signature_does_not_match", true, "serverInternal", "check the AccessKey configuration"},
		{"error_invalid_access_key_id", true, "serverInternal", "check the AccessKey configuration"},
		{"error_signature_nonce_used", false, "serverInternal", "SignatureNonceUsed"},
		{"error_quota_exceeded", true, "rateLimited", "quota"},
	}
	for _, c := range errorCases {
		t.Run(c.fixture, func(t *testing.T) {
			f := fx[c.fixture]
			fs.use(f)
			var err error
			if f.Action == "CreateCertificateForPackageRequest" {
				_, err = is.Submit(ctx, request(t, ecKey(t), "example.com"))
			} else {
				_, err = is.Poll(ctx, tk.encode())
			}
			ie, ok := issuer.AsError(err)
			if !ok || ie.Permanent != c.permanent || ie.Type != c.typ || !strings.Contains(ie.Detail, c.text) {
				t.Fatalf("err = %v, want permanent=%v %s mentioning %q", err, c.permanent, c.typ, c.text)
			}
			if !c.permanent && ie.RetryAfter != 9*time.Second && c.typ == "rateLimited" {
				t.Errorf("RetryAfter = %v", ie.RetryAfter)
			}
			if !strings.Contains(ie.Detail, "082FAB35-6AB9-4FD5-8750-D36673548E76") {
				t.Errorf("detail %q lacks the RequestId, which Alibaba support asks for", ie.Detail)
			}
		})
	}
}

func mustString(t *testing.T, raw json.RawMessage, key string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	s, _ := m[key].(string)
	return s
}

// TestFakeMatchesFixtures checks that the fake answers in the recorded
// shapes (the same keys, per action and state) and that the adapter sends
// the recorded parameters, so the fake, the fixtures and the adapter cannot
// drift apart.
func TestFakeMatchesFixtures(t *testing.T) {
	fx := loadFixtures(t)
	const product = "globalsign-ov-1-personal"
	e := newEnv(t, "geotrust-dv-1-starter", func(c *Config) { c.CompanyName = "A company" })
	ctx := context.Background()

	// A DV issuance, a revocation, a quota refusal, a throttled call.
	res, err := e.is.Submit(ctx, request(t, ecKey(t), "www.example.com", "example.com"))
	if err != nil {
		t.Fatal(err)
	}
	done, _, err := e.pollUntilDone(t, e.is, res.Ticket, 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.is.Revoke(ctx, done.Leaf, 0); err != nil {
		t.Fatal(err)
	}
	e.fake.SetQuota("geotrust-dv-1-starter", 0)
	_, _ = e.is.Submit(ctx, request(t, ecKey(t), "example.com"))
	e.fake.Throttle(1)
	_, _ = e.is.Poll(ctx, res.Ticket)
	// An OV refusal on the same fake.
	ov, err := New(func() Config { c := e.cfg; c.ProductCode = product; return c }())
	if err != nil {
		t.Fatal(err)
	}
	res, err = ov.Submit(ctx, request(t, ecKey(t), "shop.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.fake.Reject(ticketOrder(t, res.Ticket), "no"); err != nil {
		t.Fatal(err)
	}
	_, _ = ov.Poll(ctx, res.Ticket)
	// A FILE order, which the adapter never places: sent by hand.
	csr := request(t, ecKey(t), "file.example.com").CSR
	var created createResponse
	if err := e.is.call(ctx, "CreateCertificateForPackageRequest", []param{
		{"ProductCode", "geotrust-dv-1-starter"}, {"ValidateType", "FILE"},
		{"Csr", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr.Raw}))},
	}, &created); err == nil {
		t.Fatal("the quota should be used up")
	}
	e.fake.SetQuota("geotrust-dv-1-starter", -1)
	if err := e.is.call(ctx, "CreateCertificateForPackageRequest", []param{
		{"ProductCode", "geotrust-dv-1-starter"}, {"ValidateType", "FILE"},
		{"Csr", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr.Raw}))},
	}, &created); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := e.is.describe(ctx, created.OrderID); err != nil {
			t.Fatal(err)
		}
	}
	// Authentication failures and a replay.
	nonce := acs3.NewNonce()
	sendSigned(t, e.fake, aliyuntest.DefaultAccessKeyID, aliyuntest.DefaultAccessKeySecret, time.Now(), nonce, nil)
	sendSigned(t, e.fake, aliyuntest.DefaultAccessKeyID, aliyuntest.DefaultAccessKeySecret, time.Now(), nonce, nil)
	sendSigned(t, e.fake, aliyuntest.DefaultAccessKeyID, "wrong", time.Now(), acs3.NewNonce(), nil)
	sendSigned(t, e.fake, "LTAIunknown", "wrong", time.Now(), acs3.NewNonce(), nil)

	calls := e.fake.Calls()
	for name, f := range fx {
		var want map[string]any
		if err := json.Unmarshal(f.Response, &want); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wantCode, _ := want["Code"].(string)
		wantType, _ := want["Type"].(string)
		wantVT, _ := want["ValidateType"].(string)
		i := slices.IndexFunc(calls, func(c aliyuntest.Call) bool {
			if c.Action != f.Action && wantCode == "" {
				return false
			}
			if c.Code != wantCode || c.Status != f.Status {
				return false
			}
			var got map[string]any
			_ = json.Unmarshal(c.Response, &got)
			return (wantType == "" || got["Type"] == wantType) && (wantVT == "" || got["ValidateType"] == wantVT)
		})
		if i < 0 {
			t.Errorf("%s: the fake never answered %s (status %d, code %q, type %q)", name, f.Action, f.Status, wantCode, wantType)
			continue
		}
		var got map[string]any
		_ = json.Unmarshal(calls[i].Response, &got)
		if k1, k2 := sortedKeys(got), sortedKeys(want); !slices.Equal(k1, k2) {
			t.Errorf("%s: the fake answers keys %v, the fixture has %v", name, k1, k2)
		}
		if rows, ok := want["CertificateOrderList"].([]any); ok && len(rows) > 0 {
			gotRows, _ := got["CertificateOrderList"].([]any)
			if len(gotRows) == 0 {
				t.Errorf("%s: the fake listed no rows", name)
			} else if k1, k2 := sortedKeys(gotRows[0].(map[string]any)), sortedKeys(rows[0].(map[string]any)); !slices.Equal(k1, k2) {
				t.Errorf("%s: the fake's rows have keys %v, the fixture's %v", name, k1, k2)
			}
		}
		if f.Status == 200 {
			sent := slices.Sorted(maps.Keys(calls[i].Params))
			if recorded := slices.Sorted(maps.Keys(f.Request)); !slices.Equal(sent, recorded) {
				t.Errorf("%s: the adapter sends %v, the fixture records %v", name, sent, recorded)
			}
		}
	}
}

func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }
