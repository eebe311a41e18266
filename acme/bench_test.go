package acme_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmegw/acmegw/acme"
	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/local"
	"github.com/acmegw/acmegw/storage"
	"github.com/acmegw/acmegw/storage/memory"
	"github.com/acmegw/acmegw/storage/redis"
	"github.com/acmegw/acmegw/validation"
)

// benchServer is an acme.Server called in-process (no TLS, no sockets), so
// a benchmark measures the server's own work per request.
type benchServer struct {
	srv   *acme.Server
	store storage.Store
	key   *ecdsa.PrivateKey
	kid   string
}

const benchBase = "http://acme.bench"

func newBenchServer(b *testing.B, store storage.Store) *benchServer {
	b.Helper()
	ca, err := local.Open(b.TempDir(), local.Options{})
	if err != nil {
		b.Fatal(err)
	}
	router, err := issuer.NewRouter("default", []issuer.Profile{{Name: "default", Brand: "local"}}, map[string]issuer.Issuer{"local": ca})
	if err != nil {
		b.Fatal(err)
	}
	srv := acme.New(acme.Config{
		Store: store, Router: router, Validator: validation.New(validation.Config{}),
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		RateLimits: acme.RateLimits{Disabled: true},
	})
	b.Cleanup(srv.Close)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s := &benchServer{srv: srv, store: store, key: key}
	rec := s.post(b, "/acme/new-account", `{"termsOfServiceAgreed":true}`, true)
	if rec.Code != http.StatusCreated {
		b.Fatalf("new account: %d %s", rec.Code, rec.Body)
	}
	s.kid = rec.Header().Get("Location")
	return s
}

// signed builds a request body outside the timed section.
func (s *benchServer) signed(b *testing.B, path, payload string, jwk bool) []byte {
	nonce := s.nonce(b)
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"nonce": nonce, "url": benchBase + path}}
	if jwk {
		opts.EmbedJWK = true
	} else {
		opts.ExtraHeaders["kid"] = s.kid
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key}, opts)
	if err != nil {
		b.Fatal(err)
	}
	obj, err := signer.Sign([]byte(payload))
	if err != nil {
		b.Fatal(err)
	}
	return []byte(obj.FullSerialize())
}

// nonce gets a fresh nonce from HEAD newNonce, as a client would.
func (s *benchServer) nonce(b *testing.B) string {
	req := httptest.NewRequest(http.MethodHead, benchBase+"/acme/new-nonce", nil)
	rec := httptest.NewRecorder()
	s.srv.ServeHTTP(rec, req)
	n := rec.Header().Get("Replay-Nonce")
	if rec.Code != http.StatusOK || n == "" {
		b.Fatalf("newNonce: %d %q", rec.Code, n)
	}
	return n
}

func (s *benchServer) serve(path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, benchBase+path, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/jose+json")
	rec := httptest.NewRecorder()
	s.srv.ServeHTTP(rec, req)
	return rec
}

func (s *benchServer) post(b *testing.B, path, payload string, jwk bool) *httptest.ResponseRecorder {
	return s.serve(path, s.signed(b, path, payload, jwk))
}

func benchStores(b *testing.B, f func(b *testing.B, store storage.Store)) {
	b.Run("memory", func(b *testing.B) { f(b, memory.New()) })
	b.Run("redis", func(b *testing.B) {
		st, err := redis.New(context.Background(), testredis.Start(b))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		f(b, st)
	})
}

// BenchmarkNewOrder is one newOrder request: nonce redemption, JWS
// verification, account lookup, order and authorization creation.
func BenchmarkNewOrder(b *testing.B) {
	benchStores(b, func(b *testing.B, store storage.Store) {
		s := newBenchServer(b, store)
		bodies := make([][]byte, b.N)
		for i := range bodies {
			bodies[i] = s.signed(b, "/acme/new-order", fmt.Sprintf(`{"identifiers":[{"type":"dns","value":"n%d.bench.test"}]}`, i), false)
		}
		b.ResetTimer()
		for i := range b.N {
			if rec := s.serve("/acme/new-order", bodies[i]); rec.Code != http.StatusCreated {
				b.Fatalf("new order: %d %s", rec.Code, rec.Body)
			}
		}
	})
}

// BenchmarkFinalize is one finalize of a ready order with the built-in CA:
// CSR checks, the issuance job run inline, certificate storage.
func BenchmarkFinalize(b *testing.B) {
	benchStores(b, func(b *testing.B, store storage.Store) {
		s := newBenchServer(b, store)
		ctx := context.Background()
		certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		paths := make([]string, b.N)
		bodies := make([][]byte, b.N)
		for i := range b.N {
			name := fmt.Sprintf("f%d.bench.test", i)
			rec := s.post(b, "/acme/new-order", fmt.Sprintf(`{"identifiers":[{"type":"dns","value":%q}]}`, name), false)
			var o struct {
				Authorizations []string `json:"authorizations"`
				Finalize       string   `json:"finalize"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &o); err != nil || rec.Code != http.StatusCreated {
				b.Fatalf("new order: %d %s", rec.Code, rec.Body)
			}
			// Mark the authorization valid, as a passed dns-01 would.
			id := o.Authorizations[0][strings.LastIndex(o.Authorizations[0], "/")+1:]
			a, err := store.GetAuthorization(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			a.Status = storage.StatusValid
			a.Challenges[0].Status = storage.StatusValid
			if err := store.UpdateAuthorization(ctx, a); err != nil {
				b.Fatal(err)
			}
			der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, certKey)
			paths[i] = strings.TrimPrefix(o.Finalize, benchBase)
			bodies[i] = s.signed(b, paths[i], fmt.Sprintf(`{"csr":%q}`, base64.RawURLEncoding.EncodeToString(der)), false)
		}
		b.ResetTimer()
		for i := range b.N {
			if rec := s.serve(paths[i], bodies[i]); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"valid"`) {
				b.Fatalf("finalize: %d %s", rec.Code, rec.Body)
			}
		}
	})
}

// BenchmarkNewNonce is one HEAD newNonce: a nonce made and MACed in-process.
func BenchmarkNewNonce(b *testing.B) {
	benchStores(b, func(b *testing.B, store storage.Store) {
		s := newBenchServer(b, store)
		b.ResetTimer()
		for range b.N {
			rec := httptest.NewRecorder()
			s.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, benchBase+"/acme/new-nonce", nil))
			if rec.Code != http.StatusOK {
				b.Fatal(rec.Code)
			}
		}
	})
}
