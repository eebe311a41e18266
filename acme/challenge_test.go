package acme_test

import (
	"net"
	"net/http"
	"testing"

	"github.com/acmegw/acmegw/validation"
)

func TestChallengeFlow(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		a := e.newAccount(t)

		t.Run("dns-01 answered in the same request", func(t *testing.T) {
			orderURL, o := a.newOrder(t, dnsIDs("ok.example.com")...)
			authzURL := o.Authorizations[0]
			az := a.authz(t, authzURL)
			ch := a.publishDNS01(t, az)

			// Old clients send a key authorization in the body; it is ignored.
			r := a.post(t, ch.URL, map[string]string{"keyAuthorization": "ignored"})
			var got challengeDoc
			r.mustJSON(t, http.StatusOK, &got)
			if got.Status != "valid" || got.Validated == "" || got.Error != nil {
				t.Fatalf("challenge response: %s", r.Body)
			}
			if got.URL != ch.URL || got.Token != ch.Token || got.Type != "dns-01" {
				t.Errorf("challenge response describes another challenge: %s", r.Body)
			}
			if ra := r.Header.Get("Retry-After"); ra != "" {
				t.Errorf("finished challenge has Retry-After %q", ra)
			}
			sameStrings(t, `Link rel="up"`, links(r.Header, "up"), []string{authzURL})

			az = a.authz(t, authzURL)
			if az.Status != "valid" {
				t.Errorf("authorization is %s after a valid challenge", az.Status)
			}
			if c, _ := az.challenge("dns-01"); c.Status != "valid" || c.Validated == "" {
				t.Errorf("authorization's dns-01: %+v", c)
			}
			if o = a.order(t, orderURL); o.Status != "ready" {
				t.Errorf("order is %s, want ready", o.Status)
			}

			// Polling the challenge (dehydrated) and answering it again are harmless.
			r = a.post(t, ch.URL, nil)
			r.mustJSON(t, http.StatusOK, &got)
			if got.Status != "valid" {
				t.Errorf("challenge POST-as-GET: %s", r.Body)
			}
			sameStrings(t, `Link rel="up" on POST-as-GET`, links(r.Header, "up"), []string{authzURL})
			a.post(t, ch.URL, struct{}{}).mustJSON(t, http.StatusOK, &got)
			if got.Status != "valid" {
				t.Errorf("challenge answered twice: %+v", got)
			}
		})

		t.Run("wrong TXT invalidates challenge, authorization and order", func(t *testing.T) {
			orderURL, o := a.newOrder(t, dnsIDs("bad.example.com")...)
			az := a.authz(t, o.Authorizations[0])
			ch, _ := az.challenge("dns-01")
			e.dns.AddTXT(validation.DNS01Name("bad.example.com"), "not-the-digest")

			r := a.post(t, ch.URL, struct{}{})
			var got challengeDoc
			r.mustJSON(t, http.StatusOK, &got)
			if got.Status != "invalid" || got.Error == nil {
				t.Fatalf("challenge response: %s", r.Body)
			}
			if got.Error.Type != errNS+"unauthorized" || got.Error.Detail == "" {
				t.Errorf("challenge error %+v, want unauthorized", got.Error)
			}
			sameStrings(t, `Link rel="up"`, links(r.Header, "up"), []string{o.Authorizations[0]})

			az = a.authz(t, o.Authorizations[0])
			if az.Status != "invalid" {
				t.Errorf("authorization is %s", az.Status)
			}
			if c, _ := az.challenge("dns-01"); c.Status != "invalid" || c.Error == nil || c.Error.Type != errNS+"unauthorized" {
				t.Errorf("authorization's dns-01: %+v", c)
			}
			o = a.order(t, orderURL)
			if o.Status != "invalid" || o.Error == nil {
				t.Fatalf("order after a failed validation: %+v", o)
			}
			if o.Error.Type != errNS+"unauthorized" || o.Error.Identifier == nil || o.Error.Identifier.Value != "bad.example.com" {
				t.Errorf("order error %+v", o.Error)
			}
			// The other challenges of a failed authorization cannot be tried any more...
			h01, _ := az.challenge("http-01")
			a.post(t, h01.URL, struct{}{}).wantProblem(t, 400, "malformed", "invalid")
			// ...and the order cannot be finalized.
			a.finalize(t, o, makeCSR(t, newECKey(t), csrSpec{DNS: []string{"bad.example.com"}})).
				wantProblem(t, 403, "orderNotReady", "invalid")
		})

		t.Run("no TXT record", func(t *testing.T) {
			_, o := a.newOrder(t, dnsIDs("missing.example.com")...)
			az := a.authz(t, o.Authorizations[0])
			ch, _ := az.challenge("dns-01")
			var got challengeDoc
			a.post(t, ch.URL, struct{}{}).mustJSON(t, http.StatusOK, &got)
			if got.Status != "invalid" || got.Error == nil || got.Error.Type != errNS+"unauthorized" {
				t.Errorf("challenge: %+v", got)
			}
		})

		t.Run("wildcard by dns-01 at the base name", func(t *testing.T) {
			c := a.issue(t, dnsIDs("*.w.example.com", "w.example.com")...)
			sameStrings(t, "SANs", c.chain[0].DNSNames, []string{"*.w.example.com", "w.example.com"})
			e.verifyChain(t, c.chain, "host.w.example.com")
			e.verifyChain(t, c.chain, "w.example.com")
		})

		t.Run("ip identifier by http-01", func(t *testing.T) {
			c := a.issue(t, ident{"ip", "127.0.0.1"})
			leaf := c.chain[0]
			if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) || len(leaf.DNSNames) != 0 {
				t.Errorf("leaf IPs %v names %v", leaf.IPAddresses, leaf.DNSNames)
			}
		})

		t.Run("authorization deactivation", func(t *testing.T) {
			orderURL, o := a.newOrder(t, dnsIDs("deact.example.com")...)
			var az authzDoc
			a.post(t, o.Authorizations[0], map[string]string{"status": "deactivated"}).mustJSON(t, http.StatusOK, &az)
			if az.Status != "deactivated" {
				t.Errorf("authz after deactivation: %+v", az)
			}
			a.post(t, o.Authorizations[0], map[string]string{"status": "deactivated"}).wantProblem(t, 400, "malformed", "deactivated")
			a.post(t, o.Authorizations[0], map[string]string{"status": "valid"}).wantProblem(t, 400, "malformed", "deactivated")
			if o = a.order(t, orderURL); o.Status != "invalid" {
				t.Errorf("order with a deactivated authorization is %s", o.Status)
			}
		})

		t.Run("unknown challenge and authorization", func(t *testing.T) {
			_, o := a.newOrder(t, dnsIDs("unknown.example.com")...)
			a.post(t, o.Authorizations[0]+"x", nil).wantProblem(t, 404, "malformed")
			az := a.authz(t, o.Authorizations[0])
			a.post(t, az.Challenges[0].URL+"x", struct{}{}).wantProblem(t, 404, "malformed")
		})
	})
}
