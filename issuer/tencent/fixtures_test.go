package tencent_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/dcv"
	"github.com/acmegw/acmegw/issuer/tencent"
	"github.com/acmegw/acmegw/issuer/tencent/tencenttest"
)

// fixtureDir holds payloads recorded from one DV order and its revocation
// (request bodies as the brand sends them, answers in Tencent's documented
// shape), plus error answers.
const fixtureDir = "../../testdata/tencent"

// fixtureOrderID is the order the recorded DV scenario was made for.
const fixtureOrderID = "order-fixture"

type scenarioStep struct {
	Action   string `json:"action"`
	Request  string `json:"request"`
	Response string `json:"response"`
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}

func loadScenario(t *testing.T) []scenarioStep {
	t.Helper()
	var s struct {
		Steps []scenarioStep `json:"steps"`
	}
	if err := json.Unmarshal(readFixture(t, "scenario-dv.json"), &s); err != nil {
		t.Fatalf("scenario-dv.json: %v", err)
	}
	return s.Steps
}

func fixtureCSR(t *testing.T) *x509.CertificateRequest {
	t.Helper()
	block, _ := pem.Decode(readFixture(t, "www.example.com.csr.pem"))
	if block == nil {
		t.Fatal("www.example.com.csr.pem: no PEM")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func jsonValue(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("JSON: %v in %s", err, b)
	}
	return v
}

// replay is an API server that plays back the recorded answers in order,
// checking that each request is the recorded one.
type replay struct {
	t     *testing.T
	steps []scenarioStep
	mu    sync.Mutex
	next  int
}

func (rp *replay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rp.mu.Lock()
	defer rp.mu.Unlock()
	action := r.Header.Get("X-TC-Action")
	if rp.next >= len(rp.steps) {
		rp.t.Errorf("unexpected call %s %s after the recorded scenario", action, body)
		http.Error(w, "scenario over", http.StatusInternalServerError)
		return
	}
	step := rp.steps[rp.next]
	rp.next++
	if action != step.Action {
		rp.t.Errorf("call %d is %s, the recording has %s", rp.next, action, step.Action)
	}
	if v := r.Header.Get("X-TC-Version"); v != "2019-12-05" {
		rp.t.Errorf("%s: X-TC-Version %q", action, v)
	}
	if a := r.Header.Get("Authorization"); !strings.HasPrefix(a, "TC3-HMAC-SHA256 Credential="+tencenttest.DefaultSecretID+"/") ||
		!strings.Contains(a, "/ssl/tc3_request, SignedHeaders=content-type;host, Signature=") {
		rp.t.Errorf("%s: Authorization %q", action, a)
	}
	if got, want := jsonValue(rp.t, body), jsonValue(rp.t, readFixture(rp.t, step.Request)); !reflect.DeepEqual(got, want) {
		rp.t.Errorf("%s request differs from %s:\n got %s\nwant %s", action, step.Request, body, readFixture(rp.t, step.Request))
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(readFixture(rp.t, step.Response))
}

func (rp *replay) done() bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.next == len(rp.steps)
}

// recordPublisher remembers what was published and removed.
type recordPublisher struct {
	mu        sync.Mutex
	published []dcv.Record
	removed   []dcv.Record
}

func (p *recordPublisher) Publish(_ context.Context, r dcv.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = append(p.published, r)
	return nil
}

func (p *recordPublisher) Unpublish(_ context.Context, r dcv.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removed = append(p.removed, r)
	return nil
}

func (p *recordPublisher) Method() string { return "record" }

func fixtureBrand(t *testing.T, endpoint string, pub dcv.Publisher, edit func(*tencent.Config)) *tencent.Brand {
	t.Helper()
	cfg := tencent.Config{
		SecretID:     tencenttest.DefaultSecretID,
		SecretKey:    tencenttest.DefaultSecretKey,
		Endpoint:     endpoint,
		ProductID:    104,
		ContactEmail: "pki@example.com",
		Publisher:    pub,
	}
	if edit != nil {
		edit(&cfg)
	}
	b, err := tencent.New("tencent-fixture", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRecordedScenario replays the recorded DV order and revocation: the
// brand must send exactly the recorded requests, in order, and read the
// recorded answers into the records it publishes and the chain it returns.
// A second run answers with only the top-level DvAuthDetail fields, as
// single-name answers may.
func TestRecordedScenario(t *testing.T) {
	for _, variant := range []string{"DvAuths", "top-level fields"} {
		t.Run(variant, func(t *testing.T) {
			steps := loadScenario(t)
			if variant == "top-level fields" {
				steps[4].Response = "DescribeCertificateDetail.pending-toplevel.response.json"
			}
			rp := &replay{t: t, steps: steps}
			srv := httptest.NewServer(rp)
			defer srv.Close()
			pub := &recordPublisher{}
			b := fixtureBrand(t, srv.URL, pub, nil)

			csr := fixtureCSR(t)
			res, err := b.Submit(context.Background(), issuer.Request{OrderID: fixtureOrderID, CSR: csr, DNSNames: []string{"www.example.com"}})
			if err != nil {
				t.Fatalf("Submit: %v", err)
			}
			if res, err = b.Poll(context.Background(), res.Ticket); err != nil || len(res.Chain) == 0 {
				t.Fatalf("Poll = %+v, %v; want the chain", res, err)
			}
			var issued struct {
				Response struct{ CertificatePublicKey string }
			}
			_ = json.Unmarshal(readFixture(t, "DescribeCertificateDetail.issued.response.json"), &issued)
			wantLeaf, _ := pem.Decode([]byte(issued.Response.CertificatePublicKey))
			if wantLeaf == nil || !bytes.Equal(res.Leaf.Raw, wantLeaf.Bytes) {
				t.Error("the leaf is not the recorded one")
			}

			if err := b.Revoke(context.Background(), res.Leaf, 1); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if !rp.done() {
				t.Errorf("only %d of %d recorded calls made", rp.next, len(rp.steps))
			}

			var pending struct {
				Response struct{ DvAuthDetail struct{ DvAuthValue string } }
			}
			_ = json.Unmarshal(readFixture(t, "DescribeCertificateDetail.pending.response.json"), &pending)
			var revoke struct {
				Response struct {
					RevokeDomainValidateAuths []struct{ DomainValidateAuthValue string }
				}
			}
			_ = json.Unmarshal(readFixture(t, "RevokeCertificate.response.json"), &revoke)
			want := []dcv.Record{
				{Domain: "www.example.com", Name: "_dnsauth.www.example.com", Type: "TXT", Value: pending.Response.DvAuthDetail.DvAuthValue},
				{Domain: "www.example.com", Name: "_dnsauth.www.example.com", Type: "TXT", Value: revoke.Response.RevokeDomainValidateAuths[0].DomainValidateAuthValue},
			}
			if !slices.Equal(pub.published, want) || !slices.Equal(pub.removed, want) {
				t.Errorf("published %+v, removed %+v; want %+v for both", pub.published, pub.removed, want)
			}
		})
	}
}

// TestRecordedErrors feeds the recorded error answers to the brand.
func TestRecordedErrors(t *testing.T) {
	for _, tc := range []struct {
		file      string
		typ       string
		permanent bool
	}{
		{"error.AuthFailure.SignatureFailure.json", "serverInternal", true},
		{"error.AuthFailure.SignatureExpire.json", "serverInternal", true},
		{"error.LimitExceeded.RateLimitExceeded.json", "rateLimited", false},
		{"error.FailedOperation.ExceedsFreeLimit.json", "rateLimited", true},
		{"error.FailedOperation.MainDomainCertificateCountLimit.json", "rateLimited", true},
		{"error.InvalidParameter.DomainInvalid.json", "rejectedIdentifier", true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			answer := readFixture(t, tc.file)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(answer)
			}))
			defer srv.Close()
			b := fixtureBrand(t, srv.URL, nil, func(c *tencent.Config) { c.NoOrderTag = true })
			_, err := b.Submit(context.Background(), issuer.Request{OrderID: "o", CSR: fixtureCSR(t), DNSNames: []string{"www.example.com"}})
			var code struct {
				Response struct {
					Error     struct{ Code string }
					RequestId string
				}
			}
			_ = json.Unmarshal(answer, &code)
			wantError(t, err, tc.typ, tc.permanent, code.Response.Error.Code, code.Response.RequestId)
		})
	}
}

// TestFakeMatchesFixtures runs the recorded scenario against the fake and
// checks that the brand's requests and the fake's answers have the
// recorded shape (the same fields, recursively), so that the fixtures, the
// fake and the brand cannot drift apart.
func TestFakeMatchesFixtures(t *testing.T) {
	e := newEnv(t, tencenttest.Options{})
	b := e.brand(t, 104, func(c *tencent.Config) { c.MaxNames = 1; c.Wildcard = false })
	res, err := b.Submit(context.Background(), issuer.Request{OrderID: fixtureOrderID, CSR: fixtureCSR(t), DNSNames: []string{"www.example.com"}})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	if res, err = pollUntilDone(t, b, res, 3, nil); err != nil {
		t.Fatalf("Poll: %v", err)
	}
	if err := b.Revoke(context.Background(), res.Leaf, 1); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	got := e.fake.Exchanges()
	steps := loadScenario(t)
	if len(got) != len(steps) {
		var actions []string
		for _, x := range got {
			actions = append(actions, x.Action)
		}
		t.Fatalf("the fake saw %d calls %v, the recording has %d", len(got), actions, len(steps))
	}
	for i, step := range steps {
		x := got[i]
		if x.Action != step.Action {
			t.Errorf("call %d: %s, recorded %s", i, x.Action, step.Action)
			continue
		}
		compareShape(t, step.Request, jsonValue(t, x.Request), jsonValue(t, readFixture(t, step.Request)))
		compareShape(t, step.Response, jsonValue(t, x.Response), jsonValue(t, readFixture(t, step.Response)))
	}
}

// compareShape reports fields present on one side only. A null on either
// side matches anything, as Tencent answers null for unset fields; arrays
// are compared by their first elements.
func compareShape(t *testing.T, path string, got, want any) {
	t.Helper()
	if got == nil || want == nil {
		return
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: got %T, recorded an object", path, got)
			return
		}
		var only []string
		for k := range g {
			if _, ok := w[k]; !ok {
				only = append(only, "+"+k)
			}
		}
		for k := range w {
			if _, ok := g[k]; !ok {
				only = append(only, "-"+k)
			}
		}
		sort.Strings(only)
		if len(only) > 0 {
			t.Errorf("%s: fields differ from the recording (+ only in the fake's, - only in the recording): %v", path, only)
		}
		for k, wv := range w {
			compareShape(t, path+"."+k, g[k], wv)
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			t.Errorf("%s: got %T, recorded an array", path, got)
			return
		}
		if len(g) > 0 && len(w) > 0 {
			compareShape(t, path+"[0]", g[0], w[0])
		}
	default:
		if reflect.TypeOf(got) != reflect.TypeOf(want) {
			t.Errorf("%s: got %T, recorded %T", path, got, want)
		}
	}
}
