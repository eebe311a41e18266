package aliyun

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/acmegw/acmegw/issuer"
)

// minRSABits is Alibaba's floor for RSA keys in a CSR.
const minRSABits = 2048

// Submit applies for a certificate for req.CSR: it checks the product's rules
// first, so an order Alibaba would refuse (or that would silently cost
// quota) fails at once with a clear reason and no API call, then calls
// CreateCertificateForPackageRequest. The answer is always a ticket: Alibaba
// validates the domains and the CA signs later, see Poll.
//
// Refused before any call, as a Permanent *issuer.Error:
//
//   - rejectedIdentifier: IP identifiers; no name; more names than the
//     product takes (5, or 1 for a free product); wildcard and plain names
//     mixed; a wildcard on a plain product or a plain name on a wildcard
//     product; a malformed wildcard;
//   - badCSR: no CSR or a bad signature; a key other than RSA of at least
//     2048 bits or ECDSA P-256/P-384; a CN that is not the first name (CAS
//     binds the certificate to the CSR's CN).
//
// Alibaba picks the validity; req.NotBefore, NotAfter and Validity are not
// sent (Describe tells the gateway the most it can get).
func (is *Issuer) Submit(ctx context.Context, req issuer.Request) (issuer.Result, error) {
	if err := ctx.Err(); err != nil {
		return issuer.Result{}, fmt.Errorf("aliyun: order %s: %w", req.OrderID, err)
	}
	if err := is.checkNames(req); err != nil {
		return issuer.Result{}, refuse("rejectedIdentifier", req.OrderID, err)
	}
	if err := checkCSR(req); err != nil {
		return issuer.Result{}, refuse("badCSR", req.OrderID, err)
	}
	csrPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: req.CSR.Raw}))
	params := []param{
		{"ProductCode", is.cfg.ProductCode},
		{"Csr", csrPEM},
		// Domain names every name of a multi-name certificate; with a CSR
		// Alibaba takes the CN as the main name, which checkCSR made the
		// first one.
		{"Domain", strings.Join(req.DNSNames, ",")},
		{"ValidateType", is.cfg.ValidateType},
	}
	for _, p := range []param{
		{"Username", is.cfg.Username},
		{"Phone", is.cfg.Phone},
		{"Email", is.cfg.Email},
		{"CompanyName", is.cfg.CompanyName},
	} {
		if p.value != "" {
			params = append(params, p)
		}
	}
	var out createResponse
	if err := is.call(ctx, "CreateCertificateForPackageRequest", params, &out); err != nil {
		return issuer.Result{}, fmt.Errorf("order %s: %w", req.OrderID, err)
	}
	if out.OrderID <= 0 {
		// Nothing to poll. Retrying may buy a second certificate, but the
		// alternative is an order that can never finish.
		return issuer.Result{}, fmt.Errorf("aliyun: order %s: CreateCertificateForPackageRequest answered without an OrderId [RequestId %s]", req.OrderID, out.RequestID)
	}
	t := ticket{
		OrderID: out.OrderID,
		Product: is.cfg.ProductCode,
		Names:   append([]string(nil), req.DNSNames...),
		KeyHash: keyHash(req.CSR.RawSubjectPublicKeyInfo),
	}
	return issuer.Result{Ticket: t.encode(), RetryAfter: firstPoll}, nil
}

// refuse is a request the product will never accept as asked.
func refuse(typ, orderID string, err error) error {
	return &issuer.Error{Type: typ, Permanent: true,
		Detail: fmt.Sprintf("aliyun: order %s: %v", orderID, err)}
}

// checkNames applies the product's rules on names.
func (is *Issuer) checkNames(req issuer.Request) error {
	if len(req.IPs) > 0 {
		return fmt.Errorf("Alibaba Cloud CAS does not issue for IP addresses (%s)", strings.Join(req.IPs, ", "))
	}
	names := req.DNSNames
	if len(names) == 0 {
		return errors.New("no DNS names")
	}
	if limit := is.maxNames(); len(names) > limit {
		return fmt.Errorf("%d names; product %s takes at most %d per certificate", len(names), is.cfg.ProductCode, limit)
	}
	var wild, plain []string
	for _, n := range names {
		if strings.Contains(n, "*") {
			if !strings.HasPrefix(n, "*.") || strings.Contains(n[2:], "*") {
				return fmt.Errorf("%q: a wildcard must be one \"*\" as the whole leftmost label", n)
			}
			wild = append(wild, n)
		} else {
			plain = append(plain, n)
		}
	}
	switch {
	case len(wild) > 0 && len(plain) > 0:
		return fmt.Errorf("wildcard names (%s) and plain names (%s) cannot share one Alibaba certificate; order them separately",
			strings.Join(wild, ", "), strings.Join(plain, ", "))
	case len(wild) > 0 && !is.wildcard():
		return fmt.Errorf("product %s is not a wildcard product (%s); use a \"-w-\" product", is.cfg.ProductCode, strings.Join(wild, ", "))
	case len(plain) > 0 && is.wildcard():
		return fmt.Errorf("product %s is a wildcard product and takes only wildcard names (%s)", is.cfg.ProductCode, strings.Join(plain, ", "))
	}
	return nil
}

// checkCSR applies the product's rules on the CSR.
func checkCSR(req issuer.Request) error {
	csr := req.CSR
	if csr == nil {
		return errors.New("no CSR")
	}
	// Alibaba forwards the CSR to the CA, which refuses a bad signature
	// days later for OV; say it now.
	if err := csr.CheckSignature(); err != nil {
		return fmt.Errorf("CSR signature: %w", err)
	}
	switch k := csr.PublicKey.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return fmt.Errorf("RSA-%d key; Alibaba Cloud CAS takes RSA keys of at least %d bits, or ECDSA P-256/P-384", bits, minRSABits)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("ECDSA key on %s; the CAs behind Alibaba Cloud CAS take P-256 and P-384", k.Curve.Params().Name)
		}
	default:
		return fmt.Errorf("%T key; Alibaba Cloud CAS takes RSA (2048 bits or more) or ECDSA keys", csr.PublicKey)
	}
	cn := strings.TrimSuffix(csr.Subject.CommonName, ".")
	if cn == "" {
		return fmt.Errorf("the CSR has no common name; Alibaba Cloud CAS binds the certificate to the CN, which must be the first name, %q", req.DNSNames[0])
	}
	if !strings.EqualFold(cn, req.DNSNames[0]) {
		return fmt.Errorf("the CSR's common name %q is not the first name %q; Alibaba Cloud CAS binds the certificate to the CN", cn, req.DNSNames[0])
	}
	return nil
}

// keyHash identifies a public key in tickets.
func keyHash(spki []byte) string {
	sum := sha256.Sum256(spki)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// matchesKey reports whether cert is for the key hashed in the ticket.
func (t ticket) matchesKey(cert *x509.Certificate) bool {
	return t.KeyHash == "" || keyHash(cert.RawSubjectPublicKeyInfo) == t.KeyHash
}
