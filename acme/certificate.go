package acme

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/storage"
)

// handleCertificate serves the PEM chain (RFC 8555 §7.4.2) and its alternates.
// There is deliberately no rel="up" link: Caddy would append the issuer twice.
func (s *Server) handleCertificate(w http.ResponseWriter, r *http.Request, req *request) *Problem {
	if !req.postAsGet {
		return malformed("download a certificate with POST-as-GET (an empty payload)")
	}
	vars := mux.Vars(r)
	cert, err := s.getCertificate(r.Context(), req, vars["serial"])
	if errors.Is(err, storage.ErrNotFound) || (err == nil && cert.AccountID != req.account.ID) {
		return notFound("no certificate %q for this account", vars["serial"])
	}
	if err != nil {
		return storeProblem("loading certificate", err)
	}
	chain := cert.ChainPEM
	if alt := vars["alt"]; alt != "" {
		n, err := strconv.Atoi(alt)
		if err != nil || n < 1 || n > len(cert.AlternateChains) {
			return notFound("certificate %q has no alternate chain %q", cert.Serial, alt)
		}
		chain = cert.AlternateChains[n-1]
	}
	url := s.baseURL(r) + certPath + cert.Serial
	if vars["alt"] != "" {
		addLink(w, url, "alternate")
	}
	for i := range cert.AlternateChains {
		if strconv.Itoa(i+1) != vars["alt"] {
			addLink(w, url+"/"+strconv.Itoa(i+1), "alternate")
		}
	}
	addLink(w, s.baseURL(r)+directoryPath, "index")
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(chain)
	s.endCertOrderReuse(r.Context(), cert)
	return nil
}

// endCertOrderReuse is endOrderReuse for a downloaded certificate: one
// compare-and-set of the reuse key its order was found under, which the
// certificate records (OrderReuseKey), so the order is not loaded. Records
// stored before that field existed go through endOrderReuse.
func (s *Server) endCertOrderReuse(ctx context.Context, cert *storage.Certificate) {
	if cert.OrderReuseKey == "" {
		s.endOrderReuse(ctx, cert.OrderID)
		return
	}
	// A key that no longer names this order (already ended, or a newer
	// order took it) is left alone.
	if _, err := s.store.SwapOrderKey(ctx, cert.OrderReuseKey, cert.OrderID, "", time.Minute); err != nil {
		s.log.Warn("ending order reuse", "order", cert.OrderID, "err", err)
	}
}

// orderReuseKeyOf is the reuse key newOrder indexed o under (see
// orderReuseKey), or "" when o's profile is no longer offered.
func (s *Server) orderReuseKeyOf(o *storage.Order) string {
	profile, ok := s.cfg.Router.Profile(o.Profile)
	if !ok {
		return ""
	}
	return orderReuseKey(o.AccountID, profile.Name, o.Identifiers, o.NotBefore, o.NotAfter)
}

// revocationReasons are the RFC 5280 reason codes a subscriber may give;
// cACompromise, certificateHold, removeFromCRL and aACompromise are the CA's.
var revocationReasons = map[int]string{
	0: "unspecified", 1: "keyCompromise", 3: "affiliationChanged", 4: "superseded",
	5: "cessationOfOperation", 9: "privilegeWithdrawn",
}

// handleRevoke revokes a certificate signed for by its account or by its own key (RFC 8555 §7.6).
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request, req *request) *Problem {
	var in struct {
		Certificate string `json:"certificate"`
		Reason      *int   `json:"reason"`
	}
	if req.postAsGet {
		return malformed("revokeCert needs a JSON payload with \"certificate\"")
	}
	if err := json.Unmarshal(req.payload, &in); err != nil {
		return malformed("revokeCert payload: %v", err)
	}
	reason := 0
	if in.Reason != nil {
		reason = *in.Reason
		if _, ok := revocationReasons[reason]; !ok {
			return badRevocationReason("reason %d is not accepted; use 0 (unspecified), 1 (keyCompromise), 3 (affiliationChanged), 4 (superseded), 5 (cessationOfOperation) or 9 (privilegeWithdrawn)", reason)
		}
	}
	der, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(in.Certificate, "="))
	if err != nil || len(der) == 0 {
		return malformed("\"certificate\" is not base64url-encoded DER")
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return malformed("\"certificate\" cannot be parsed: %v", err)
	}
	stored, err := s.store.GetCertificate(r.Context(), serialHex(leaf))
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("certificate %s was not issued by this server", serialHex(leaf))
	}
	if err != nil {
		return storeProblem("loading certificate", err)
	}
	if block, _ := pem.Decode(stored.ChainPEM); block == nil || !bytes.Equal(block.Bytes, der) {
		return notFound("certificate %s was not issued by this server", serialHex(leaf))
	}
	switch {
	case req.account != nil && req.account.ID != stored.AccountID:
		return unauthorized("this account did not order certificate %s; sign with the account that did, or with the certificate's key", stored.Serial)
	case req.jwk != nil:
		if !publicKeysEqual(req.jwk.Key, leaf.PublicKey) {
			return unauthorized("the JWS key is not the certificate's key")
		}
	}
	if stored.Status == storage.StatusRevoked {
		return alreadyRevoked("certificate %s was already revoked", stored.Serial)
	}
	// The brand revokes first: a certificate the gateway marked revoked
	// while the real CA still vouches for it would be worse than a retry.
	if brand, ok := s.cfg.Router.Issuer(stored.Brand); ok {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		revoke := func() error { return brand.Revoke(ctx, leaf, reason) }
		if rr, ok := brand.(issuer.RefRevoker); ok && stored.BrandRef != "" {
			revoke = func() error { return rr.RevokeRef(ctx, stored.BrandRef, leaf, reason) }
		}
		if err := revoke(); err != nil {
			s.log.Error("brand revocation failed", "serial", stored.Serial, "brand", stored.Brand, "err", err)
			p := serverInternal("the CA behind brand %q could not revoke certificate %s yet; nothing changed, retry later", stored.Brand, stored.Serial)
			p.Status = http.StatusServiceUnavailable
			p.retryAfter = 30 * time.Second
			return p
		}
	}
	stored.Status = storage.StatusRevoked
	stored.RevokedAt = time.Now().UTC()
	stored.RevocationReason = reason
	if err := s.store.UpdateCertificate(r.Context(), stored); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return alreadyRevoked("certificate %s was revoked meanwhile", stored.Serial)
		}
		return storeProblem("revoking certificate", err)
	}
	logFrom(r).Info("certificate revoked", "serial", stored.Serial, "reason", revocationReasons[reason])
	addLink(w, s.baseURL(r)+directoryPath, "index")
	w.WriteHeader(http.StatusOK)
	return nil
}

func publicKeysEqual(a, b any) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
