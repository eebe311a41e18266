package acme_test

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"testing"
	"time"
)

func TestRevokeCert(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		a, b := e.newAccount(t), e.newAccount(t)
		revoke := func(der []byte, reason any) map[string]any {
			p := map[string]any{"certificate": b64(der)}
			if reason != nil {
				p["reason"] = reason
			}
			return p
		}
		// certKeyAcct signs with the certificate's own key, as a "jwk".
		certKeyAcct := func(c issued) *acct { return &acct{e: e, key: c.key} }

		t.Run("by the ordering account, then again", func(t *testing.T) {
			c := a.issue(t, dnsIDs("rev1.example.com")...)
			r := a.post(t, e.dir.RevokeCert, revoke(c.der, 1))
			if r.Status != http.StatusOK {
				t.Fatalf("revoke: %s", r)
			}
			a.post(t, e.dir.RevokeCert, revoke(c.der, 1)).wantProblem(t, 400, "alreadyRevoked", "already revoked")
			certKeyAcct(c).postJWK(t, e.dir.RevokeCert, revoke(c.der, nil)).wantProblem(t, 400, "alreadyRevoked")
		})

		t.Run("by another account, then by the certificate key", func(t *testing.T) {
			c := a.issue(t, dnsIDs("rev2.example.com")...)
			b.post(t, e.dir.RevokeCert, revoke(c.der, nil)).wantProblem(t, 403, "unauthorized", "certificate's key")
			// Another key presented as a "jwk" is no better.
			(&acct{e: e, key: newECKey(t)}).postJWK(t, e.dir.RevokeCert, revoke(c.der, nil)).
				wantProblem(t, 403, "unauthorized", "not the certificate's key")
			// The account key as a "jwk" is not the certificate key either.
			a.postJWK(t, e.dir.RevokeCert, revoke(c.der, nil)).wantProblem(t, 403, "unauthorized")
			r := certKeyAcct(c).postJWK(t, e.dir.RevokeCert, revoke(c.der, 4))
			if r.Status != http.StatusOK {
				t.Fatalf("revoke by certificate key: %s", r)
			}
			a.post(t, e.dir.RevokeCert, revoke(c.der, nil)).wantProblem(t, 400, "alreadyRevoked")
		})

		t.Run("bad requests leave the certificate valid", func(t *testing.T) {
			c := a.issue(t, dnsIDs("rev3.example.com")...)
			for _, tc := range []struct {
				name    string
				payload any
				status  int
				typ     string
				hint    string
			}{
				{"reason 7", revoke(c.der, 7), 400, "badRevocationReason", "reason 7"},
				{"reason cACompromise", revoke(c.der, 2), 400, "badRevocationReason", "1 (keyCompromise)"},
				{"reason removeFromCRL", revoke(c.der, 8), 400, "badRevocationReason", ""},
				{"negative reason", revoke(c.der, -1), 400, "badRevocationReason", ""},
				{"reason a string", revoke(c.der, "keyCompromise"), 400, "malformed", "revokeCert"},
				{"certificate not base64url", map[string]any{"certificate": "!!!"}, 400, "malformed", "base64url"},
				{"certificate not DER", revoke([]byte("not a certificate"), nil), 400, "malformed", "parsed"},
				{"no certificate", map[string]any{}, 400, "malformed", `"certificate"`},
				{"certificate of another CA", revoke(foreignCert(t), nil), 404, "malformed", "not issued by this server"},
				{"POST-as-GET", nil, 400, "malformed", "certificate"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					r := a.post(t, e.dir.RevokeCert, tc.payload)
					if tc.hint != "" {
						r.wantProblem(t, tc.status, tc.typ, tc.hint)
					} else {
						r.wantProblem(t, tc.status, tc.typ)
					}
				})
			}
			r := a.post(t, e.dir.RevokeCert, revoke(c.der, 0))
			if r.Status != http.StatusOK {
				t.Fatalf("revoke after refused attempts: %s", r)
			}
		})
	})
}

// foreignCert is a self-signed certificate this server never issued.
func foreignCert(t testing.TB) []byte {
	t.Helper()
	k := newECKey(t)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(1234567),
		Subject:      pkix.Name{CommonName: "foreign.example.com"},
		DNSNames:     []string{"foreign.example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "foreign.example.com"}}, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
