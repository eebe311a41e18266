package acme

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/acmegw/acmegw/storage"
)

const renewalInfoPath = "/acme/renewal-info/"

// ariRetryAfter is how often clients are asked to check the renewal window again.
const ariRetryAfter = 6 * time.Hour

// parseCertID splits an RFC 9773 certificate identifier,
// base64url(AKI keyIdentifier) "." base64url(serial DER content).
func parseCertID(id string) (aki []byte, serialHex string, p *Problem) {
	akiPart, serialPart, ok := strings.Cut(id, ".")
	if !ok || akiPart == "" || serialPart == "" {
		return nil, "", malformed("certificate id %q is not base64url(AKI).base64url(serial)", id)
	}
	aki, err := base64.RawURLEncoding.DecodeString(akiPart)
	if err != nil {
		return nil, "", malformed("certificate id %q: authority key identifier is not base64url without padding", id)
	}
	serial, err := base64.RawURLEncoding.DecodeString(serialPart)
	if err != nil || len(serial) == 0 {
		return nil, "", malformed("certificate id %q: serial is not base64url without padding", id)
	}
	return aki, fmt.Sprintf("%x", new(big.Int).SetBytes(serial)), nil
}

// certID is the RFC 9773 identifier of a certificate.
func certID(leaf *x509.Certificate) string {
	serial := leaf.SerialNumber.Bytes()
	if len(serial) == 0 || serial[0]&0x80 != 0 {
		// DER INTEGER content keeps a leading zero when the top bit is set.
		serial = append([]byte{0}, serial...)
	}
	return base64.RawURLEncoding.EncodeToString(leaf.AuthorityKeyId) + "." + base64.RawURLEncoding.EncodeToString(serial)
}

// certificateByID finds the stored certificate an ARI certificate id names.
func (s *Server) certificateByID(ctx context.Context, id string) (*storage.Certificate, *x509.Certificate, *Problem) {
	aki, serial, p := parseCertID(id)
	if p != nil {
		return nil, nil, p
	}
	cert, err := s.store.GetCertificate(ctx, serial)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, notFound("no certificate with id %q was issued here", id)
	}
	if err != nil {
		return nil, nil, storeProblem("loading certificate", err)
	}
	leaf, err := parseLeaf(cert.ChainPEM)
	if err != nil {
		return nil, nil, serverInternal("stored certificate %s unreadable: %v", cert.Serial, err)
	}
	if !bytes.Equal(leaf.AuthorityKeyId, aki) {
		return nil, nil, notFound("no certificate with id %q was issued here", id)
	}
	return cert, leaf, nil
}

func parseLeaf(chain []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(chain)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParseCertificate(block.Bytes)
}

// renewalWindow is the suggested window: the middle of the last third of the
// lifetime, as Let's Encrypt suggests; in the past for revoked certificates
// so that clients renew at once; or the operator's override.
func renewalWindow(c *storage.Certificate, now time.Time) (time.Time, time.Time) {
	if !c.RenewalStart.IsZero() && !c.RenewalEnd.IsZero() {
		return c.RenewalStart, c.RenewalEnd
	}
	if c.Status == storage.StatusRevoked {
		return now.Add(-2 * time.Hour), now.Add(-time.Hour)
	}
	life := c.NotAfter.Sub(c.NotBefore)
	return c.NotBefore.Add(life * 2 / 3), c.NotBefore.Add(life * 5 / 6)
}

// handleRenewalInfo serves GET {renewalInfo}/{certID} (RFC 9773 §4.1).
func (s *Server) handleRenewalInfo(w http.ResponseWriter, r *http.Request) {
	cert, _, p := s.certificateByID(r.Context(), mux.Vars(r)["id"])
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	start, end := renewalWindow(cert, time.Now())
	w.Header().Set("Retry-After", fmt.Sprint(int(ariRetryAfter.Seconds())))
	s.writeJSON(w, r, http.StatusOK, map[string]any{
		"suggestedWindow": map[string]string{
			"start": start.UTC().Format(time.RFC3339),
			"end":   end.UTC().Format(time.RFC3339),
		},
	})
}

// claimReplacement checks newOrder's "replaces" and marks the certificate as
// replaced by orderID before the order exists, so that two orders cannot both
// replace it; release undoes the mark if the order is then not created.
func (s *Server) claimReplacement(r *http.Request, acct *storage.Account, id string, ids []storage.Identifier, orderID string) (release func(), p *Problem) {
	cert, _, p := s.certificateByID(r.Context(), id)
	if p != nil {
		if p.Status == http.StatusNotFound {
			p.Status = http.StatusBadRequest
		}
		return nil, p
	}
	if cert.AccountID != acct.ID {
		return nil, unauthorized("certificate %q named in \"replaces\" was not issued to this account", id)
	}
	if !sharesName(cert.Names, ids) {
		return nil, malformed("certificate %q named in \"replaces\" shares no identifier with this order", id)
	}
	if cert.ReplacedBy != "" {
		prev, err := s.store.GetOrder(r.Context(), cert.ReplacedBy)
		if err == nil && prev.Status != storage.StatusInvalid {
			p := newProblem("alreadyReplaced", http.StatusConflict, "certificate %q was already replaced by order %s", id, s.orderURL(r, prev.ID))
			return nil, p
		}
	}
	cert.ReplacedBy = orderID
	if err := s.store.UpdateCertificate(r.Context(), cert); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, newProblem("alreadyReplaced", http.StatusConflict, "certificate %q is being replaced by another order", id)
		}
		return nil, storeProblem("marking certificate replaced", err)
	}
	return func() {
		cert.ReplacedBy = ""
		_ = s.store.UpdateCertificate(context.Background(), cert)
	}, nil
}

func sharesName(names []string, ids []storage.Identifier) bool {
	for _, n := range names {
		for _, id := range ids {
			if id.Value == n {
				return true
			}
		}
	}
	return false
}
