package acme_test

import (
	"crypto/elliptic"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/acme"
	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/storage"
)

// withProfiles offers more profiles on the built-in CA ("local").
func withProfiles(ps ...issuer.Profile) envOption {
	return func(s *envSetup) { s.profiles = append(s.profiles, ps...) }
}

// orderIn creates an order of profile for names and checks the 201.
func (a *acct) orderIn(t *testing.T, profile string, names ...string) (string, orderDoc) {
	t.Helper()
	r := a.post(t, a.e.dir.NewOrder, map[string]any{"identifiers": dnsIDs(names...), "profile": profile})
	var o orderDoc
	r.mustJSON(t, http.StatusCreated, &o)
	return r.Header.Get("Location"), o
}

// readyIn creates an order of profile for names and validates it.
func (a *acct) readyIn(t *testing.T, profile string, names ...string) (string, orderDoc) {
	t.Helper()
	u, o := a.orderIn(t, profile, names...)
	a.solve(t, o)
	if o = a.order(t, u); o.Status != "ready" {
		t.Fatalf("order is %s, want ready", o.Status)
	}
	return u, o
}

// issueIn runs a whole issuance in profile for names.
func (a *acct) issueIn(t *testing.T, profile string, names ...string) {
	t.Helper()
	_, o := a.readyIn(t, profile, names...)
	r := a.finalize(t, o, makeCSR(t, newECKey(t), csrSpec{DNS: names}))
	r.mustJSON(t, http.StatusOK, &o)
	if o.Status != "valid" {
		t.Fatalf("finalize in %s: %s", profile, r)
	}
}

// TestProfileRulesNewOrder: every identifier and validity rule refuses at
// newOrder with the problem type, a detail naming the profile and the rule,
// and no order left behind.
func TestProfileRulesNewOrder(t *testing.T) {
	t.Parallel()
	no := false
	free := issuer.Profile{Name: "trustasia-dv", Brand: "local", Rules: issuer.Rules{
		Wildcard:        &no,
		IP:              &no,
		MaxNames:        2,
		MaxValidity:     30 * 24 * time.Hour,
		BlockedSuffixes: []string{".edu", "gov", ".bank"},
		BlockedWords:    []string{"paypal"},
	}}
	forEachStore(t, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		now := time.Now().UTC()
		for _, tc := range []struct {
			name  string
			ids   []ident
			extra map[string]any
			typ   string
			hints []string
			ident string // the problem's identifier, if any
		}{
			{"blocked suffix", dnsIDs("ok.example.com", "www.x.edu"), nil, "rejectedIdentifier",
				[]string{`profile "trustasia-dv" does not issue for .edu names (www.x.edu)`}, "www.x.edu"},
			{"blocked suffix written without a dot", dnsIDs("city.gov"), nil, "rejectedIdentifier", []string{"trustasia-dv", ".gov names"}, "city.gov"},
			{"blocked word", dnsIDs("login-paypal.example.com"), nil, "rejectedIdentifier", []string{"trustasia-dv", `containing "paypal"`}, "login-paypal.example.com"},
			{"wildcard", dnsIDs("*.example.com"), nil, "rejectedIdentifier", []string{"trustasia-dv", "wildcard"}, "*.example.com"},
			{"IP address", []ident{{"ip", "192.0.2.7"}}, nil, "rejectedIdentifier", []string{"trustasia-dv", "IP addresses"}, "192.0.2.7"},
			{"too many names", dnsIDs("a.example.com", "b.example.com", "c.example.com"), nil, "rejectedIdentifier", []string{"trustasia-dv", "at most 2 names"}, ""},
			{"validity", dnsIDs("long.example.com"), map[string]any{"notAfter": now.Add(40 * 24 * time.Hour).Format(time.RFC3339)}, "malformed",
				[]string{`profile "trustasia-dv"`, "maximum of 30d"}, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				payload := map[string]any{"identifiers": tc.ids, "profile": "trustasia-dv"}
				for k, v := range tc.extra {
					payload[k] = v
				}
				p := a.post(t, e.dir.NewOrder, payload).wantProblem(t, http.StatusBadRequest, tc.typ, tc.hints...)
				if tc.ident != "" && (p.Identifier == nil || p.Identifier.Value != tc.ident) {
					t.Errorf("problem identifier %+v, want %s", p.Identifier, tc.ident)
				}
			})
		}
		if orders := a.orders(t); len(orders) != 0 {
			t.Fatalf("refused orders left behind: %v", orders)
		}
		// What the rules allow is ordered, and without notAfter the
		// certificate lives the rules' maximum.
		_, o := a.readyIn(t, "trustasia-dv", "ok.example.com", "www.ok.example.com")
		r := a.finalize(t, o, makeCSR(t, newECKey(t), csrSpec{DNS: []string{"ok.example.com", "www.ok.example.com"}}))
		r.mustJSON(t, http.StatusOK, &o)
		if o.Status != "valid" {
			t.Fatalf("allowed order: %s", r)
		}
		leaf := a.download(t, o.Certificate)[0]
		if life := leaf.NotAfter.Sub(leaf.NotBefore); life > 30*24*time.Hour+time.Hour {
			t.Errorf("certificate lives %s, more than the profile's 30 days", life)
		}
	}, withProfiles(free))
}

// TestProfileRulesKeyTypes: finalize refuses a key the profile does not
// accept with badCSR naming the accepted types, and leaves the order ready.
func TestProfileRulesKeyTypes(t *testing.T) {
	t.Parallel()
	p := issuer.Profile{Name: "rsa-or-p256", Brand: "local", Rules: issuer.Rules{KeyTypes: []string{"rsa2048", "ec256"}}}
	forEachStore(t, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		u, o := a.readyIn(t, "rsa-or-p256", "keys.example.com")
		csr := makeCSR(t, newKeyOf(t, elliptic.P384()), csrSpec{DNS: []string{"keys.example.com"}})
		a.finalize(t, o, csr).wantProblem(t, http.StatusBadRequest, "badCSR", `profile "rsa-or-p256" accepts only rsa2048, ec256 keys`, "ec384")
		if o = a.order(t, u); o.Status != "ready" {
			t.Fatalf("order is %s after a refused CSR, want ready", o.Status)
		}
		if n := e.brand.submits.Load(); n != 0 {
			t.Fatalf("brand asked %d times for a refused CSR", n)
		}
		r := a.finalize(t, o, makeCSR(t, newECKey(t), csrSpec{DNS: []string{"keys.example.com"}}))
		r.mustJSON(t, http.StatusOK, &o)
		if o.Status != "valid" {
			t.Fatalf("finalize with a P-256 key: %s", r)
		}
	}, withProfiles(p))
}

// wantQuota checks a quota refusal: 429 naming the profile and the quota,
// with a Retry-After.
func wantQuota(t *testing.T, r *resp, hints ...string) {
	t.Helper()
	r.wantProblem(t, http.StatusTooManyRequests, "rateLimited", hints...)
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("%s: Retry-After %q, want whole seconds", r, r.Header.Get("Retry-After"))
	}
}

// TestProfileQuota: a free product's quotas per account and per registered
// domain are checked at newOrder and finalize and spent at issuance, even
// with the rate limits off; refused orders are not stored.
func TestProfileQuota(t *testing.T) {
	t.Parallel()
	perAccount := issuer.Profile{Name: "free-acct", Brand: "local", Rules: issuer.Rules{Quota: issuer.Quota{PerAccount: 2, Period: 30 * 24 * time.Hour}}}
	perDomain := issuer.Profile{Name: "free-domain", Brand: "local", Rules: issuer.Rules{Quota: issuer.Quota{PerRegisteredDomain: 1, Period: 30 * 24 * time.Hour}}}
	forEachStore(t, func(t *testing.T, e *env) {
		t.Run("per account", func(t *testing.T) {
			a := e.newAccount(t)
			a.issueIn(t, "free-acct", "one.acct-quota.example")
			a.issueIn(t, "free-acct", "two.acct-quota.example")
			before := len(a.orders(t))
			wantQuota(t, a.post(t, e.dir.NewOrder, map[string]any{"identifiers": dnsIDs("three.acct-quota.example"), "profile": "free-acct"}),
				`profile "free-acct"`, "account", "quota per_account", "2 per")
			if after := len(a.orders(t)); after != before {
				t.Errorf("orders %d → %d after a refusal", before, after)
			}
			// Another account and another profile are not affected.
			e.newAccount(t).issueIn(t, "free-acct", "three.acct-quota.example")
			a.issueIn(t, "default", "three.acct-quota.example")
		})
		t.Run("per registered domain", func(t *testing.T) {
			a, b := e.newAccount(t), e.newAccount(t)
			// Two orders pass newOrder while the quota has room; the
			// second is refused at finalize once the first is issued.
			_, second := a.readyIn(t, "free-domain", "www.dom-quota.example")
			a.issueIn(t, "free-domain", "a.dom-quota.example")
			wantQuota(t, a.finalize(t, second, makeCSR(t, newECKey(t), csrSpec{DNS: []string{"www.dom-quota.example"}})),
				`profile "free-domain"`, "dom-quota.example", "quota per_registered_domain")
			before := len(b.orders(t))
			wantQuota(t, b.post(t, e.dir.NewOrder, map[string]any{"identifiers": dnsIDs("b.dom-quota.example", "other.example.org"), "profile": "free-domain"}),
				"dom-quota.example", "quota per_registered_domain")
			if after := len(b.orders(t)); after != before {
				t.Errorf("orders %d → %d after a refusal", before, after)
			}
			b.issueIn(t, "free-domain", "b.other-dom.example")
		})
	}, withProfiles(perAccount, perDomain))
}

// decide records an operator's decision on the order, as "acmegw review" does.
func decide(t *testing.T, e *env, orderURL, decision, reason string) {
	t.Helper()
	for range 5 {
		o, err := e.store.GetOrder(t.Context(), orderID(orderURL))
		if err != nil {
			t.Fatal(err)
		}
		o.Review = &storage.Review{Decision: decision, Reason: reason, At: time.Now().UTC()}
		err = e.store.UpdateOrder(t.Context(), o)
		if err == nil {
			return
		}
		if !errors.Is(err, storage.ErrConflict) {
			t.Fatal(err)
		}
	}
	t.Fatal("order kept changing")
}

// TestProfileReviewWords: an order for a name with a review word is held
// processing, its brand untouched, until an operator approves it; a
// rejection makes it invalid with the operator's reason.
func TestProfileReviewWords(t *testing.T) {
	t.Parallel()
	p := issuer.Profile{Name: "reviewed", Brand: "local", Rules: issuer.Rules{ReviewWords: []string{"casino", "lottery"}}}
	forEachStore(t, func(t *testing.T, e *env) {
		runJobs(t, e)
		a := e.newAccount(t)

		// A name without review words is issued at once.
		a.issueIn(t, "reviewed", "plain.example.com")
		submits := e.brand.submits.Load()

		t.Run("approved", func(t *testing.T) {
			name := "www.casino.example.com"
			u, o := a.readyIn(t, "reviewed", name)
			stored, err := e.store.GetOrder(t.Context(), orderID(u))
			if err != nil || !stored.NeedsReview {
				t.Fatalf("stored order %+v, %v; want NeedsReview", stored, err)
			}
			got, retry := a.finalizeFake(t, o, name)
			if got.Status != "processing" || retry == "" {
				t.Fatalf("finalize: %s with Retry-After %q, want processing with Retry-After", got.Status, retry)
			}
			time.Sleep(time.Second) // a few review polls
			if o = a.order(t, u); o.Status != "processing" {
				t.Fatalf("undecided order is %s, want processing", o.Status)
			}
			if n := e.brand.submits.Load(); n != submits {
				t.Fatalf("the brand was asked before the review decided")
			}
			decide(t, e, u, storage.ReviewApproved, "")
			if o = a.waitOrder(t, u, 15*time.Second); o.Status != "valid" || o.Certificate == "" {
				t.Fatalf("approved order: %+v", o)
			}
			if n := e.brand.submits.Load(); n != submits+1 {
				t.Fatalf("brand asked %d times, want once", n-submits)
			}
			submits++
		})

		t.Run("rejected", func(t *testing.T) {
			name := "lottery.example.com"
			u, o := a.readyIn(t, "reviewed", name)
			if got, _ := a.finalizeFake(t, o, name); got.Status != "processing" {
				t.Fatalf("finalize: %s, want processing", got.Status)
			}
			decide(t, e, u, storage.ReviewRejected, "gambling sites need a licence on file")
			o = a.waitOrder(t, u, 15*time.Second)
			if o.Status != "invalid" || o.Error == nil || o.Error.Type != errNS+"rejectedIdentifier" ||
				!strings.Contains(o.Error.Detail, "rejected by review: gambling sites need a licence on file") {
				t.Fatalf("rejected order: %s, error %+v", o.Status, o.Error)
			}
			if n := e.brand.submits.Load(); n != submits {
				t.Fatalf("the brand was asked for a rejected order")
			}
			if _, err := e.store.GetJob(t.Context(), orderID(u)); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("job of the rejected order: %v, want it gone", err)
			}
		})
	}, withProfiles(p), withConfig(func(c *acme.Config) { c.ReviewPoll = 100 * time.Millisecond }))
}

// TestProfileReviewRetryAfter: with the default review poll, the finalize
// answer of an order held for review tells the client to come back in
// about a minute, not every second.
func TestProfileReviewRetryAfter(t *testing.T) {
	t.Parallel()
	p := issuer.Profile{Name: "reviewed", Brand: "local", Rules: issuer.Rules{ReviewWords: []string{"casino"}}}
	forEachStore(t, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		_, o := a.readyIn(t, "reviewed", "casino.example.net")
		got, retry := a.finalizeFake(t, o, "casino.example.net")
		if s, err := strconv.Atoi(retry); got.Status != "processing" || err != nil || s < 30 || s > 60 {
			t.Fatalf("finalize: %s with Retry-After %q, want processing and about 60", got.Status, retry)
		}
	}, withProfiles(p))
}
