package acme_test

import (
	"context"
	"crypto"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmegw/acmegw/acme"
	"github.com/acmegw/acmegw/storage"
	"github.com/acmegw/acmegw/storage/memory"
)

// eabJWS builds an externalAccountBinding over key's public JWK, MACed with
// hmacKey under kid and addressed to url, with optional extra protected headers.
func eabJWS(t testing.TB, key crypto.Signer, kid string, hmacKey []byte, url string, extra map[jose.HeaderKey]any) json.RawMessage {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", kid).WithHeader("url", url)
	for k, v := range extra {
		opts = opts.WithHeader(k, v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: hmacKey}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(jwkOf(t, key.Public()))
	if err != nil {
		t.Fatal(err)
	}
	return json.RawMessage(obj.FullSerialize())
}

func addEABKey(t testing.TB, st storage.Store, kid string, profiles, domains []string) []byte {
	t.Helper()
	hmacKey := []byte("an-example-hmac-key-of-32-bytes!")
	err := st.CreateEABKey(context.Background(), &storage.EABKey{
		KID: kid, HMACKey: hmacKey, Profiles: profiles, Domains: domains,
		Status: storage.StatusValid, CreatedAt: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return hmacKey
}

// registerEAB registers an account bound to kid and returns it.
func registerEAB(t testing.TB, e *env, kid string, hmacKey []byte) *acct {
	t.Helper()
	a := &acct{e: e, key: newECKey(t)}
	r := a.postJWK(t, e.dir.NewAccount, map[string]any{
		"termsOfServiceAgreed":   true,
		"externalAccountBinding": eabJWS(t, a.key, kid, hmacKey, e.dir.NewAccount, nil),
	})
	var doc accountDoc
	r.mustJSON(t, http.StatusCreated, &doc)
	a.url = r.Header.Get("Location")
	return a
}

func TestEABRegistration(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		hmacKey := addEABKey(t, e.store, "team-a", nil, nil)
		registerEAB(t, e, "team-a", hmacKey)

		cases := []struct {
			name  string
			eab   func(key crypto.Signer) json.RawMessage
			typ   string
			hints []string
		}{
			{"unknown kid", func(k crypto.Signer) json.RawMessage {
				return eabJWS(t, k, "nobody", hmacKey, e.dir.NewAccount, nil)
			}, "unauthorized", []string{"nobody"}},
			{"wrong MAC key", func(k crypto.Signer) json.RawMessage {
				return eabJWS(t, k, "team-a", []byte("some-other-key-of-thirty-two-by!"), e.dir.NewAccount, nil)
			}, "unauthorized", []string{"MAC"}},
			{"wrong url", func(k crypto.Signer) json.RawMessage {
				return eabJWS(t, k, "team-a", hmacKey, e.dir.NewOrder, nil)
			}, "malformed", []string{"url"}},
			{"nonce in binding", func(k crypto.Signer) json.RawMessage {
				return eabJWS(t, k, "team-a", hmacKey, e.dir.NewAccount, map[jose.HeaderKey]any{"nonce": "abc"})
			}, "malformed", []string{"nonce"}},
			{"binds another key", func(k crypto.Signer) json.RawMessage {
				return eabJWS(t, newECKey(t), "team-a", hmacKey, e.dir.NewAccount, nil)
			}, "unauthorized", []string{"another key"}},
			{"not a JWS", func(crypto.Signer) json.RawMessage { return json.RawMessage(`"x"`) }, "malformed", nil},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				a := &acct{e: e, key: newECKey(t)}
				r := a.postJWK(t, e.dir.NewAccount, map[string]any{"externalAccountBinding": c.eab(a.key)})
				status := http.StatusBadRequest
				if c.typ == "unauthorized" {
					status = http.StatusForbidden
				}
				r.wantProblem(t, status, c.typ, c.hints...)
				// Nothing was created: the key is still unknown.
				a.postJWK(t, e.dir.NewAccount, map[string]any{"onlyReturnExisting": true}).wantProblem(t, 400, "accountDoesNotExist")
			})
		}
	})
}

func TestEABRequired(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		var dir struct {
			Meta struct {
				ExternalAccountRequired bool `json:"externalAccountRequired"`
			} `json:"meta"`
		}
		e.get(t, e.srv.URL+"/directory").mustJSON(t, http.StatusOK, &dir)
		if !dir.Meta.ExternalAccountRequired {
			t.Error("directory meta.externalAccountRequired is false")
		}
		a := &acct{e: e, key: newECKey(t)}
		a.postJWK(t, e.dir.NewAccount, map[string]any{"termsOfServiceAgreed": true}).wantProblem(t, http.StatusUnauthorized, "externalAccountRequired", "External Account Binding")
		hmacKey := addEABKey(t, e.store, "team-b", nil, nil)
		b := registerEAB(t, e, "team-b", hmacKey)
		b.newOrder(t, dnsIDs("eab.example.com")...)
	}, withConfig(func(c *acme.Config) { c.ExternalAccountRequired = true }))
}

// TestEABEntitlement shows an external account limited to its profiles and
// domains, its first profile as default, and revocation cutting it off.
func TestEABEntitlement(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		hmacKey := addEABKey(t, e.store, "team-a", []string{"shortlived"}, []string{"*.a.example", "a.example", "10.0.0.0/8"})
		a := registerEAB(t, e, "team-a", hmacKey)

		_, o := a.newOrder(t, dnsIDs("www.a.example", "a.example")...)
		if o.Profile != "shortlived" {
			t.Errorf("order without a profile got %q, want the account's first profile shortlived", o.Profile)
		}
		a.post(t, e.dir.NewOrder, map[string]any{"identifiers": dnsIDs("www.a.example"), "profile": "default"}).
			wantProblem(t, 403, "unauthorized", "team-a", "default", "shortlived")
		a.post(t, e.dir.NewOrder, map[string]any{"identifiers": dnsIDs("www.b.example")}).
			wantProblem(t, 400, "rejectedIdentifier", "www.b.example", "*.a.example")
		a.post(t, e.dir.NewOrder, map[string]any{"identifiers": []ident{{Type: "ip", Value: "10.1.2.3"}}}).mustJSON(t, http.StatusCreated, &o)
		a.post(t, e.dir.NewOrder, map[string]any{"identifiers": []ident{{Type: "ip", Value: "192.0.2.1"}}}).
			wantProblem(t, 400, "rejectedIdentifier", "192.0.2.1")
		before := len(a.orders(t))

		k, err := e.store.GetEABKey(context.Background(), "team-a")
		if err != nil {
			t.Fatal(err)
		}
		k.Status = storage.StatusRevoked
		if err := e.store.UpdateEABKey(context.Background(), k); err != nil {
			t.Fatal(err)
		}
		a.post(t, e.dir.NewOrder, map[string]any{"identifiers": dnsIDs("new.a.example")}).wantProblem(t, 403, "unauthorized", "revoked")
		if after := len(a.orders(t)); after != before {
			t.Errorf("refused orders left %d orders behind", after-before)
		}
		c := &acct{e: e, key: newECKey(t)}
		c.postJWK(t, e.dir.NewAccount, map[string]any{
			"externalAccountBinding": eabJWS(t, c.key, "team-a", hmacKey, e.dir.NewAccount, nil),
		}).wantProblem(t, 403, "unauthorized", "revoked")
	})
}

// TestOrderReuse shows that asking again for the same names and profile
// returns the same order (201, same Location) while it can still lead to a
// certificate, and a new one otherwise.
func TestOrderReuse(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		first, _ := a.newOrder(t, dnsIDs("reuse.example.com", "www.reuse.example.com")...)
		again, _ := a.newOrder(t, dnsIDs("reuse.example.com", "www.reuse.example.com")...)
		if again != first {
			t.Errorf("same request gave order %s, want the pending %s", again, first)
		}
		other, _ := a.newOrder(t, dnsIDs("www.reuse.example.com", "reuse.example.com")...)
		if other == first {
			t.Error("identifiers in another order were given the same order; lego compares them as sent")
		}
		short, _ := a.newOrder(t, dnsIDs("reuse.example.com", "www.reuse.example.com")...)
		if short != first {
			t.Error("third request got a new order")
		}
		r := a.post(t, e.dir.NewOrder, map[string]any{"identifiers": dnsIDs("reuse.example.com", "www.reuse.example.com"), "profile": "shortlived"})
		var o orderDoc
		r.mustJSON(t, http.StatusCreated, &o)
		if r.Header.Get("Location") == first {
			t.Error("another profile reused the order")
		}
		b := e.newAccount(t)
		if loc, _ := b.newOrder(t, dnsIDs("reuse.example.com", "www.reuse.example.com")...); loc == first {
			t.Error("another account was given this account's order")
		}
	})
}

// TestEABRateLimitOverride shows one "eab:<kid>" override raising a limit
// for every account of that external account, while others keep the default.
func TestEABRateLimitOverride(t *testing.T) {
	t.Parallel()
	limits := acme.RateLimits{
		Limits: map[string]storage.RateLimit{acme.LimitNewOrdersPerAccount: {Count: 1, Period: time.Hour}},
		Overrides: map[string]map[string]storage.RateLimit{
			acme.LimitNewOrdersPerAccount: {"eab:team-r": {Count: 3, Period: time.Hour}},
		},
	}
	e := newEnv(t, memory.New(), withConfig(func(c *acme.Config) { c.RateLimits = limits }))
	hmacKey := addEABKey(t, e.store, "team-r", nil, nil)
	tenant := registerEAB(t, e, "team-r", hmacKey)
	for _, n := range []string{"r1.example.com", "r2.example.com", "r3.example.com"} {
		tenant.newOrder(t, dnsIDs(n)...)
	}
	tenant.post(t, e.dir.NewOrder, map[string]any{"identifiers": dnsIDs("r4.example.com")}).
		wantProblem(t, http.StatusTooManyRequests, "rateLimited", "3 per 1h0m0s")
	other := e.newAccount(t)
	other.newOrder(t, dnsIDs("o1.example.com")...)
	other.post(t, e.dir.NewOrder, map[string]any{"identifiers": dnsIDs("o2.example.com")}).
		wantProblem(t, http.StatusTooManyRequests, "rateLimited", "1 per 1h0m0s")
}
