package acme_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/acme"
	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/issuer/local"
	"github.com/acmegw/acmegw/storage/memory"
	"github.com/acmegw/acmegw/storage/redis"
)

// TestOrdersListPaging lists more orders than fit one page: the next page
// is a Link rel="next" whose URL (query included) the client signs as is.
func TestOrdersListPaging(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		var want []string
		for i := range 51 {
			u, _ := a.newOrder(t, dnsIDs(fmt.Sprintf("page%d.example.com", i))...)
			want = append(want, u)
		}
		var got []string
		url := a.url + "/orders"
		for page := 0; url != ""; page++ {
			if page > 3 {
				t.Fatal("too many pages")
			}
			r := a.post(t, url, nil)
			var l struct {
				Orders []string `json:"orders"`
			}
			r.mustJSON(t, http.StatusOK, &l)
			got = append(got, l.Orders...)
			next := links(r.Header, "next")
			if len(next) > 1 {
				t.Fatalf("%d next links", len(next))
			}
			url = ""
			if len(next) == 1 {
				url = next[0]
				if !strings.HasPrefix(url, a.url+"/orders?") {
					t.Fatalf("next page %q", url)
				}
			}
			if page == 0 && (len(l.Orders) != 50 || url == "") {
				t.Errorf("first page has %d orders, next %q", len(l.Orders), url)
			}
		}
		sameStrings(t, "all pages", got, want)
	})
}

// TestAlternateChains serves a CA with a cross-signed intermediate: each
// download names the other chain with one rel="alternate" line and never
// rel="up", and both chains verify to their own roots.
func TestAlternateChains(t *testing.T) {
	t.Parallel()
	e := newEnv(t, memory.New(), withCA(local.Options{AlternateChain: true}))
	a := e.newAccount(t)
	c := a.issue(t, dnsIDs("alt.example.com")...)

	r := a.post(t, c.certURL, nil)
	sameStrings(t, "alternate links of the default chain", links(r.Header, "alternate"), []string{c.certURL + "/1"})
	for _, l := range r.Header.Values("Link") {
		if strings.Count(l, "rel=") != 1 {
			t.Errorf("Link line %q carries more than one relation", l)
		}
	}
	alt := a.download(t, c.certURL+"/1")
	r = a.post(t, c.certURL+"/1", nil)
	sameStrings(t, "alternate links of the alternate chain", links(r.Header, "alternate"), []string{c.certURL})
	if !bytes.Equal(alt[0].Raw, c.chain[0].Raw) {
		t.Error("alternate chain has another leaf")
	}
	e.verifyChain(t, c.chain, "alt.example.com")
	roots := x509.NewCertPool()
	roots.AddCert(e.ca.AlternateRoot())
	inter := x509.NewCertPool()
	for _, ic := range alt[1:] {
		inter.AddCert(ic)
	}
	if _, err := alt[0].Verify(x509.VerifyOptions{DNSName: "alt.example.com", Roots: roots, Intermediates: inter}); err != nil {
		t.Errorf("alternate chain does not verify to the alternate root: %v", err)
	}
	a.post(t, c.certURL+"/2", nil).wantProblem(t, 404, "malformed", "alternate")
}

// TestPostAsGetOnly checks that resources read with POST-as-GET refuse a
// payload instead of silently ignoring it.
func TestPostAsGetOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, memory.New())
	a := e.newAccount(t)
	orderURL, o := a.newOrder(t, dnsIDs("pag.example.com")...)
	a.post(t, orderURL, struct{}{}).wantProblem(t, 400, "malformed", "POST-as-GET")
	a.post(t, o.Authorizations[0], struct{}{}).wantProblem(t, 400, "malformed", "deactivated")
	if got := a.order(t, orderURL); got.Status != "pending" {
		t.Errorf("order is %s", got.Status)
	}
	for _, u := range []string{e.dir.NewOrder, orderURL, o.Authorizations[0], a.url} {
		if r := e.get(t, u); r.Status != http.StatusMethodNotAllowed || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: %s", u, r)
		}
	}
}

// TestExpiredOrder lets an order and its authorization run out: the order
// turns invalid with an error, and neither it nor its challenges can be used.
func TestExpiredOrder(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		orderURL, o := a.newOrder(t, dnsIDs("expire.example.com")...)
		az := a.authz(t, o.Authorizations[0])
		ch := a.publishDNS01(t, az)
		expires, err := time.Parse(time.RFC3339, o.Expires)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(expires) + 50*time.Millisecond)

		o = a.order(t, orderURL)
		if o.Status != "invalid" || o.Error == nil || !strings.Contains(o.Error.Detail, "expired") {
			t.Errorf("expired order: %+v", o)
		}
		if az = a.authz(t, o.Authorizations[0]); az.Status != "expired" {
			t.Errorf("authorization is %s", az.Status)
		}
		a.post(t, ch.URL, struct{}{}).wantProblem(t, 400, "malformed", "expired")
		a.finalize(t, o, makeCSR(t, newECKey(t), csrSpec{DNS: []string{"expire.example.com"}})).
			wantProblem(t, 403, "orderNotReady", "invalid")
		if n := e.validator.calls.Load(); n != 0 {
			t.Errorf("%d validations of an expired authorization", n)
		}
	}, withConfig(func(c *acme.Config) { c.OrderLifetime = time.Second }))
}

// TestStoreOutage stops Redis under a running gateway: every answer that
// needs the store is a 503 problem with Retry-After (never a 500 or a
// hang), the directory keeps working, and service resumes with Redis.
func TestStoreOutage(t *testing.T) {
	t.Parallel()
	rs := testredis.StartServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := redis.New(ctx, rs.URL()+"?dial_timeout=1s&read_timeout=1s")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, st)
	a := e.newAccount(t)
	nonce := e.nonce(t)
	rs.Stop()

	want503 := func(r *resp) {
		t.Helper()
		r.wantProblem(t, http.StatusServiceUnavailable, "serverInternal", "try again")
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", r)
		}
	}
	r, err := e.do(http.MethodHead, e.dir.NewNonce, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Nonces are stateless: handing one out needs no store, redeeming one does.
	if r.Status != http.StatusOK || r.Header.Get("Replay-Nonce") == "" {
		t.Errorf("newNonce without a store: %d, nonce %q; want 200 and a nonce", r.Status, r.Header.Get("Replay-Nonce"))
	}
	r, err = e.do(http.MethodPost, e.dir.NewOrder, signJWS(t, a.key, a.url, nonce, e.dir.NewOrder,
		mustJSON(t, map[string]any{"identifiers": dnsIDs("outage.example.com")})))
	if err != nil {
		t.Fatal(err)
	}
	want503(r)
	if r := e.get(t, e.srv.URL+"/directory"); r.Status != http.StatusOK {
		t.Errorf("directory without a store: %s", r)
	}

	rs.Restart() // empty: the account is gone with the data
	e.newAccount(t).newOrder(t, dnsIDs("back.example.com")...)
}

// TestDeactivatedAuthorizationBlocksFinalize deactivates a valid
// authorization of a ready order: the client gave up its right to the name
// (RFC 8555 §7.5.2), so the order must not be finalized with it.
func TestDeactivatedAuthorizationBlocksFinalize(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		orderURL, o := a.readyOrder(t, dnsIDs("give-up.example.com", "keep.example.com")...)
		var az authzDoc
		a.post(t, o.Authorizations[0], map[string]string{"status": "deactivated"}).mustJSON(t, http.StatusOK, &az)
		if az.Status != "deactivated" {
			t.Fatalf("authz: %+v", az)
		}
		a.finalize(t, o, makeCSR(t, newECKey(t), csrSpec{DNS: []string{"give-up.example.com", "keep.example.com"}})).
			wantProblem(t, 403, "orderNotReady")
		if o = a.order(t, orderURL); o.Status != "invalid" || o.Error == nil {
			t.Errorf("order with a deactivated authorization: %+v", o)
		}
		if n := e.brand.submits.Load(); n != 0 {
			t.Errorf("%d issuances", n)
		}
	})
}

// TestRequestMediaType: RFC 8555 §6.2 makes application/jose+json the only
// request type and 415 the answer to anything else.
func TestRequestMediaType(t *testing.T) {
	t.Parallel()
	e := newEnv(t, memory.New())
	a := e.newAccount(t)
	for _, ct := range []string{"", "application/json", "text/plain", "application/x-www-form-urlencoded"} {
		t.Run(ct, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, a.url, bytes.NewReader(signJWS(t, a.key, a.url, e.nonce(t), a.url, []byte{})))
			if err != nil {
				t.Fatal(err)
			}
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			res, err := e.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			r := &resp{Method: "POST", URL: a.url, Status: res.StatusCode, Header: res.Header, Body: body}
			checkNonceHeader(t, r)
			r.wantProblem(t, http.StatusUnsupportedMediaType, "malformed", "application/jose+json")
		})
	}
	t.Run("with parameters", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, a.url, bytes.NewReader(signJWS(t, a.key, a.url, e.nonce(t), a.url, []byte{})))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/jose+json; charset=utf-8")
		res, err := e.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("status %d", res.StatusCode)
		}
	})
}
