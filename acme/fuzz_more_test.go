package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmegw/acmegw/storage"
)

// FuzzVerifyJWS runs the whole signature path a "jwk" request takes after
// parsing (key checks, alg/key match, verification): it must never panic,
// and whatever verifies must have been signed with an acceptable key.
func FuzzVerifyJWS(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, &jose.SignerOptions{
		EmbedJWK:     true,
		ExtraHeaders: map[jose.HeaderKey]any{"nonce": "bm9uY2U", "url": "https://acme.example/acme/new-account"},
	})
	obj, _ := signer.Sign([]byte(`{}`))
	f.Add([]byte(obj.FullSerialize()))
	f.Add([]byte(strings.Replace(obj.FullSerialize(), `"signature":"`, `"signature":"AA`, 1)))
	f.Fuzz(func(t *testing.T, body []byte) {
		jws, _, p := parseJWS(body)
		if p != nil {
			return
		}
		sig := jws.Signatures[0].Protected
		if sig.JSONWebKey == nil {
			return
		}
		if p := checkAccountKey(sig.JSONWebKey, sig.Algorithm); p != nil {
			if p.Status != http.StatusBadRequest {
				t.Fatalf("key refusal %+v", p)
			}
			return
		}
		if _, err := jws.Verify(sig.JSONWebKey); err == nil {
			if _, err := thumbprint(sig.JSONWebKey); err != nil {
				t.Fatalf("verified with a key that has no thumbprint: %v", err)
			}
		}
	})
}

// FuzzCheckCSR feeds arbitrary DER to the finalize CSR checks: they must
// never panic and must refuse with badCSR (never another type) anything
// that is not exactly the order's names with an acceptable key.
func FuzzCheckCSR(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tmpl := range []*x509.CertificateRequest{
		{DNSNames: []string{"a.example.com"}},
		{Subject: pkix.Name{CommonName: "a.example.com"}},
		{DNSNames: []string{"a.example.com", "b.example.com"}},
		{DNSNames: []string{"A.EXAMPLE.COM"}},
	} {
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	acctKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	acctJWK, _ := json.Marshal(jose.JSONWebKey{Key: acctKey.Public()})
	acct := &storage.Account{ID: "a", KeyJWK: acctJWK}
	order := &storage.Order{Identifiers: []storage.Identifier{{Type: "dns", Value: "a.example.com"}}}
	f.Fuzz(func(t *testing.T, der []byte) {
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil {
			return
		}
		p := checkCSR(csr, order, acct)
		if p == nil {
			names := append([]string{}, csr.DNSNames...)
			if csr.Subject.CommonName != "" {
				names = append(names, csr.Subject.CommonName)
			}
			for _, n := range names {
				if !strings.EqualFold(n, "a.example.com") {
					t.Fatalf("accepted a CSR naming %q for an order of a.example.com", n)
				}
			}
			if len(csr.IPAddresses) > 0 {
				t.Fatal("accepted a CSR with IP addresses for a dns order")
			}
			return
		}
		if p.Type != errorNS+"badCSR" || p.Status != http.StatusBadRequest || p.Detail == "" {
			t.Fatalf("refusal %+v, want badCSR", p)
		}
	})
}

// FuzzWriteProblem renders problems with arbitrary text: the body must
// always be valid problem+json carrying the same type, detail and status.
func FuzzWriteProblem(f *testing.F) {
	f.Add("malformed", "plain detail", 400)
	f.Add("badNonce", "quote \" and \\ and \u2028 and <script>", 400)
	f.Add("serverInternal", "\xff\xfe invalid utf-8", 500)
	f.Fuzz(func(t *testing.T, kind, detail string, status int) {
		if status < 400 || status > 599 {
			status = 400
		}
		p := newProblem(kind, status, "%s", detail)
		rec := httptest.NewRecorder()
		writeProblem(rec, httptest.NewRequest(http.MethodPost, "/acme/new-order", nil), p)
		if rec.Code != status || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("status %d content type %q", rec.Code, rec.Header().Get("Content-Type"))
		}
		var got Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("body is not JSON: %v: %q", err, rec.Body.String())
		}
		if got.Type != jsonText(errorNS+kind) || got.Status != status {
			t.Fatalf("rendered %+v from %q/%d", got, kind, status)
		}
		if jsonText(detail) != got.Detail {
			t.Fatalf("detail %q rendered as %q", detail, got.Detail)
		}
	})
}

// jsonText is s as it reads back from JSON: encoding/json turns each invalid
// UTF-8 byte into U+FFFD and keeps everything else.
func jsonText(s string) string {
	var out string
	raw, _ := json.Marshal(s)
	_ = json.Unmarshal(raw, &out)
	return out
}
