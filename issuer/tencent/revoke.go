package tencent

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/acmegw/acmegw/issuer/dcv"
)

// Bounds of the search Revoke makes when the certificate carries no alias.
const (
	searchPageSize  = 100
	maxSearchPages  = 5
	maxDetailChecks = 20
	// revokePoll is how often Revoke reads the status while Tencent checks
	// the revocation's DCV records.
	revokePoll = 2 * time.Second
)

// reasonNames are the RFC 5280 CRLReason names, sent as Tencent's free-text
// Reason so that the console shows why.
var reasonNames = map[int]string{
	0: "unspecified", 1: "keyCompromise", 2: "cACompromise", 3: "affiliationChanged",
	4: "superseded", 5: "cessationOfOperation", 6: "certificateHold", 8: "removeFromCRL",
	9: "privilegeWithdrawn", 10: "aACompromise",
}

// Revoke revokes cert at Tencent (RevokeCertificate). The contract hands
// over only the x509 certificate, so the brand first finds its
// CertificateId: by the alias it gave the certificate when it collected it
// ("acmegw-<serial>"), else by searching the certificate's first name and
// comparing each candidate's leaf with cert byte for byte. RevokeRef skips
// that search when the gateway kept the CertificateId.
//
// Tencent confirms a DV revocation with a second domain validation: the
// brand publishes the records it asks for, waits up to Config.RevokeWait
// (and the context) for the status to become revoked, then removes them. If
// Tencent is slower, the records stay published so that its check can
// still pass, and Revoke reports the revocation as pending. An OV/EV
// revocation waiting for a signed letter is reported the same way. A
// certificate already revoked is success, so a retried revocation
// converges.
func (b *Brand) Revoke(ctx context.Context, cert *x509.Certificate, reason int) error {
	if cert == nil {
		return fmt.Errorf("tencent %s: revoke: no certificate", b.name)
	}
	serial := cert.SerialNumber.Text(16)
	why, err := b.reasonName(serial, reason)
	if err != nil {
		return err
	}
	id, d, err := b.findIssued(ctx, cert)
	if err != nil {
		return fmt.Errorf("tencent %s: revoke %s: %w", b.name, serial, err)
	}
	return b.revoke(ctx, id, d, serial, why, reason)
}

// RevokeRef revokes the Tencent certificate ref names: the CertificateId
// the brand returned as issuer.Result.Ref, which the gateway stored with
// the certificate. It skips Revoke's search (DescribeCertificates and a
// detail per candidate): one DescribeCertificateDetail reads the status
// (a certificate already revoked, or being revoked, is handled as Revoke
// handles it) and the issued leaf, then RevokeCertificate, with the same
// DCV confirmation as Revoke.
//
// A ref that cannot be a CertificateId (empty for certificates issued
// before the brand set Ref, or damaged) falls back to Revoke's search. A
// well-formed id Tencent does not know is an error, as is one whose leaf
// is not cert: a stale or mixed-up ref must not revoke another
// certificate, and must not pass for a revocation either.
func (b *Brand) RevokeRef(ctx context.Context, ref string, cert *x509.Certificate, reason int) error {
	if !isCertificateID(ref) {
		return b.Revoke(ctx, cert, reason)
	}
	serial := "of unknown serial"
	if cert != nil {
		serial = cert.SerialNumber.Text(16)
	}
	why, err := b.reasonName(serial, reason)
	if err != nil {
		return err
	}
	d, err := b.describe(ctx, ref)
	if err != nil {
		return fmt.Errorf("tencent %s: revoke %s (certificate %s): %w", b.name, serial, ref, err)
	}
	if cert != nil && carriesLeaf(d) && !sameLeaf(d, cert) {
		return fmt.Errorf("tencent %s: revoke %s: Tencent certificate %s is another certificate; nothing was revoked", b.name, serial, ref)
	}
	return b.revoke(ctx, ref, d, serial, why, reason)
}

// reasonName is the RFC 5280 name of reason, which Tencent's free-text
// Reason carries; a code RFC 5280 does not define is refused before any
// call.
func (b *Brand) reasonName(serial string, reason int) (string, error) {
	why, ok := reasonNames[reason]
	if !ok {
		return "", fmt.Errorf("tencent %s: revoke %s: reason code %d is not defined by RFC 5280", b.name, serial, reason)
	}
	return why, nil
}

// isCertificateID reports whether ref can be a Tencent CertificateId
// (eight letters and digits today; up to 64 are accepted in case Tencent
// lengthens them). Anything else could only draw a not-found answer, where
// the search by serial still finds the certificate.
func isCertificateID(ref string) bool {
	if ref == "" || len(ref) > 64 {
		return false
	}
	for _, r := range ref {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// revoke asks Tencent to revoke certificate id, whose detail d was just
// read, and sees the DV confirmation through (see Revoke).
func (b *Brand) revoke(ctx context.Context, id string, d *certificateDetail, serial, why string, reason int) error {
	var auths []dvAuth
	switch d.Status {
	case statusRevoked:
		return nil
	case statusRevoking:
		// Asked before; Tencent still waits for the DCV records, which
		// the detail repeats.
		auths = d.DvRevokeAuthDetail
	default:
		var out revokeCertificateResponse
		in := revokeCertificateRequest{CertificateID: id, Reason: fmt.Sprintf("acmegw: %s (RFC 5280 reason %d)", why, reason)}
		if err := b.api.call(ctx, actRevokeCertificate, in, &out); err != nil {
			return fmt.Errorf("tencent %s: revoke %s (certificate %s): %w", b.name, serial, id, err)
		}
		for _, a := range out.RevokeDomainValidateAuths {
			auths = append(auths, dvAuth{DvAuthKey: a.DomainValidateAuthKey, DvAuthValue: a.DomainValidateAuthValue,
				DvAuthDomain: a.DomainValidateAuthDomain, DvAuthPath: a.DomainValidateAuthPath})
		}
	}
	b.log.Info("tencent: revocation requested", "certificate", id, "serial", serial, "reason", why)

	records, skipped := dcvRecords(&dvAuthDetail{DvAuths: auths})
	if len(skipped) > 0 {
		b.log.Warn("tencent: revocation DCV entries the gateway cannot publish", "certificate", id, "entries", skipped)
	}
	var published []dcv.Record
	for _, r := range records {
		if err := b.publish.Publish(ctx, r); err != nil {
			b.unpublish(ctx, id, published)
			return fmt.Errorf("tencent %s: revoke %s (certificate %s): publishing DCV record %s (%s): %w",
				b.name, serial, id, r.Name, b.publish.Method(), err)
		}
		published = append(published, r)
	}

	wctx, cancel := context.WithTimeout(ctx, b.cfg.RevokeWait)
	defer cancel()
	for {
		d, err := b.describe(wctx, id)
		switch {
		case err == nil && d.Status == statusRevoked:
			b.unpublish(ctx, id, published)
			return nil
		case err == nil && d.Status == statusAwaitingRevoke:
			b.unpublish(ctx, id, published)
			return fmt.Errorf("tencent %s: revoke %s (certificate %s): pending: Tencent Cloud waits for the signed revocation letter to be uploaded in its console",
				b.name, serial, id)
		case err == nil && d.Status == statusRevoking && len(published) == 0 && len(skipped) == 0:
			// Nothing for the gateway to prove: Tencent works on it.
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("tencent %s: revoke %s (certificate %s): pending: not confirmed within %s; %d DCV record(s) left published for Tencent's check",
				b.name, serial, id, b.cfg.RevokeWait, len(published))
		case <-time.After(revokePoll):
		}
	}
}

// unpublish removes revocation records, logging failures.
func (b *Brand) unpublish(ctx context.Context, id string, records []dcv.Record) {
	for _, r := range records {
		if err := b.publish.Unpublish(ctx, r); err != nil {
			b.log.Warn("tencent: removing a revocation DCV record failed", "certificate", id, "record", r.Name, "err", err)
		}
	}
}

// findIssued finds the Tencent certificate whose leaf is cert: first by the
// alias collect gave it, then among the certificates matching its first
// name. Each candidate is confirmed against its detail, so a fuzzy search
// never revokes the wrong certificate.
func (b *Brand) findIssued(ctx context.Context, cert *x509.Certificate) (string, *certificateDetail, error) {
	checked := map[string]bool{}
	try := func(items []certificateItem, filter func(certificateItem) bool) (string, *certificateDetail, error) {
		for _, it := range items {
			if it.CertificateID == "" || checked[it.CertificateID] || !filter(it) {
				continue
			}
			if len(checked) >= maxDetailChecks {
				return "", nil, nil
			}
			checked[it.CertificateID] = true
			d, err := b.describe(ctx, it.CertificateID)
			if err != nil {
				return "", nil, err
			}
			if sameLeaf(d, cert) {
				return it.CertificateID, d, nil
			}
		}
		return "", nil, nil
	}

	var byAlias describeCertificatesResponse
	if err := b.api.call(ctx, actDescribeCertificates, describeCertificatesRequest{Limit: 10, SearchKey: aliasFor(cert)}, &byAlias); err != nil {
		return "", nil, err
	}
	alias := aliasFor(cert)
	if id, d, err := try(byAlias.Certificates, func(it certificateItem) bool { return it.Alias == alias }); id != "" || err != nil {
		return id, d, err
	}

	name := cert.Subject.CommonName
	if name == "" && len(cert.DNSNames) > 0 {
		name = cert.DNSNames[0]
	}
	if name == "" {
		return "", nil, errors.New("the certificate names no domain to search for")
	}
	names := append([]string{cert.Subject.CommonName}, cert.DNSNames...)
	related := func(it certificateItem) bool {
		return slices.ContainsFunc(names, func(n string) bool {
			return n != "" && (strings.EqualFold(it.Domain, n) || slices.ContainsFunc(it.SubjectAltName, func(s string) bool { return strings.EqualFold(s, n) }))
		})
	}
	for page := int64(0); page < maxSearchPages; page++ {
		var found describeCertificatesResponse
		in := describeCertificatesRequest{
			Offset:            page * searchPageSize,
			Limit:             searchPageSize,
			SearchKey:         strings.TrimPrefix(name, "*."),
			CertificateStatus: []int64{statusIssued, statusRevoking, statusRevoked, statusExpired},
		}
		if err := b.api.call(ctx, actDescribeCertificates, in, &found); err != nil {
			return "", nil, err
		}
		if id, d, err := try(found.Certificates, related); id != "" || err != nil {
			return id, d, err
		}
		if len(found.Certificates) < searchPageSize || (page+1)*searchPageSize >= found.TotalCount {
			break
		}
	}
	return "", nil, fmt.Errorf("no certificate in the Tencent Cloud account matches serial %s (%s)", cert.SerialNumber.Text(16), name)
}

// carriesLeaf reports whether the detail d says which certificate it is
// (its PEM or fingerprint), so that sameLeaf's "no" means another
// certificate rather than a detail without one.
func carriesLeaf(d *certificateDetail) bool {
	if _, err := parseCerts(d.CertificatePublicKey); err == nil {
		return true
	}
	return d.CertFingerprint != ""
}

// sameLeaf reports whether the certificate detail d is cert: by its PEM, or
// by its SHA-1 fingerprint when the detail carries no PEM.
func sameLeaf(d *certificateDetail, cert *x509.Certificate) bool {
	if certs, err := parseCerts(d.CertificatePublicKey); err == nil {
		return slices.ContainsFunc(certs, func(c *x509.Certificate) bool { return bytes.Equal(c.Raw, cert.Raw) })
	}
	if d.CertFingerprint == "" {
		return false
	}
	sum := sha1.Sum(cert.Raw)
	fp := strings.ToLower(strings.NewReplacer(":", "", " ", "").Replace(d.CertFingerprint))
	return fp == hex.EncodeToString(sum[:])
}
