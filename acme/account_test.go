package acme_test

import (
	"crypto"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestNewAccount(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		key := newECKey(t)
		a := &acct{e: e, key: key}

		var doc accountDoc
		r := a.postJWK(t, e.dir.NewAccount, map[string]any{
			"contact":              []string{"mailto:admin@example.com"},
			"termsOfServiceAgreed": true,
		})
		r.mustJSON(t, http.StatusCreated, &doc)
		loc := r.Header.Get("Location")
		if !strings.HasPrefix(loc, e.srv.URL+"/acme/acct/") {
			t.Fatalf("Location %q", loc)
		}
		if doc.Status != "valid" || doc.Orders != loc+"/orders" || !doc.TermsOfServiceAgreed {
			t.Errorf("new account: %s", r.Body)
		}
		sameStrings(t, "contact", doc.Contact, []string{"mailto:admin@example.com"})
		a.url = loc

		t.Run("existing key answers 200 with the same Location", func(t *testing.T) {
			r := a.postJWK(t, e.dir.NewAccount, map[string]any{"termsOfServiceAgreed": true})
			r.mustJSON(t, http.StatusOK, &doc)
			if got := r.Header.Get("Location"); got != loc {
				t.Errorf("Location %q, want %q", got, loc)
			}
			r = a.postJWK(t, e.dir.NewAccount, map[string]any{"onlyReturnExisting": true})
			r.mustJSON(t, http.StatusOK, &doc)
			if got := r.Header.Get("Location"); got != loc {
				t.Errorf("onlyReturnExisting Location %q, want %q", got, loc)
			}
		})

		t.Run("onlyReturnExisting with an unknown key", func(t *testing.T) {
			b := &acct{e: e, key: newECKey(t)}
			r := b.postJWK(t, e.dir.NewAccount, map[string]any{"onlyReturnExisting": true, "termsOfServiceAgreed": true})
			r.wantProblem(t, 400, "accountDoesNotExist")
			if r.Header.Get("Location") != "" {
				t.Errorf("accountDoesNotExist with Location %q", r.Header.Get("Location"))
			}
			// Asking did not register the key.
			b.postJWK(t, e.dir.NewAccount, map[string]any{"onlyReturnExisting": true}).wantProblem(t, 400, "accountDoesNotExist")
		})

		for _, c := range []struct {
			name    string
			contact []string
			typ     string
			hint    string
		}{
			{"tel contact", []string{"tel:123"}, "unsupportedContact", "mailto:"},
			{"https contact", []string{"https://example.com/contact"}, "unsupportedContact", "mailto:"},
			{"not an address", []string{"mailto:not an address"}, "invalidContact", "not a valid e-mail"},
			{"no domain", []string{"mailto:admin"}, "invalidContact", "mailto:admin"},
			{"hfields", []string{"mailto:admin@example.com?subject=hi"}, "invalidContact", "hfields"},
			{"two addresses in one", []string{"mailto:a@example.com,b@example.com"}, "invalidContact", "one plain address"},
			{"display name", []string{"mailto:Admin <admin@example.com>"}, "invalidContact", "not a valid"},
			{"second contact bad", []string{"mailto:ok@example.com", "tel:+1555"}, "unsupportedContact", "tel:+1555"},
			{"too many", slices.Repeat([]string{"mailto:a@example.com"}, 11), "invalidContact", "at most 10"},
		} {
			t.Run("contact "+c.name, func(t *testing.T) {
				b := &acct{e: e, key: newECKey(t)}
				b.postJWK(t, e.dir.NewAccount, map[string]any{"contact": c.contact, "termsOfServiceAgreed": true}).
					wantProblem(t, 400, c.typ, c.hint)
				b.postJWK(t, e.dir.NewAccount, map[string]any{"onlyReturnExisting": true}).wantProblem(t, 400, "accountDoesNotExist")
				// The existing account's contacts are checked the same way and left alone.
				a.post(t, a.url, map[string]any{"contact": c.contact}).wantProblem(t, 400, c.typ)
				var now accountDoc
				a.post(t, a.url, nil).mustJSON(t, http.StatusOK, &now)
				sameStrings(t, "contact after refused update", now.Contact, []string{"mailto:admin@example.com"})
			})
		}

		t.Run("newAccount as POST-as-GET", func(t *testing.T) {
			b := &acct{e: e, key: newECKey(t)}
			b.postJWK(t, e.dir.NewAccount, nil).wantProblem(t, 400, "malformed", "payload")
		})

		t.Run("update contact", func(t *testing.T) {
			r := a.post(t, a.url, map[string]any{"contact": []string{"mailto:ops@example.com"}})
			r.mustJSON(t, http.StatusOK, &doc)
			sameStrings(t, "contact", doc.Contact, []string{"mailto:ops@example.com"})
			a.post(t, a.url, map[string]any{"status": "valid"}).wantProblem(t, 400, "malformed", "deactivated")
		})

		t.Run("deactivation", func(t *testing.T) {
			b := e.newAccount(t)
			orderURL, o := b.newOrder(t, dnsIDs("deact.example.com")...)
			r := b.post(t, b.url, map[string]any{"status": "deactivated"})
			r.mustJSON(t, http.StatusOK, &doc)
			if doc.Status != "deactivated" {
				t.Fatalf("deactivation answered %s", r.Body)
			}
			for name, url := range map[string]string{
				"account":     b.url,
				"orders list": b.url + "/orders",
				"order":       orderURL,
				"authz":       o.Authorizations[0],
				"newOrder":    e.dir.NewOrder,
			} {
				var payload any
				if name == "newOrder" {
					payload = map[string]any{"identifiers": dnsIDs("after.example.com")}
				}
				b.post(t, url, payload).wantProblem(t, 403, "unauthorized", "deactivated")
			}
			b.post(t, b.url, map[string]any{"status": "deactivated"}).wantProblem(t, 403, "unauthorized")
			b.postJWK(t, e.dir.NewAccount, map[string]any{"termsOfServiceAgreed": true}).wantProblem(t, 403, "unauthorized", "deactivated")
			b.postJWK(t, e.dir.NewAccount, map[string]any{"onlyReturnExisting": true}).wantProblem(t, 403, "unauthorized")
		})
	})
}

func TestKeyChange(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		// inner builds the keyChange inner JWS: signed by newKey, naming acct and oldKey.
		inner := func(t *testing.T, newKey crypto.Signer, url, account string, oldKey crypto.PublicKey) []byte {
			payload := mustJSON(t, map[string]any{"account": account, "oldKey": jwkOf(t, oldKey)})
			return signJWS(t, newKey, "", "", url, payload)
		}

		t.Run("success", func(t *testing.T) {
			a := e.newAccount(t)
			oldKey := a.key
			newKey := newECKey(t)
			r := a.post(t, e.dir.KeyChange, inner(t, newKey, e.dir.KeyChange, a.url, oldKey.Public()))
			r.mustJSON(t, http.StatusOK, nil)
			if loc := r.Header.Get("Location"); loc != a.url {
				t.Errorf("keyChange Location %q, want %q", loc, a.url)
			}
			// The old key is dead...
			old := &acct{e: e, key: oldKey, url: a.url}
			old.post(t, a.url, nil).wantProblem(t, 400, "malformed", "signature")
			old.postJWK(t, e.dir.NewAccount, map[string]any{"onlyReturnExisting": true}).wantProblem(t, 400, "accountDoesNotExist")
			// ...and the new one works.
			a.key = newKey
			a.post(t, a.url, nil).mustJSON(t, http.StatusOK, nil)
			r = a.postJWK(t, e.dir.NewAccount, map[string]any{"onlyReturnExisting": true})
			r.mustJSON(t, http.StatusOK, nil)
			if loc := r.Header.Get("Location"); loc != a.url {
				t.Errorf("new key finds %q, want %q", loc, a.url)
			}
			a.newOrder(t, dnsIDs("rolled.example.com")...)
		})

		t.Run("new key belongs to another account", func(t *testing.T) {
			a, b := e.newAccount(t), e.newAccount(t)
			r := a.post(t, e.dir.KeyChange, inner(t, b.key, e.dir.KeyChange, a.url, a.key.Public()))
			r.wantProblem(t, http.StatusConflict, "malformed", "already belongs")
			if loc := r.Header.Get("Location"); loc != b.url {
				t.Errorf("409 Location %q, want the other account %q", loc, b.url)
			}
			a.post(t, a.url, nil).mustJSON(t, http.StatusOK, nil)
			b.post(t, b.url, nil).mustJSON(t, http.StatusOK, nil)
		})

		refused := []struct {
			name   string
			body   func(t *testing.T, a *acct, newKey crypto.Signer) []byte
			status int
			typ    string
			hint   string
		}{
			{"inner url mismatch", func(t *testing.T, a *acct, k crypto.Signer) []byte {
				return inner(t, k, e.dir.NewAccount, a.url, a.key.Public())
			}, 400, "malformed", `"url"`},
			{"inner signed with kid", func(t *testing.T, a *acct, k crypto.Signer) []byte {
				payload := mustJSON(t, map[string]any{"account": a.url, "oldKey": jwkOf(t, a.key.Public())})
				return signJWS(t, k, a.url, "", e.dir.KeyChange, payload)
			}, 400, "malformed", `"jwk"`},
			{"inner names another account", func(t *testing.T, a *acct, k crypto.Signer) []byte {
				return inner(t, k, e.dir.KeyChange, e.srv.URL+"/acme/acct/someoneelse", a.key.Public())
			}, 403, "unauthorized", "someoneelse"},
			{"oldKey is not the account key", func(t *testing.T, a *acct, k crypto.Signer) []byte {
				return inner(t, k, e.dir.KeyChange, a.url, newECKey(t).Public())
			}, 403, "unauthorized", "oldKey"},
			{"inner signature broken", func(t *testing.T, a *acct, k crypto.Signer) []byte {
				payload := mustJSON(t, map[string]any{"account": a.url, "oldKey": jwkOf(t, a.key.Public())})
				h := map[string]any{"alg": "ES256", "url": e.dir.KeyChange, "jwk": jwkOf(t, k.Public())}
				return craft(t, h, payload, newECKey(t))
			}, 400, "malformed", "signature"},
			{"inner alg none", func(t *testing.T, a *acct, k crypto.Signer) []byte {
				payload := mustJSON(t, map[string]any{"account": a.url, "oldKey": jwkOf(t, a.key.Public())})
				h := map[string]any{"alg": "none", "url": e.dir.KeyChange, "jwk": jwkOf(t, k.Public())}
				return craft(t, h, payload, nil)
			}, 400, "badSignatureAlgorithm", `"none"`},
			{"inner RSA-1024", func(t *testing.T, a *acct, _ crypto.Signer) []byte {
				return inner(t, newRSAKey(t, 1024), e.dir.KeyChange, a.url, a.key.Public())
			}, 400, "badPublicKey", "1024"},
			{"inner not a JWS", func(t *testing.T, a *acct, _ crypto.Signer) []byte {
				return mustJSON(t, map[string]any{"account": a.url})
			}, 400, "malformed", "inner JWS"},
		}
		for _, c := range refused {
			t.Run(c.name, func(t *testing.T) {
				a := e.newAccount(t)
				newKey := newECKey(t)
				a.post(t, e.dir.KeyChange, c.body(t, a, newKey)).wantProblem(t, c.status, c.typ, c.hint)
				// Nothing changed: the old key still works, the new one is unknown.
				a.post(t, a.url, nil).mustJSON(t, http.StatusOK, nil)
				(&acct{e: e, key: newKey}).postJWK(t, e.dir.NewAccount, map[string]any{"onlyReturnExisting": true}).
					wantProblem(t, 400, "accountDoesNotExist")
			})
		}
	})
}

// TestCrossAccount checks that an account can neither see nor touch
// another account's resources, and that the refusals leak nothing.
func TestCrossAccount(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		a, b := e.newAccount(t), e.newAccount(t)
		const secret = "secret-name.example.com"
		cert := a.issue(t, dnsIDs(secret)...)
		pendingURL, pending := a.newOrder(t, dnsIDs("pending-"+secret)...)
		az := a.authz(t, pending.Authorizations[0])
		ch, _ := az.challenge("dns-01")
		aID := strings.TrimPrefix(a.url, e.srv.URL+"/acme/acct/")

		leaks := func(t *testing.T, r *resp) {
			t.Helper()
			body := string(r.Body)
			for _, s := range []string{secret, aID, ch.Token, "BEGIN CERTIFICATE", a.url} {
				if strings.Contains(body, s) {
					t.Errorf("%s: response reveals %q", r, s)
				}
			}
		}
		for _, c := range []struct {
			name    string
			url     string
			payload any
			status  int
			typ     string
		}{
			{"order", pendingURL, nil, 404, "malformed"},
			{"valid order", cert.orderURL, nil, 404, "malformed"},
			{"finalize", pending.Finalize, map[string]string{"csr": b64(makeCSR(t, newECKey(t), csrSpec{DNS: []string{"pending-" + secret}}))}, 404, "malformed"},
			{"authz", pending.Authorizations[0], nil, 404, "malformed"},
			{"authz deactivation", pending.Authorizations[0], map[string]string{"status": "deactivated"}, 404, "malformed"},
			{"challenge", ch.URL, nil, 404, "malformed"},
			{"challenge response", ch.URL, struct{}{}, 404, "malformed"},
			{"certificate", cert.certURL, nil, 404, "malformed"},
			{"orders list", a.url + "/orders", nil, 403, "unauthorized"},
			{"account", a.url, nil, 403, "unauthorized"},
			{"account deactivation", a.url, map[string]string{"status": "deactivated"}, 403, "unauthorized"},
			{"account contact update", a.url, map[string]any{"contact": []string{"mailto:evil@example.com"}}, 403, "unauthorized"},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := b.post(t, c.url, c.payload)
				r.wantProblem(t, c.status, c.typ)
				leaks(t, r)
			})
		}

		t.Run("owner sees everything unchanged", func(t *testing.T) {
			var doc accountDoc
			a.post(t, a.url, nil).mustJSON(t, http.StatusOK, &doc)
			if doc.Status != "valid" || len(doc.Contact) != 0 {
				t.Errorf("account after the other's attempts: %+v", doc)
			}
			if o := a.order(t, pendingURL); o.Status != "pending" {
				t.Errorf("pending order is %s", o.Status)
			}
			got := a.authz(t, pending.Authorizations[0])
			if got.Status != "pending" {
				t.Errorf("authz is %s", got.Status)
			}
			if c, _ := got.challenge("dns-01"); c.Status != "pending" {
				t.Errorf("challenge is %s after another account answered it", c.Status)
			}
			sameStrings(t, "orders", a.orders(t), []string{cert.orderURL, pendingURL})
			if got := b.orders(t); len(got) != 0 {
				t.Errorf("b has orders %q", got)
			}
			a.download(t, cert.certURL)
		})
	})
}
