package acme

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// orderReuseTTL bounds how long an order stays findable for reuse; the
// order's own state (expiry, certificate validity) decides within it.
const orderReuseTTL = 120 * 24 * time.Hour

// orderReuseKey names what makes two newOrder requests the same: account,
// profile, identifiers in the order sent (lego compares them as sent) and
// the requested validity.
func orderReuseKey(accountID, profile string, ids []storage.Identifier, notBefore, notAfter time.Time) string {
	var b strings.Builder
	b.WriteString(accountID + "|" + profile + "|")
	if !notBefore.IsZero() || !notAfter.IsZero() {
		b.WriteString(notBefore.Format(time.RFC3339) + "~" + notAfter.Format(time.RFC3339) + "|")
	}
	for _, id := range ids {
		b.WriteString(id.Type + ":" + id.Value + ",")
	}
	sum := sha256.Sum256([]byte(b.String()))
	return accountID + ":" + hex.EncodeToString(sum[:16])
}

// reusableOrder returns the account's earlier order for the same request if
// it can still lead to a certificate: pending or ready and unexpired,
// processing (a brand review may take days), or valid with a certificate
// that is neither expired nor revoked. A client that gave up waiting and
// runs again thus finds the order, and its certificate, it started before.
//
// id is what the order index holds under the request's orderReuseKey: ""
// when nothing is there, or endOrderReuse found the certificate delivered.
func (s *Server) reusableOrder(ctx context.Context, acct *storage.Account, id string) (*storage.Order, *Problem) {
	if id == "" {
		return nil, nil
	}
	o, err := s.store.GetOrder(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && o.AccountID != acct.ID) {
		return nil, nil
	}
	if err != nil {
		return nil, storeProblem("loading earlier order", err)
	}
	o, p := s.refreshOrder(ctx, o)
	if p != nil {
		return nil, p
	}
	switch o.Status {
	case storage.StatusPending, storage.StatusReady, storage.StatusProcessing:
		return o, nil
	case storage.StatusValid:
		cert, err := s.store.GetCertificate(ctx, o.CertSerial)
		if err != nil {
			return nil, nil
		}
		if cert.Status == storage.StatusValid && time.Now().Before(cert.NotAfter) {
			return o, nil
		}
	}
	return nil, nil
}

// endOrderReuse stops handing back orderID once the account has downloaded
// its certificate: a later newOrder for the same names is then a renewal
// (certbot renew, dehydrated --force, cert-manager with a new key) that needs
// a new order, not the valid one it could only finalize with the old key.
func (s *Server) endOrderReuse(ctx context.Context, orderID string) {
	o, err := s.store.GetOrder(ctx, orderID)
	if err != nil {
		return
	}
	profile, ok := s.cfg.Router.Profile(o.Profile)
	if !ok {
		return
	}
	key := orderReuseKey(o.AccountID, profile.Name, o.Identifiers, o.NotBefore, o.NotAfter)
	if id, err := s.store.GetOrderKey(ctx, key); err != nil || id != orderID {
		return // already ended, or a newer order took the key
	}
	if err := s.store.SetOrderKey(ctx, key, "", time.Minute); err != nil {
		s.log.Warn("ending order reuse", "order", orderID, "err", err)
	}
}

// csrKeyHash fingerprints a CSR's public key for idempotent finalize.
func csrKeyHash(csr *x509.CertificateRequest) string {
	sum := sha256.Sum256(csr.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}
