package tencent

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/dcv"
)

// maxZipEntry bounds one file read out of DownloadCertificate's ZIP.
const maxZipEntry = 1 << 20

// collect turns an issued certificate into the Result: the PEM chain from
// the detail (or DownloadCertificate when the detail has none), checked
// against the CSR's key and the order's names, leaf first. The DCV records
// are removed and the certificate is labelled for Revoke; neither failure
// withholds the chain.
func (b *Brand) collect(ctx context.Context, t *ticket, d *certificateDetail) (issuer.Result, error) {
	chainPEM := d.CertificatePublicKey
	if !strings.Contains(chainPEM, "BEGIN CERTIFICATE") {
		var err error
		if chainPEM, err = b.download(ctx, t.ID); err != nil {
			return issuer.Result{}, err
		}
	}
	certs, err := parseCerts(chainPEM)
	if err != nil {
		return issuer.Result{}, refuse("serverInternal", "certificate %s: issued chain: %v", t.ID, err)
	}
	leafAt := -1
	for i, c := range certs {
		if t.leafMatches(c) {
			leafAt = i
			break
		}
	}
	if leafAt < 0 {
		return issuer.Result{}, refuse("serverInternal", "certificate %s was issued for another key than the CSR's "+
			"(was the order switched to an online-generated CSR in the console?)", t.ID)
	}
	leaf := certs[leafAt]
	for _, n := range t.Names {
		if !certifies(leaf, n) {
			return issuer.Result{}, refuse("serverInternal", "certificate %s does not certify %s (it names %v)", t.ID, n, leaf.DNSNames)
		}
	}
	var chain bytes.Buffer
	_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	for i, c := range certs {
		if i != leafAt {
			_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		}
	}

	b.unpublishAll(ctx, t)
	alias := aliasFor(leaf)
	if err := b.api.call(ctx, actModifyCertificateAlias, modifyCertificateAliasRequest{CertificateID: t.ID, Alias: alias}, nil); err != nil {
		b.log.Warn("tencent: labelling the certificate for revocation failed; Revoke will search by name",
			"certificate", t.ID, "alias", alias, "err", err)
	}
	b.log.Info("tencent: certificate issued", "certificate", t.ID, "serial", leaf.SerialNumber.Text(16))
	// Ref is what RevokeRef needs: the CertificateId, which spares the
	// revocation the search by alias and name.
	return issuer.Result{Chain: chain.Bytes(), Leaf: leaf, Ref: t.ID}, nil
}

// download fetches the certificate through DownloadCertificate: a base64
// ZIP holding the chain in several server formats. Any PEM bundle in it
// will do; the one with the most certificates (leaf and intermediates) is
// taken.
func (b *Brand) download(ctx context.Context, id string) (string, error) {
	var dl downloadCertificateResponse
	if err := b.api.call(ctx, actDownloadCertificate, certificateIDRequest{CertificateID: id}, &dl); err != nil {
		return "", classify(err, afterPurchase)
	}
	raw, err := base64.StdEncoding.DecodeString(dl.Content)
	if err != nil {
		return "", fmt.Errorf("DownloadCertificate: content is not base64: %w", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return "", fmt.Errorf("DownloadCertificate: content is not a ZIP: %w", err)
	}
	best, bestCount := "", 0
	for _, f := range zr.File {
		switch strings.ToLower(path.Ext(f.Name)) {
		case ".crt", ".pem", ".cer":
		default:
			continue
		}
		rc, err := f.Open()
		if err != nil {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(rc, maxZipEntry))
		rc.Close()
		if err != nil {
			continue
		}
		if n := strings.Count(string(data), "BEGIN CERTIFICATE"); n > bestCount {
			best, bestCount = string(data), n
		}
	}
	if bestCount == 0 {
		return "", errors.New("DownloadCertificate: the ZIP holds no PEM certificate")
	}
	return best, nil
}

// unpublishAll removes the records the ticket published. A failure is
// logged, not returned: the order's outcome does not depend on it, and a
// stale TXT record under _dnsauth harms nothing.
func (b *Brand) unpublishAll(ctx context.Context, t *ticket) {
	for _, r := range t.Published {
		if err := b.publish.Unpublish(ctx, r.dcv()); err != nil {
			b.log.Warn("tencent: removing a DCV record failed", "certificate", t.ID, "record", r.Name,
				"method", b.publish.Method(), "err", err)
		}
	}
	t.Published = nil
}

// parseCerts parses every CERTIFICATE block of a PEM bundle.
func parseCerts(s string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := []byte(s)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return certs, nil
}

// certifies reports whether leaf names n exactly (a wildcard only as
// itself: the gateway ordered exactly these names).
func certifies(leaf *x509.Certificate, n string) bool {
	for _, d := range leaf.DNSNames {
		if strings.EqualFold(d, n) {
			return true
		}
	}
	return false
}

// aliasFor is the label the brand gives an issued certificate in Tencent's
// console (its Alias): DescribeCertificates' SearchKey matches aliases,
// which lets Revoke, given only the x509 certificate, find its
// CertificateId without a search by domain.
func aliasFor(c *x509.Certificate) string { return "acmegw-" + c.SerialNumber.Text(16) }

// dcvRecords turns Tencent's DvAuthDetail into the records to publish, and
// lists the entries it cannot publish (file validation). DvAuths has one
// entry per name; the top-level fields alone describe a single name.
func dcvRecords(d *dvAuthDetail) (records []dcv.Record, skipped []string) {
	if d == nil {
		return nil, nil
	}
	auths := d.DvAuths
	if len(auths) == 0 && d.DvAuthKey != "" {
		auths = []dvAuth{{
			DvAuthKey:       d.DvAuthKey,
			DvAuthValue:     d.DvAuthValue,
			DvAuthDomain:    d.DvAuthDomain,
			DvAuthPath:      d.DvAuthPath,
			DvAuthSubDomain: d.DvAuthKeySubDomain,
		}}
	}
	for _, a := range auths {
		typ := strings.ToUpper(strings.TrimSpace(a.DvAuthVerifyType))
		if typ == "" {
			typ = "TXT"
			if a.DvAuthPath != "" {
				typ = "FILE"
			}
		}
		if typ != "TXT" && typ != "CNAME" {
			skipped = append(skipped, fmt.Sprintf("%s validation of %s at %s", typ, a.DvAuthDomain, a.DvAuthPath))
			continue
		}
		if a.DvAuthKey == "" || a.DvAuthValue == "" {
			skipped = append(skipped, fmt.Sprintf("%s entry for %s without a key or value", typ, a.DvAuthDomain))
			continue
		}
		name := recordName(a.DvAuthKey, a.DvAuthDomain)
		r := dcv.Record{Domain: validatedDomain(name, a.DvAuthDomain), Name: name, Type: typ, Value: a.DvAuthValue}
		dup := false
		for _, have := range records {
			dup = dup || have == r
		}
		if !dup {
			records = append(records, r)
		}
	}
	return records, skipped
}

// recordName is the fully qualified record name of a DvAuth entry. Tencent
// gives the key either as a host relative to DvAuthDomain, the way DNS
// consoles ask for it ("_dnsauth.www" under "example.com", or "_dnsauth"
// under "www.example.com"), or already qualified; both forms end up as
// "_dnsauth.www.example.com".
func recordName(key, domain string) string {
	key = strings.Trim(strings.ToLower(strings.TrimSpace(key)), ".")
	domain = strings.TrimPrefix(strings.Trim(strings.ToLower(strings.TrimSpace(domain)), "."), "*.")
	switch {
	case domain == "", key == domain, strings.HasSuffix(key, "."+domain):
		return key
	}
	return key + "." + domain
}

// validatedDomain is the name a record proves control of: the record name
// without its leading underscore label (_dnsauth), else Tencent's domain.
func validatedDomain(name, domain string) string {
	if first, rest, ok := strings.Cut(name, "."); ok && strings.HasPrefix(first, "_") {
		return rest
	}
	return strings.TrimPrefix(strings.ToLower(strings.Trim(domain, ".")), "*.")
}
