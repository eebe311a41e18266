package acme_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/acme"
	"github.com/acmegw/acmegw/internal/testlog"
	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/storage"
	"github.com/acmegw/acmegw/storage/memory"
	"github.com/acmegw/acmegw/storage/redis"
	"github.com/acmegw/acmegw/validation"
)

// rlForEachStore is forEachStore for a gateway with the given rate limits.
func rlForEachStore(t *testing.T, limits acme.RateLimits, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		fn(t, rlEnv(t, memory.New(), limits))
	})
	t.Run("redis", func(t *testing.T) {
		url := testredis.Start(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := redis.New(ctx, url)
		if err != nil {
			t.Fatalf("redis store: %v", err)
		}
		fn(t, rlEnv(t, st, limits))
	})
}

// rlEnv is the harness's env with a second gateway, configured with limits,
// in front of the same store, CA and DNS server (tests here use dns-01).
func rlEnv(t *testing.T, store storage.Store, limits acme.RateLimits) *env {
	t.Helper()
	e := newEnv(t, store)
	logs := new(testlog.Buffer)
	e.logs = logs
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("rate-limited server log:\n%s", logs)
		}
	})
	router, err := issuer.NewRouter("default", []issuer.Profile{
		{Name: "default", Description: "built-in CA, 90 days", Brand: "local"},
	}, map[string]issuer.Issuer{"local": e.brand})
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	e.server = acme.New(acme.Config{
		Store:      store,
		Validator:  validation.New(validation.Config{Resolver: e.dns.Addr(), AllowPrivate: true, Timeout: 5 * time.Second}),
		Router:     router,
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RateLimits: limits,
	})
	t.Cleanup(e.server.Close)
	e.srv = httptest.NewTLSServer(e.server)
	t.Cleanup(e.srv.Close)
	e.http = e.srv.Client()
	e.http.Timeout = 30 * time.Second
	e.dir = directoryDoc{}
	e.get(t, e.srv.URL+"/directory").mustJSON(t, http.StatusOK, &e.dir)
	return e
}

// rlOnly is a configuration in which only the given limits are on.
func rlOnly(limits map[string]storage.RateLimit) acme.RateLimits {
	all := map[string]storage.RateLimit{}
	for name := range acme.DefaultRateLimits() {
		all[name] = storage.RateLimit{} // off
	}
	for name, l := range limits {
		all[name] = l
	}
	return acme.RateLimits{Limits: all}
}

// rlWant429 checks a rateLimited answer: 429, the problem type, a detail
// naming the limit, its value and a retry time, and a Retry-After of whole
// seconds within (0, max]; it returns the Retry-After.
func rlWant429(t *testing.T, r *resp, limit, value string, max time.Duration) time.Duration {
	t.Helper()
	r.wantProblem(t, http.StatusTooManyRequests, "rateLimited", limit, "limit "+value, "retry after 20")
	ra := r.Header.Get("Retry-After")
	secs, err := strconv.Atoi(ra)
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > max {
		t.Errorf("%s: Retry-After %q, want whole seconds in 1..%v", r, ra, max.Seconds())
	}
	return time.Duration(secs) * time.Second
}

// rlNewOrder asks for an order and returns the answer, whatever it is.
func (a *acct) rlNewOrder(t *testing.T, names ...string) *resp {
	t.Helper()
	return a.post(t, a.e.dir.NewOrder, map[string]any{"identifiers": dnsIDs(names...)})
}

func TestRateLimitNewOrders(t *testing.T) {
	limits := rlOnly(map[string]storage.RateLimit{acme.LimitNewOrdersPerAccount: {Count: 2, Period: time.Hour}})
	rlForEachStore(t, limits, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		a.newOrder(t, dnsIDs("one.example.com")...)
		a.newOrder(t, dnsIDs("two.example.com")...)
		r := a.rlNewOrder(t, "three.example.com")
		rlWant429(t, r, "newOrdersPerAccount", "2 per 1h0m0s", 30*time.Minute)
		if p := r.wantProblem(t, 429, "rateLimited"); !strings.HasPrefix(p.Detail, "too many new orders for this account") {
			t.Errorf("detail %q", p.Detail)
		}
		if r.Header.Get("Location") != "" {
			t.Errorf("refused newOrder has a Location: %s", r.Header.Get("Location"))
		}
		if got := a.orders(t); len(got) != 2 {
			t.Errorf("account has %d orders after a refused newOrder, want 2: %q", len(got), got)
		}
		// The limit is per account.
		e.newAccount(t).newOrder(t, dnsIDs("three.example.com")...)
	})
}

func TestRateLimitRenewalExempt(t *testing.T) {
	limits := rlOnly(map[string]storage.RateLimit{
		acme.LimitNewOrdersPerAccount:             {Count: 1, Period: time.Hour},
		acme.LimitCertificatesPerRegisteredDomain: {Count: 1, Period: 24 * time.Hour},
	})
	rlForEachStore(t, limits, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		first := a.issue(t, dnsIDs("www.renew.example", "api.renew.example")...)

		// Same names, any order: a renewal, exempt from both limits.
		second := a.issue(t, dnsIDs("api.renew.example", "www.renew.example")...)
		if first.certURL == second.certURL {
			t.Fatal("renewal returned the same certificate")
		}

		// Other names: this account's single order is spent.
		rlWant429(t, a.rlNewOrder(t, "www.elsewhere.example"), "newOrdersPerAccount", "1 per 1h0m0s", time.Hour)
		// Both limits refuse: the answer names the one that frees up last.
		rlWant429(t, a.rlNewOrder(t, "other.renew.example"), "certificatesPerRegisteredDomain", "1 per 24h0m0s", 24*time.Hour)

		// Another account, same registered domain: the domain's single
		// certificate is spent, and it is refused before any order exists.
		b := e.newAccount(t)
		r := b.rlNewOrder(t, "other.renew.example")
		rlWant429(t, r, "certificatesPerRegisteredDomain", "1 per 24h0m0s", 24*time.Hour)
		if p := r.wantProblem(t, 429, "rateLimited"); !strings.Contains(p.Detail, "renew.example") {
			t.Errorf("detail %q does not name the registered domain", p.Detail)
		}
		if got := b.orders(t); len(got) != 0 {
			t.Errorf("refused account has orders %q", got)
		}
		// Its own newOrder allowance was not spent by the refusal.
		b.newOrder(t, dnsIDs("elsewhere.example.org")...)
	})
}

func TestRateLimitCertificatesAtFinalize(t *testing.T) {
	limits := rlOnly(map[string]storage.RateLimit{
		acme.LimitCertificatesPerRegisteredDomain: {Count: 1, Period: 24 * time.Hour},
	})
	rlForEachStore(t, limits, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		// Two orders pass newOrder while the domain's certificate is unspent.
		_, o1 := a.readyOrder(t, dnsIDs("a.fin.example")...)
		_, o2 := a.readyOrder(t, dnsIDs("b.fin.example")...)
		key := newECKey(t)
		a.finalize(t, o1, makeCSR(t, key, csrSpec{DNS: []string{"a.fin.example"}})).mustJSON(t, http.StatusOK, nil)
		submits := e.brand.submits.Load()
		r := a.finalize(t, o2, makeCSR(t, key, csrSpec{DNS: []string{"b.fin.example"}}))
		rlWant429(t, r, "certificatesPerRegisteredDomain", "1 per 24h0m0s", 24*time.Hour)
		if n := e.brand.submits.Load(); n != submits {
			t.Errorf("the brand was asked to issue despite the limit")
		}
		if o := a.order(t, r.URL[:len(r.URL)-len("/finalize")]); o.Status != "ready" {
			t.Errorf("rate-limited order is %s, want still ready", o.Status)
		}
	})
}

func TestRateLimitFinalizePerOrder(t *testing.T) {
	limits := rlOnly(map[string]storage.RateLimit{acme.LimitFinalizePerOrder: {Count: 2, Period: time.Hour}})
	rlForEachStore(t, limits, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		u, o := a.readyOrder(t, dnsIDs("csr.example.com")...)
		bad := makeCSR(t, newECKey(t), csrSpec{DNS: []string{"wrong.example.com"}})
		for range 2 {
			a.finalize(t, o, bad).wantProblem(t, http.StatusBadRequest, "badCSR")
		}
		rlWant429(t, a.finalize(t, o, bad), "finalizePerOrder", "2 per 1h0m0s", 30*time.Minute)
		if got := a.order(t, u); got.Status != "ready" {
			t.Errorf("order is %s, want ready", got.Status)
		}
	})
}

func TestRateLimitFailedValidations(t *testing.T) {
	limits := rlOnly(map[string]storage.RateLimit{acme.LimitFailedValidationsPerAccountAndName: {Count: 1, Period: time.Hour}})
	rlForEachStore(t, limits, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		// Answer dns-01 without publishing the record: the validation fails.
		_, o := a.newOrder(t, dnsIDs("fail.example.com")...)
		az := a.authz(t, o.Authorizations[0])
		ch, _ := az.challenge("dns-01")
		var got challengeDoc
		a.post(t, ch.URL, struct{}{}).mustJSON(t, http.StatusOK, &got)
		if got.Status != "invalid" {
			t.Fatalf("unanswered dns-01 is %s, want invalid", got.Status)
		}

		// A new order for the same name may not start another validation.
		_, o = a.newOrder(t, dnsIDs("fail.example.com")...)
		az = a.authz(t, o.Authorizations[0])
		ch, _ = az.challenge("dns-01")
		a.publishDNS01(t, az)
		r := a.post(t, ch.URL, struct{}{})
		rlWant429(t, r, "failedValidationsPerAccountAndName", "1 per 1h0m0s", time.Hour)
		if p := r.wantProblem(t, 429, "rateLimited"); !strings.Contains(p.Detail, "fail.example.com") {
			t.Errorf("detail %q does not name the identifier", p.Detail)
		}
		if az := a.authz(t, o.Authorizations[0]); az.Status != "pending" {
			t.Errorf("authorization is %s after a refused challenge, want pending", az.Status)
		} else if c, _ := az.challenge("dns-01"); c.Status != "pending" {
			t.Errorf("challenge is %s after a refusal, want pending", c.Status)
		}

		// Other names and other accounts are unaffected.
		_, o = a.newOrder(t, dnsIDs("ok.example.com")...)
		a.solve(t, o)
		b := e.newAccount(t)
		_, o = b.newOrder(t, dnsIDs("fail.example.com")...)
		b.solve(t, o)
	})
}

func TestRateLimitNewAccounts(t *testing.T) {
	limits := rlOnly(map[string]storage.RateLimit{acme.LimitNewAccountsPerIP: {Count: 1, Period: time.Hour}})
	rlForEachStore(t, limits, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		other := &acct{e: e, key: newECKey(t)}
		r := other.postJWK(t, e.dir.NewAccount, map[string]any{"termsOfServiceAgreed": true})
		rlWant429(t, r, "newAccountsPerIP", "1 per 1h0m0s", time.Hour)
		if p := r.wantProblem(t, 429, "rateLimited"); !strings.Contains(p.Detail, "127.0.0.1") {
			t.Errorf("detail %q does not name the address", p.Detail)
		}
		// No account was created for that key.
		r = other.postJWK(t, e.dir.NewAccount, map[string]any{"onlyReturnExisting": true})
		r.wantProblem(t, http.StatusBadRequest, "accountDoesNotExist")
		// An existing account is still found.
		r = a.postJWK(t, e.dir.NewAccount, map[string]any{"termsOfServiceAgreed": true})
		r.mustJSON(t, http.StatusOK, nil)
		// X-Forwarded-For is ignored unless trusted.
		r = rlPostJWKWithHeader(t, other, e.dir.NewAccount, "X-Forwarded-For", "198.51.100.7")
		rlWant429(t, r, "newAccountsPerIP", "1 per 1h0m0s", time.Hour)
	})
}

func TestRateLimitForwardedFor(t *testing.T) {
	limits := rlOnly(map[string]storage.RateLimit{acme.LimitNewAccountsPerIP: {Count: 1, Period: time.Hour}})
	limits.TrustForwardedFor = true
	limits.Overrides = map[string]map[string]storage.RateLimit{
		acme.LimitNewAccountsPerIP: {"203.0.113.9": {}}, // exempt
	}
	e := rlEnv(t, memory.New(), limits)
	post := func(xff string) *resp {
		return rlPostJWKWithHeader(t, &acct{e: e, key: newECKey(t)}, e.dir.NewAccount, "X-Forwarded-For", xff)
	}
	post("198.51.100.7").mustJSON(t, http.StatusCreated, nil)
	// The last entry is the one the trusted proxy added; earlier ones are the client's say.
	rlWant429(t, post("192.0.2.1, 198.51.100.7"), "newAccountsPerIP", "1 per 1h0m0s", time.Hour)
	post("198.51.100.7, 192.0.2.1").mustJSON(t, http.StatusCreated, nil)
	// IPv6 clients count per /64.
	post("2001:db8:1:2::1").mustJSON(t, http.StatusCreated, nil)
	r := post("2001:db8:1:2:ffff::2")
	rlWant429(t, r, "newAccountsPerIP", "1 per 1h0m0s", time.Hour)
	r.wantProblem(t, 429, "rateLimited", "2001:db8:1:2::/64")
	// An override exempts an address.
	for range 3 {
		post("203.0.113.9").mustJSON(t, http.StatusCreated, nil)
	}
}

// rlPostJWKWithHeader is postJWK with one extra request header.
func rlPostJWKWithHeader(t *testing.T, a *acct, url, name, value string) *resp {
	t.Helper()
	body := signJWS(t, a.key, "", a.e.nonce(t), url, payloadBytes(t, map[string]any{"termsOfServiceAgreed": true}))
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/jose+json")
	req.Header.Set(name, value)
	res, err := a.e.http.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := &resp{Method: http.MethodPost, URL: url, Status: res.StatusCode, Header: res.Header, Body: b}
	checkNonceHeader(t, r)
	return r
}

func TestRateLimitDisabledAndOverrides(t *testing.T) {
	tight := map[string]storage.RateLimit{acme.LimitNewOrdersPerAccount: {Count: 1, Period: time.Hour}}
	t.Run("disabled", func(t *testing.T) {
		limits := rlOnly(tight)
		limits.Disabled = true
		e := rlEnv(t, memory.New(), limits)
		a := e.newAccount(t)
		for range 3 {
			a.newOrder(t, dnsIDs("x.example.com")...)
		}
	})
	t.Run("override", func(t *testing.T) {
		e := rlEnv(t, memory.New(), rlOnly(tight))
		a, b := e.newAccount(t), e.newAccount(t)
		limits := rlOnly(tight)
		limits.Overrides = map[string]map[string]storage.RateLimit{
			acme.LimitNewOrdersPerAccount: {accountID(a): {Count: 3, Period: time.Hour}},
		}
		e = rlEnvOn(t, e, limits)
		a.e, b.e = e, e
		// Distinct names: asking again for the same names reuses the order.
		for i := range 3 {
			a.newOrder(t, dnsIDs(fmt.Sprintf("x%d.example.com", i))...)
		}
		rlWant429(t, a.rlNewOrder(t, "x.example.com"), "newOrdersPerAccount", "3 per 1h0m0s", 20*time.Minute)
		b.newOrder(t, dnsIDs("y.example.com")...)
		rlWant429(t, b.rlNewOrder(t, "x.example.com"), "newOrdersPerAccount", "1 per 1h0m0s", time.Hour)
	})
}

// accountID is the id at the end of an account URL.
func accountID(a *acct) string { return a.url[strings.LastIndexByte(a.url, '/')+1:] }

// rlEnvOn replaces e's rate-limited gateway by one with other limits over
// the same store, keeping the base URL so existing account URLs stay valid.
func rlEnvOn(t *testing.T, e *env, limits acme.RateLimits) *env {
	t.Helper()
	router, err := issuer.NewRouter("default", []issuer.Profile{{Name: "default", Description: "built-in CA", Brand: "local"}},
		map[string]issuer.Issuer{"local": e.brand})
	if err != nil {
		t.Fatal(err)
	}
	srv := acme.New(acme.Config{
		Store:      e.store,
		Validator:  validation.New(validation.Config{Resolver: e.dns.Addr(), AllowPrivate: true, Timeout: 5 * time.Second}),
		Router:     router,
		Logger:     slog.New(slog.DiscardHandler),
		BaseURL:    e.srv.URL,
		RateLimits: limits,
	})
	t.Cleanup(srv.Close)
	front := httptest.NewTLSServer(srv)
	t.Cleanup(front.Close)
	// Same URLs (BaseURL), other listener: rewrite each request's host.
	client := front.Client()
	client.Transport = rlRedirect{to: front, base: client.Transport}
	return &env{srv: e.srv, server: srv, store: e.store, dns: e.dns, ca: e.ca, brand: e.brand, http: client, dir: e.dir}
}

// rlRedirect sends every request to another test server.
type rlRedirect struct {
	to   *httptest.Server
	base http.RoundTripper
}

func (r rlRedirect) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Host = strings.TrimPrefix(r.to.URL, "https://")
	return r.base.RoundTrip(req)
}

// rlFailingStore is a store whose rate limits are unreachable.
type rlFailingStore struct{ storage.Store }

func (rlFailingStore) SpendRateLimit(context.Context, string, storage.RateLimit, int) (storage.RateDecision, error) {
	return storage.RateDecision{}, errors.New("connection refused")
}

func (rlFailingStore) SpendRateLimits(context.Context, []storage.RateSpend) ([]storage.RateDecision, error) {
	return nil, errors.New("connection refused")
}

func (rlFailingStore) SpendRateLimitsUnlessRenewal(context.Context, string, []string, []storage.RateSpend) (bool, []storage.RateDecision, error) {
	return false, nil, errors.New("connection refused")
}

func TestRateLimitStoreDown(t *testing.T) {
	st := memory.New()
	e := rlEnv(t, rlFailingStore{st}, acme.RateLimits{})
	ok := &acct{e: e, key: newECKey(t)}
	r := ok.postJWK(t, e.dir.NewAccount, map[string]any{"termsOfServiceAgreed": true})
	r.wantProblem(t, http.StatusServiceUnavailable, "serverInternal")
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("%s: no Retry-After", r)
	}
	if _, err := st.GetAccountByThumbprint(t.Context(), thumbprint(t, ok.key.Public())); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("account stored although its limit could not be checked: %v", err)
	}
	// The operator reads the store's own error in the log; the client
	// does not (it may name internal hosts).
	if !strings.Contains(e.logs.String(), `err="connection refused"`) {
		t.Errorf("the problem's log line does not carry the store's error:\n%s", e.logs)
	}
	if strings.Contains(string(r.Body), "connection refused") {
		t.Errorf("the store's error reached the client: %s", r)
	}
}

func TestRateLimitsValidate(t *testing.T) {
	good := acme.RateLimits{
		Limits:    map[string]storage.RateLimit{acme.LimitNewOrdersPerAccount: {Count: 10, Period: time.Hour, Burst: 2}, acme.LimitFinalizePerOrder: {}},
		Overrides: map[string]map[string]storage.RateLimit{acme.LimitNewOrdersPerAccount: {"acct": {Count: 0}}},
	}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(%+v): %v", good, err)
	}
	for _, bad := range []acme.RateLimits{
		{Limits: map[string]storage.RateLimit{"newOrdersPerAcount": {Count: 1, Period: time.Hour}}},
		{Limits: map[string]storage.RateLimit{acme.LimitNewOrdersPerAccount: {Count: 1}}},
		{Limits: map[string]storage.RateLimit{acme.LimitNewOrdersPerAccount: {Count: 1, Period: time.Hour, Burst: -1}}},
		{Overrides: map[string]map[string]storage.RateLimit{"nope": {}}},
		{Overrides: map[string]map[string]storage.RateLimit{acme.LimitNewOrdersPerAccount: {"a": {Count: 5}}}},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted it", bad)
		}
	}
	for name, l := range acme.DefaultRateLimits() {
		if err := l.Validate(); err != nil {
			t.Errorf("default %s: %v", name, err)
		}
	}
}
