package acme_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/acmegw/acmegw/acme"
	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/local"
	"github.com/acmegw/acmegw/storage/memory"
)

// flakyRevoker is a brand whose CA cannot revoke until it is told it can.
type flakyRevoker struct {
	issuer.Issuer
	up      atomic.Bool
	revokes atomic.Int64
}

func (f *flakyRevoker) Revoke(ctx context.Context, cert *x509.Certificate, reason int) error {
	if !f.up.Load() {
		return errors.New("connection refused")
	}
	f.revokes.Add(1)
	return nil
}

// TestRevokeBrandFirst shows that a revocation the brand's CA did not
// perform is not recorded: the client gets 503 with Retry-After, and the
// retry, once the CA is back, revokes at the CA and in the gateway.
func TestRevokeBrandFirst(t *testing.T) {
	t.Parallel()
	ca, err := local.Open(t.TempDir(), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	brand := &flakyRevoker{Issuer: ca}
	router, err := issuer.NewRouter("default", []issuer.Profile{{Name: "default", Brand: "flaky"}}, map[string]issuer.Issuer{"flaky": brand})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, memory.New(), withConfig(func(c *acme.Config) { c.Router = router }))
	a := e.newAccount(t)
	cert := a.issue(t, dnsIDs("flaky.example.com")...)
	revoke := map[string]any{"certificate": b64(cert.der), "reason": 1}

	r := a.post(t, e.dir.RevokeCert, revoke)
	r.wantProblem(t, http.StatusServiceUnavailable, "serverInternal", "flaky", "retry")
	if ra := r.Header.Get("Retry-After"); ra == "" {
		t.Error("no Retry-After on a revocation the CA could not do")
	}
	brand.up.Store(true)
	if r := a.post(t, e.dir.RevokeCert, revoke); r.Status != http.StatusOK {
		t.Fatalf("retry after the CA is back: %s", r)
	}
	if n := brand.revokes.Load(); n != 1 {
		t.Errorf("the CA revoked %d times, want 1", n)
	}
	a.post(t, e.dir.RevokeCert, revoke).wantProblem(t, http.StatusBadRequest, "alreadyRevoked")
}
