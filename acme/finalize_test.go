package acme_test

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestFinalize(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		names := []string{"f.example.com", "www.f.example.com"}

		t.Run("before ready", func(t *testing.T) {
			orderURL, o := a.newOrder(t, dnsIDs("pending.example.com")...)
			a.finalize(t, o, makeCSR(t, newECKey(t), csrSpec{DNS: []string{"pending.example.com"}})).
				wantProblem(t, 403, "orderNotReady", "pending", "authorizations")
			if o = a.order(t, orderURL); o.Status != "pending" {
				t.Errorf("order is %s", o.Status)
			}
			if n := e.brand.submits.Load(); n != 0 {
				t.Errorf("%d issuances for an order that is not ready", n)
			}
		})

		orderURL, o := a.readyOrder(t, dnsIDs(names...)...)
		certKey := newECKey(t)
		rsa1024 := newRSAKey(t, 1024)
		badSig := makeCSR(t, certKey, csrSpec{DNS: names})
		badSig[len(badSig)-1] ^= 0xff

		for _, c := range []struct {
			name    string
			payload any
			status  int
			typ     string
			hints   []string
		}{
			{"extra name", csrPayload(t, certKey, csrSpec{DNS: append(slices.Clone(names), "evil.example.com")}), 400, "badCSR", []string{"not in the order", "evil.example.com"}},
			{"extra name in CN", csrPayload(t, certKey, csrSpec{CN: "evil.example.com", DNS: names}), 400, "badCSR", []string{"evil.example.com"}},
			{"missing name", csrPayload(t, certKey, csrSpec{DNS: names[:1]}), 400, "badCSR", []string{"lacks", "www.f.example.com"}},
			{"no names", csrPayload(t, certKey, csrSpec{}), 400, "badCSR", []string{"lacks"}},
			{"ip instead of name", csrPayload(t, certKey, csrSpec{DNS: names[:1], IPs: []net.IP{net.ParseIP("127.0.0.1")}}), 400, "badCSR", []string{"127.0.0.1"}},
			{"e-mail address", csrPayload(t, certKey, csrSpec{DNS: names, Emails: []string{"a@f.example.com"}}), 400, "badCSR", []string{"e-mail"}},
			{"RSA-1024 key", csrPayload(t, rsa1024, csrSpec{DNS: names}), 400, "badCSR", []string{"1024-bit", "2048"}},
			{"account key", csrPayload(t, a.key, csrSpec{DNS: names}), 400, "badCSR", []string{"account key"}},
			{"P-521 key", csrPayload(t, newKeyOf(t, elliptic.P521()), csrSpec{DNS: names}), 400, "badCSR", []string{"P-256"}},
			{"Ed25519 key", csrPayload(t, newEd25519Key(t), csrSpec{DNS: names}), 400, "badCSR", []string{"RSA"}},
			{"bad CSR signature", map[string]string{"csr": b64(badSig)}, 400, "badCSR", []string{"signature"}},
			{"garbage base64", map[string]string{"csr": "!!!not base64!!!"}, 400, "badCSR", []string{"base64url"}},
			{"base64 of garbage", map[string]string{"csr": b64([]byte("definitely not DER"))}, 400, "badCSR", []string{"parsed"}},
			{"PEM instead of DER", map[string]string{"csr": "-----BEGIN CERTIFICATE REQUEST-----"}, 400, "badCSR", nil},
			{"no csr", map[string]string{}, 400, "malformed", []string{`"csr"`}},
			{"csr not a string", map[string]any{"csr": 42}, 400, "malformed", []string{"finalize"}},
			{"POST-as-GET", nil, 400, "malformed", []string{"csr"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := a.post(t, o.Finalize, c.payload)
				r.wantProblem(t, c.status, c.typ, c.hints...)
				// Nothing half-done: the order is still ready, without a certificate.
				got := a.order(t, orderURL)
				if got.Status != "ready" || got.Certificate != "" || got.Error != nil {
					t.Errorf("order after a refused finalize: %+v", got)
				}
			})
		}
		if n := e.brand.submits.Load(); n != 0 {
			t.Fatalf("refused CSRs reached the issuer %d times", n)
		}

		var cert []*x509.Certificate
		t.Run("good CSR", func(t *testing.T) {
			// Upper case in the CSR is fine: the order's spelling is what gets issued.
			csr := makeCSR(t, certKey, csrSpec{CN: "F.example.com", DNS: []string{"www.f.example.com", "f.example.com"}})
			r := a.finalize(t, o, csr)
			var done orderDoc
			r.mustJSON(t, http.StatusOK, &done)
			if loc := r.Header.Get("Location"); loc != orderURL {
				t.Errorf("finalize Location %q, want the order %q", loc, orderURL)
			}
			if done.Status != "valid" || !strings.HasPrefix(done.Certificate, e.srv.URL+"/acme/cert/") {
				t.Fatalf("finalize answered %s", r.Body)
			}
			if got := a.order(t, orderURL); got.Status != "valid" || got.Certificate != done.Certificate {
				t.Errorf("order after finalize: %+v", got)
			}
			cert = a.download(t, done.Certificate)
			leaf := cert[0]
			sameStrings(t, "SANs", leaf.DNSNames, names)
			if !certKey.PublicKey.Equal(leaf.PublicKey) {
				t.Error("leaf does not certify the CSR's key")
			}
			for _, n := range names {
				e.verifyChain(t, cert, n)
			}
			if !bytes.Equal(cert[len(cert)-1].RawIssuer, e.ca.Root().RawSubject) {
				t.Error("chain does not end below the root")
			}
		})

		t.Run("finalize twice", func(t *testing.T) {
			// The same CSR again is the same request (a client re-running
			// after giving up): the order comes back, nothing is issued twice.
			var again orderDoc
			a.finalize(t, o, makeCSR(t, certKey, csrSpec{DNS: names})).mustJSON(t, http.StatusOK, &again)
			if again.Status != "valid" || again.Certificate == "" {
				t.Errorf("finalize again with the same key: status %s, certificate %q", again.Status, again.Certificate)
			}
			// Another key cannot be finalized into a valid order.
			a.finalize(t, o, makeCSR(t, newECKey(t), csrSpec{DNS: names})).wantProblem(t, 403, "orderNotReady", "valid")
			if n := e.brand.submits.Load(); n != 1 {
				t.Errorf("%d issuances, want 1", n)
			}
		})

		t.Run("certificate download", func(t *testing.T) {
			got := a.order(t, orderURL)
			a.post(t, got.Certificate, struct{}{}).wantProblem(t, 400, "malformed", "POST-as-GET")
			if r := e.get(t, got.Certificate); r.Status != http.StatusMethodNotAllowed {
				t.Errorf("GET certificate: %s", r)
			}
			a.post(t, got.Certificate+"0", nil).wantProblem(t, 404, "malformed")
			a.post(t, got.Certificate+"/1", nil).wantProblem(t, 404, "malformed")
		})

		t.Run("CN-only CSR", func(t *testing.T) {
			// acme-tiny sends the name only as the subject common name.
			_, o := a.readyOrder(t, dnsIDs("cn-only.example.com")...)
			var done orderDoc
			a.finalize(t, o, makeCSR(t, newECKey(t), csrSpec{CN: "cn-only.example.com"})).mustJSON(t, http.StatusOK, &done)
			if done.Status != "valid" {
				t.Fatalf("CN-only finalize: %+v", done)
			}
			sameStrings(t, "SANs", a.download(t, done.Certificate)[0].DNSNames, []string{"cn-only.example.com"})
		})

		t.Run("RSA-2048 CSR", func(t *testing.T) {
			_, o := a.readyOrder(t, dnsIDs("rsa.example.com")...)
			var done orderDoc
			a.finalize(t, o, makeCSR(t, newRSAKey(t, 2048), csrSpec{DNS: []string{"rsa.example.com"}})).mustJSON(t, http.StatusOK, &done)
			if done.Status != "valid" {
				t.Fatalf("RSA finalize: %+v", done)
			}
		})
	})
}

// TestFinalizeConcurrent finalizes one ready order from 20 requests at once:
// exactly one issuance, every other request told the order is not ready (or
// shown it processing or valid), and no server error.
func TestFinalizeConcurrent(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		orderURL, o := a.readyOrder(t, dnsIDs("race.example.com")...)
		// Each request has its own certificate key: finalizing again with the
		// same CSR is idempotent (TestFinalizeSameCSRAgain), another key is not.
		const n = 20
		bodies := make([][]byte, n)
		for i := range bodies {
			csr := mustJSON(t, map[string]string{"csr": b64(makeCSR(t, newECKey(t), csrSpec{DNS: []string{"race.example.com"}}))})
			bodies[i] = signJWS(t, a.key, a.url, e.nonce(t), o.Finalize, csr)
		}
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			results = make([]*resp, n)
			errs    = make([]error, n)
		)
		for i := range n {
			wg.Go(func() {
				<-start
				results[i], errs[i] = e.do(http.MethodPost, o.Finalize, bodies[i])
			})
		}
		close(start)
		wg.Wait()

		var ok, notReady int
		for i, r := range results {
			if errs[i] != nil {
				t.Errorf("request %d: %v", i, errs[i])
				continue
			}
			checkNonceHeader(t, r)
			switch r.Status {
			case http.StatusOK:
				var got orderDoc
				r.mustJSON(t, http.StatusOK, &got)
				if got.Status != "valid" && got.Status != "processing" {
					t.Errorf("finalize %d answered 200 with status %s", i, got.Status)
				}
				ok++
			case http.StatusForbidden:
				r.wantProblem(t, 403, "orderNotReady")
				notReady++
			default:
				t.Errorf("finalize %d: %s", i, r)
			}
		}
		if ok != 1 || notReady != n-1 {
			t.Errorf("%d finalizes succeeded and %d were refused, want 1 and %d", ok, notReady, n-1)
		}
		if got := e.brand.submits.Load(); got != 1 {
			t.Errorf("the issuer was asked %d times, want once", got)
		}
		final := a.order(t, orderURL)
		if final.Status != "valid" || final.Certificate == "" {
			t.Fatalf("order after the race: %+v", final)
		}
		e.verifyChain(t, a.download(t, final.Certificate), "race.example.com")
	})
}

func csrPayload(t testing.TB, key crypto.Signer, spec csrSpec) map[string]string {
	t.Helper()
	return map[string]string{"csr": b64(makeCSR(t, key, spec))}
}
