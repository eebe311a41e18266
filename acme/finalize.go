package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/gorilla/mux"

	"github.com/acmegw/acmegw/storage"
	"github.com/acmegw/acmegw/validation"
)

// handleFinalize checks the CSR against the order and issues (RFC 8555 §7.4).
func (s *Server) handleFinalize(w http.ResponseWriter, r *http.Request, req *request) *Problem {
	var in struct {
		CSR string `json:"csr"`
	}
	if req.postAsGet {
		return malformed("finalize needs a JSON payload with \"csr\"")
	}
	if err := json.Unmarshal(req.payload, &in); err != nil {
		return malformed("finalize payload: %v", err)
	}
	o, p := s.loadOrder(r, req, mux.Vars(r)["id"])
	if p != nil {
		return p
	}
	if o.Status == storage.StatusProcessing || o.Status == storage.StatusValid {
		// A client re-running after it gave up on a slow brand finalizes
		// again: with the same key, that is the same request.
		if csr, p := parseCSR(in.CSR); p == nil && o.CSRKeyHash != "" && csrKeyHash(csr) == o.CSRKeyHash {
			s.writeOrder(w, r, http.StatusOK, o)
			return nil
		}
	}
	if o.Status != storage.StatusReady {
		return orderNotReady("order is %s, not ready; %s", o.Status, notReadyHint(o.Status))
	}
	// The certificate limits are spent by the issuance job, once the brand
	// issues or accepts the order (jobs.go).
	domains, p := s.limitFinalize(r.Context(), o)
	if p != nil {
		return p
	}
	csr, p := parseCSR(in.CSR)
	if p != nil {
		return p
	}
	if p := checkCSR(csr, o, req.account); p != nil {
		return p
	}
	if p := s.checkProfileCSR(csr, o); p != nil {
		return p
	}
	// What the job spends once the brand issues: issuedLimits, from the
	// renewal check limitFinalize has just made.
	limits := domains
	if profile, ok := s.cfg.Router.Profile(o.Profile); ok {
		if p := s.checkQuota(r.Context(), profile, o.AccountID, o.Identifiers); p != nil {
			return p
		}
		limits = append(limits, quotaChecks(profile, o.AccountID, o.Identifiers)...)
	}
	if p := s.recheckCAA(r, o, req.account); p != nil {
		return p
	}

	job, p := s.enqueueFinalize(r.Context(), o, csr)
	if p != nil {
		return p
	}
	o.Status = storage.StatusProcessing
	o.CSRKeyHash = csrKeyHash(csr)
	o.FinalizedAt = time.Now().UTC()
	if err := s.store.UpdateOrder(r.Context(), o); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			// The order did not move: drop its job. If that fails, the
			// job's first run finds the order not processing and ends it.
			if cerr := s.store.CompleteJob(r.Context(), job); cerr != nil {
				logFrom(r).Warn("dropping the issuance job of an order that did not move", "err", cerr)
			}
			return orderNotReady("order is already being finalized")
		}
		// The write may have happened after all (a timeout): the job stays,
		// and its first step runs in the background as soon as the store
		// answers again, issuing or ending the job, whichever state the
		// order is in, rather than when its lease ends.
		s.settleFinalize(job)
		return storeProblem("finalizing order", err)
	}
	s.metrics.orders.WithLabelValues(storage.StatusProcessing, o.Brand).Inc()
	o = s.runFinalizeJob(r, job, &jobStart{order: o, csr: csr, limits: limits})
	// The request's own log line says how it ended; the job logged the
	// issuance itself ("certificate issued"), so no line of its own here.
	logWith(r, "order_status", o.Status, "serial", o.CertSerial)
	s.writeOrder(w, r, http.StatusOK, o)
	return nil
}

func notReadyHint(status string) string {
	switch status {
	case storage.StatusPending:
		return "complete its authorizations first"
	case storage.StatusProcessing:
		return "the certificate is being issued; poll the order, or finalize again with the same CSR"
	case storage.StatusValid:
		return "it was already finalized with another key; download its certificate, or finalize again with the same CSR"
	}
	return "create a new order"
}

func serialHex(c *x509.Certificate) string { return fmt.Sprintf("%x", c.SerialNumber) }

func ipStrings(c *x509.Certificate) []string {
	out := make([]string, len(c.IPAddresses))
	for i, ip := range c.IPAddresses {
		out[i] = ip.String()
	}
	return out
}

func parseCSR(b64 string) (*x509.CertificateRequest, *Problem) {
	if b64 == "" {
		return nil, malformed("finalize payload has no \"csr\"")
	}
	der, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(b64, "="))
	if err != nil {
		return nil, badCSR("\"csr\" is not base64url-encoded DER: %v", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, badCSR("CSR cannot be parsed: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, badCSR("CSR signature is invalid: %v", err)
	}
	return csr, nil
}

// checkCSR enforces that the CSR asks for exactly the order's identifiers
// (its CN counts as a name) with an acceptable key that is not the account's.
func checkCSR(csr *x509.CertificateRequest, o *storage.Order, acct *storage.Account) *Problem {
	if p := checkCSRKey(csr.PublicKey); p != nil {
		return p
	}
	if csrKeyIsAccountKey(csr.PublicKey, acct) {
		return badCSR("the CSR's key is the account key; use a separate key for the certificate")
	}
	if len(csr.EmailAddresses) > 0 || len(csr.URIs) > 0 {
		return badCSR("CSR may only ask for DNS names and IP addresses, not e-mail addresses or URIs")
	}
	want := map[string]bool{}
	for _, id := range o.Identifiers {
		want[id.Type+":"+id.Value] = true
	}
	got := map[string]bool{}
	if cn := csr.Subject.CommonName; cn != "" {
		if addr, err := netip.ParseAddr(cn); err == nil {
			got["ip:"+addr.String()] = true
		} else {
			got["dns:"+strings.ToLower(cn)] = true
		}
	}
	for _, n := range csr.DNSNames {
		got["dns:"+strings.ToLower(n)] = true
	}
	for _, ip := range csr.IPAddresses {
		addr, _ := netip.AddrFromSlice(ip)
		got["ip:"+addr.Unmap().String()] = true
	}
	var missing, extra []string
	for k := range want {
		if !got[k] {
			missing = append(missing, strings.SplitN(k, ":", 2)[1])
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, strings.SplitN(k, ":", 2)[1])
		}
	}
	if len(missing)+len(extra) > 0 {
		sort.Strings(missing)
		sort.Strings(extra)
		var parts []string
		if len(extra) > 0 {
			parts = append(parts, "it asks for names not in the order: "+strings.Join(extra, ", "))
		}
		if len(missing) > 0 {
			parts = append(parts, "it lacks names of the order: "+strings.Join(missing, ", "))
		}
		return badCSR("CSR does not match the order's identifiers: %s", strings.Join(parts, "; "))
	}
	return nil
}

// csrKeyIsAccountKey reports whether pub is the account's key. The
// account's RFC 7638 thumbprint names its key exactly, and hashing pub
// costs less than decoding the stored JWK; a record without one is
// compared by its key.
func csrKeyIsAccountKey(pub any, acct *storage.Account) bool {
	if acct.Thumbprint != "" {
		tp, err := thumbprint(&jose.JSONWebKey{Key: pub})
		return err == nil && tp == acct.Thumbprint
	}
	var accountKey jose.JSONWebKey
	if err := accountKey.UnmarshalJSON(acct.KeyJWK); err != nil {
		return false
	}
	return publicKeysEqual(accountKey.Key, pub)
}

// checkCSRKey accepts the key types every public CA issues for.
func checkCSRKey(pub any) *Problem {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 8192 {
			return badCSR("CSR has a %d-bit RSA key; RSA keys must be 2048 to 8192 bits (2048, 3072 or 4096 recommended)", n)
		}
		if k.E < 3 || k.E%2 == 0 {
			return badCSR("CSR's RSA public exponent %d is not acceptable", k.E)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return badCSR("CSR's ECDSA key must use P-256 or P-384, not %s", k.Curve.Params().Name)
		}
	default:
		return badCSR("CSR key type %T is not accepted; use RSA (2048+ bits) or ECDSA P-256/P-384", pub)
	}
	return nil
}

// recheckCAA repeats the CAA checks of the order's authorizations that are
// too old (or were made for another brand's identities) right before
// issuance. A failure makes the order invalid: the records forbid this CA.
func (s *Server) recheckCAA(r *http.Request, o *storage.Order, acct *storage.Account) *Problem {
	brand, ok := s.cfg.Router.Issuer(o.Brand)
	if !ok {
		return nil
	}
	identities := brand.Describe().CAAIdentities
	if len(identities) == 0 {
		return nil
	}
	checks := make([]validation.CAACheck, 0, len(o.AuthzIDs))
	for _, id := range o.AuthzIDs {
		a, err := s.store.GetAuthorization(r.Context(), id)
		if err != nil {
			return storeProblem("loading authorization", err)
		}
		if a.Identifier.Type != "dns" {
			continue
		}
		method := ""
		for _, c := range a.Challenges {
			if c.Status == storage.StatusValid {
				method = c.Type
			}
		}
		checks = append(checks, validation.CAACheck{
			Request: validation.CAARequest{
				Name: a.Identifier.Value, Wildcard: a.Wildcard, IssuerDomains: identities,
				AccountURI: s.accountURL(r, acct.ID), Method: method,
			},
			CheckedAt:            a.CAACheckedAt,
			CheckedIssuerDomains: a.CAAIdentities,
		})
	}
	err := s.cfg.Validator.RecheckCAA(r.Context(), time.Now(), s.cfg.CAARecheckAge, checks)
	if err == nil {
		return nil
	}
	sp := validationProblem(err)
	o.Status = storage.StatusInvalid
	o.Error = sp
	if uerr := s.store.UpdateOrder(r.Context(), o); uerr != nil && !errors.Is(uerr, storage.ErrConflict) {
		return storeProblem("recording CAA failure", uerr)
	}
	return problemFromStored(sp)
}
