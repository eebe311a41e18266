package acme_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/acmegw/acmegw/acme"
)

// shortWait makes a challenge POST give up waiting for a held validation fast.
var shortWait = withConfig(func(c *acme.Config) { c.ValidationWait = 100 * time.Millisecond })

// waitChallenge polls an authorization until its challenge of type typ is
// no longer processing, and returns the authorization.
func (a *acct) waitChallenge(t testing.TB, authzURL, typ string) authzDoc {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		az := a.authz(t, authzURL)
		if c, _ := az.challenge(typ); c.Status != "processing" {
			return az
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s challenge of %s still processing", typ, authzURL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSlowValidation covers a validation that outlasts the challenge POST:
// the client is told "processing" with Retry-After wherever it polls, the
// validation runs once however often the challenge is answered, and the
// result lands on challenge, authorization and order.
func TestSlowValidation(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		orderURL, o := a.newOrder(t, dnsIDs("slow.example.com")...)
		authzURL := o.Authorizations[0]
		ch := a.publishDNS01(t, a.authz(t, authzURL))
		release := e.validator.hold("slow.example.com", "dns-01")
		t.Cleanup(release)

		r := a.post(t, ch.URL, struct{}{})
		var got challengeDoc
		r.mustJSON(t, http.StatusOK, &got)
		if got.Status != "processing" || r.Header.Get("Retry-After") != "1" {
			t.Fatalf("held challenge answered %s with Retry-After %q", r.Body, r.Header.Get("Retry-After"))
		}
		sameStrings(t, `Link rel="up"`, links(r.Header, "up"), []string{authzURL})

		r = a.post(t, authzURL, nil)
		var az authzDoc
		r.mustJSON(t, http.StatusOK, &az)
		if c, _ := az.challenge("dns-01"); az.Status != "pending" || c.Status != "processing" || r.Header.Get("Retry-After") == "" {
			t.Errorf("authorization during validation: %s (Retry-After %q)", r.Body, r.Header.Get("Retry-After"))
		}
		if o = a.order(t, orderURL); o.Status != "pending" {
			t.Errorf("order during validation is %s", o.Status)
		}
		// Answering again (certbot after a timeout) starts nothing new.
		a.post(t, ch.URL, struct{}{}).mustJSON(t, http.StatusOK, &got)
		if got.Status != "processing" {
			t.Errorf("second answer: %+v", got)
		}

		release()
		az = a.waitChallenge(t, authzURL, "dns-01")
		if az.Status != "valid" {
			t.Errorf("authorization after the held validation: %+v", az)
		}
		a.post(t, ch.URL, nil).mustJSON(t, http.StatusOK, &got)
		if got.Status != "valid" {
			t.Errorf("challenge after the held validation: %+v", got)
		}
		if o = a.order(t, orderURL); o.Status != "ready" {
			t.Errorf("order after the held validation is %s", o.Status)
		}
		if n := e.validator.calls.Load(); n != 1 {
			t.Errorf("%d validations, want 1", n)
		}
	}, shortWait)
}

// TestConcurrentChallengeResponses answers one challenge from ten requests
// at once: one validation, no errors, and every answer pending work or done.
func TestConcurrentChallengeResponses(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		orderURL, o := a.newOrder(t, dnsIDs("together.example.com")...)
		ch := a.publishDNS01(t, a.authz(t, o.Authorizations[0]))
		const n = 10
		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i] = signJWS(t, a.key, a.url, e.nonce(t), ch.URL, []byte("{}"))
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		results := make([]*resp, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				<-start
				results[i], errs[i] = e.do(http.MethodPost, ch.URL, bodies[i])
			})
		}
		close(start)
		wg.Wait()
		for i, r := range results {
			if errs[i] != nil {
				t.Errorf("request %d: %v", i, errs[i])
				continue
			}
			checkNonceHeader(t, r)
			var got challengeDoc
			r.mustJSON(t, http.StatusOK, &got)
			if got.Status != "processing" && got.Status != "valid" {
				t.Errorf("answer %d: %s", i, r.Body)
			}
		}
		if az := a.waitChallenge(t, o.Authorizations[0], "dns-01"); az.Status != "valid" {
			t.Errorf("authorization: %+v", az)
		}
		if got := a.order(t, orderURL); got.Status != "ready" {
			t.Errorf("order is %s", got.Status)
		}
		if c := e.validator.calls.Load(); c != 1 {
			t.Errorf("%d validations, want 1", c)
		}
	})
}

// TestLateChallengeResult answers two challenges of one authorization; the
// one that finishes second must not overturn the authorization's outcome,
// which RFC 8555 makes final.
func TestLateChallengeResult(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		a := e.newAccount(t)

		t.Run("late failure after success", func(t *testing.T) {
			orderURL, o := a.newOrder(t, dnsIDs("late-fail.example.com")...)
			az := a.authz(t, o.Authorizations[0])
			dns01 := a.publishDNS01(t, az)
			http01, _ := az.challenge("http-01") // nobody serves its token: it fails
			release := e.validator.hold("late-fail.example.com", "http-01")
			t.Cleanup(release)

			var got challengeDoc
			a.post(t, http01.URL, struct{}{}).mustJSON(t, http.StatusOK, &got)
			if got.Status != "processing" {
				t.Fatalf("held http-01: %+v", got)
			}
			a.post(t, dns01.URL, struct{}{}).mustJSON(t, http.StatusOK, &got)
			if got.Status != "valid" {
				t.Fatalf("dns-01: %+v", got)
			}
			if o = a.order(t, orderURL); o.Status != "ready" {
				t.Fatalf("order is %s", o.Status)
			}
			release()
			az = a.waitChallenge(t, o.Authorizations[0], "http-01")
			if az.Status != "valid" {
				t.Errorf("a late failed challenge turned the valid authorization %s", az.Status)
			}
			if c, _ := az.challenge("dns-01"); c.Status != "valid" {
				t.Errorf("dns-01 is %s", c.Status)
			}
			if o = a.order(t, orderURL); o.Status != "ready" {
				t.Errorf("order is %s", o.Status)
			}
			var done orderDoc
			a.finalize(t, o, makeCSR(t, newECKey(t), csrSpec{DNS: []string{"late-fail.example.com"}})).mustJSON(t, http.StatusOK, &done)
			if done.Status != "valid" {
				t.Errorf("finalize: %+v", done)
			}
		})

		t.Run("late success after failure", func(t *testing.T) {
			orderURL, o := a.newOrder(t, dnsIDs("late-ok.example.com")...)
			az := a.authz(t, o.Authorizations[0])
			dns01 := a.publishDNS01(t, az)
			http01, _ := az.challenge("http-01")
			release := e.validator.hold("late-ok.example.com", "dns-01")
			t.Cleanup(release)

			var got challengeDoc
			a.post(t, dns01.URL, struct{}{}).mustJSON(t, http.StatusOK, &got)
			if got.Status != "processing" {
				t.Fatalf("held dns-01: %+v", got)
			}
			a.post(t, http01.URL, struct{}{}).mustJSON(t, http.StatusOK, &got)
			if got.Status != "invalid" {
				t.Fatalf("http-01: %+v", got)
			}
			if o = a.order(t, orderURL); o.Status != "invalid" {
				t.Fatalf("order is %s", o.Status)
			}
			release()
			az = a.waitChallenge(t, o.Authorizations[0], "dns-01")
			if az.Status != "invalid" {
				t.Errorf("a late successful challenge turned the invalid authorization %s", az.Status)
			}
			if o = a.order(t, orderURL); o.Status != "invalid" {
				t.Errorf("order is %s", o.Status)
			}
		})
	}, shortWait)
}
