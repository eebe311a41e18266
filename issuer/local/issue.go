package local

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/acmegw/acmegw/issuer"
)

// maxCNLength is the upper bound of the X.520 commonName attribute; a longer
// first name is still in the SANs, just not in the subject.
const maxCNLength = 64

// Submit signs the public key of req.CSR into a leaf certificate for
// req.DNSNames and req.IPs, which the gateway has already validated. The
// local CA answers at once: the Result always carries a chain (leaf and
// intermediate, not the root) and never a ticket.
//
// SANs appear exactly in the order and case given. The subject common name is
// the first DNS name if it fits in 64 characters, else empty. NotBefore is
// req.NotBefore if set (to the second, as certificates encode it), else now;
// NotAfter is req.NotAfter if set, else NotBefore plus req.Validity (default
// 90 days). The serial is 128 random bits; its lower-case hex form,
// Leaf.SerialNumber.Text(16), is always 32 characters.
//
// The CSR's signature is not checked again: the caller has (see
// issuer.Request), and an ECDSA verification is a good part of the cost of
// a local issuance.
//
// A request it will never sign (no CSR, bad key, names, dates) is refused
// with a Permanent *issuer.Error; a canceled ctx is an ordinary error.
func (ca *CA) Submit(ctx context.Context, req issuer.Request) (issuer.Result, error) {
	if err := ctx.Err(); err != nil {
		return issuer.Result{}, fmt.Errorf("local ca: order %s: %w", req.OrderID, err)
	}
	if req.CSR == nil {
		return issuer.Result{}, refuse("badCSR", req.OrderID, errors.New("no CSR"))
	}
	isRSA, err := checkLeafKey(req.CSR.PublicKey)
	if err != nil {
		return issuer.Result{}, refuse("badCSR", req.OrderID, err)
	}
	ips, err := parseIPs(req.IPs)
	if err != nil {
		return issuer.Result{}, refuse("rejectedIdentifier", req.OrderID, err)
	}
	notBefore, notAfter, err := ca.validity(req)
	if err != nil {
		return issuer.Result{}, refuse("malformed", req.OrderID, err)
	}
	if n := len(req.DNSNames) + len(ips); n == 0 || n > maxNames {
		return issuer.Result{}, refuse("rejectedIdentifier", req.OrderID, fmt.Errorf("%d names; want 1 to %d", n, maxNames))
	}
	der, leaf, err := ca.sign(req.CSR.PublicKey, isRSA, req.DNSNames, ips, notBefore, notAfter)
	if err != nil {
		// Signing the same request again fails the same way.
		return issuer.Result{}, refuse("serverInternal", req.OrderID, err)
	}
	leafPEM := encodeCert(der)
	res := issuer.Result{Chain: chain(leafPEM, ca.interPEM), Leaf: leaf}
	if ca.altInterPEM != nil {
		res.Alternates = [][]byte{chain(leafPEM, ca.altInterPEM)}
	}
	return res, nil
}

// refuse is a request the local CA will never sign as asked: a Permanent
// issuer.Error, so the issuance job fails the order instead of retrying.
func refuse(typ, orderID string, err error) error {
	return &issuer.Error{Type: typ, Detail: fmt.Sprintf("local ca: order %s: %v", orderID, err), Permanent: true}
}

// Poll always fails: the local CA issues synchronously and never hands out
// tickets, so a ticket reaching it is a bug in the caller.
func (ca *CA) Poll(ctx context.Context, ticket string) (issuer.Result, error) {
	return issuer.Result{}, fmt.Errorf("local ca: poll %q: the local CA never issues tickets", ticket)
}

// Revoke accepts every revocation and records nothing: the gateway keeps
// revocation state in its store, and the local CA publishes no CRL or OCSP
// of its own.
func (ca *CA) Revoke(ctx context.Context, cert *x509.Certificate, reason int) error {
	return nil
}

// Describe reports what the local CA signs: wildcards and IP addresses, up to
// 100 names, any lifetime up to Options.MaxValidity (0: no cap).
func (ca *CA) Describe() issuer.Product {
	return issuer.Product{
		Wildcard:      true,
		IP:            true,
		MaxNames:      maxNames,
		MaxValidity:   ca.opts.MaxValidity,
		CAAIdentities: append([]string(nil), ca.opts.CAAIdentities...),
	}
}

// ServerCertificate issues a TLS certificate for the gateway's own listener,
// with a fresh key on every call (P-256, or RSA-2048 when Options.KeyType is
// "rsa"). hosts are DNS names or IP addresses; empty means localhost,
// 127.0.0.1 and ::1. validity zero or less means 90 days; the lifetime is cut
// short rather than outlive the intermediate. The chain is leaf and
// intermediate.
func (ca *CA) ServerCertificate(hosts []string, validity time.Duration) (tls.Certificate, error) {
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	if validity <= 0 {
		validity = defaultValidity
	}
	var (
		dnsNames []string
		ips      []net.IP
	)
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dnsNames = append(dnsNames, h)
		}
	}
	var (
		key   crypto.Signer
		err   error
		isRSA = ca.opts.KeyType == "rsa"
	)
	if isRSA {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("local ca: server certificate key: %w", err)
	}
	// Backdated a minute: this certificate is ours, no client asked for exact
	// dates, and a peer's clock a little behind should not reject it.
	notBefore := time.Now().Add(-time.Minute).Truncate(time.Second)
	notAfter := notBefore.Add(validity)
	if notAfter.After(ca.inter.NotAfter) {
		notAfter = ca.inter.NotAfter
	}
	der, leaf, err := ca.sign(key.Public(), isRSA, dnsNames, ips, notBefore, notAfter)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("local ca: server certificate: %w", err)
	}
	return tls.Certificate{
		Certificate: [][]byte{der, ca.inter.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}

// sign creates a TLS server leaf signed by the intermediate.
func (ca *CA) sign(pub crypto.PublicKey, isRSA bool, dnsNames []string, ips []net.IP, notBefore, notAfter time.Time) ([]byte, *x509.Certificate, error) {
	n := len(dnsNames) + len(ips)
	if n == 0 {
		return nil, nil, errors.New("no names to certify")
	}
	if n > maxNames {
		return nil, nil, fmt.Errorf("%d names, more than the %d allowed", n, maxNames)
	}
	var cn string
	if len(dnsNames) > 0 && len(dnsNames[0]) <= maxCNLength {
		cn = dnsNames[0]
	}
	usage := x509.KeyUsageDigitalSignature
	if isRSA {
		// RSA key exchange (TLS 1.2 and older) encrypts to the leaf key.
		usage |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(),
		// An empty subject makes Go mark the SAN extension critical, as
		// RFC 5280 section 4.2.1.6 requires.
		Subject:   pkix.Name{CommonName: cn},
		NotBefore: notBefore,
		NotAfter:  notAfter,
		KeyUsage:  usage,
		// serverAuth only, like Let's Encrypt since 2025: these are server
		// certificates, and client authentication is a separate trust decision.
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dnsNames,
		IPAddresses:           ips,
		// AuthorityKeyId is copied by Go from the intermediate's SubjectKeyId.
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.inter, pub, ca.interKey)
	if err != nil {
		return nil, nil, fmt.Errorf("sign leaf: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse leaf: %w", err)
	}
	return der, leaf, nil
}

// validity works out a request's NotBefore and NotAfter.
func (ca *CA) validity(req issuer.Request) (notBefore, notAfter time.Time, err error) {
	// Certificates carry whole seconds; truncating here makes Leaf report
	// the same instants as the encoded certificate.
	notBefore = req.NotBefore.Truncate(time.Second)
	if req.NotBefore.IsZero() {
		notBefore = time.Now().Truncate(time.Second)
	}
	notAfter = req.NotAfter.Truncate(time.Second)
	if req.NotAfter.IsZero() {
		v := req.Validity
		if v < 0 {
			return time.Time{}, time.Time{}, fmt.Errorf("negative validity %v", v)
		}
		if v == 0 {
			v = defaultValidity
		}
		notAfter = notBefore.Add(v)
	}
	if !notAfter.After(notBefore) {
		return time.Time{}, time.Time{}, fmt.Errorf("notAfter %s is not after notBefore %s",
			notAfter.Format(time.RFC3339), notBefore.Format(time.RFC3339))
	}
	if limit := ca.opts.MaxValidity; limit > 0 && notAfter.Sub(notBefore) > limit {
		return time.Time{}, time.Time{}, fmt.Errorf("validity %v exceeds the maximum %v", notAfter.Sub(notBefore), limit)
	}
	// A leaf outliving its issuer would fail to verify before its own end,
	// so refuse rather than silently shorten dates the client asked for.
	if notAfter.After(ca.inter.NotAfter) {
		return time.Time{}, time.Time{}, fmt.Errorf("notAfter %s is after the intermediate's %s",
			notAfter.Format(time.RFC3339), ca.inter.NotAfter.Format(time.RFC3339))
	}
	return notBefore, notAfter, nil
}

// checkLeafKey accepts RSA keys of 2048 to 8192 bits (the upper bound keeps
// a CSR from costing us a huge verification) and ECDSA P-256 and P-384 keys,
// the set public TLS CAs sign. It reports whether the key is RSA.
func checkLeafKey(pub crypto.PublicKey) (isRSA bool, err error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < 2048 || bits > 8192 {
			return true, fmt.Errorf("RSA key of %d bits; want 2048 to 8192", bits)
		}
		return true, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return false, fmt.Errorf("ECDSA key on curve %s; want P-256 or P-384", k.Curve.Params().Name)
		}
		return false, nil
	default:
		return false, fmt.Errorf("unsupported key type %T; want RSA or ECDSA", pub)
	}
}

// parseIPs converts the order's IP identifiers. A certificate stores IPs as
// bytes, so their textual form ("::ffff:1.2.3.4", leading zeros) cannot be
// kept; IPv4 is encoded in 4 bytes.
func parseIPs(ss []string) ([]net.IP, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	ips := make([]net.IP, len(ss))
	for i, s := range ss {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("invalid IP identifier %q", s)
		}
		ips[i] = ip
	}
	return ips, nil
}

// chain concatenates PEM certificates into one new slice.
func chain(pems ...[]byte) []byte {
	n := 0
	for _, p := range pems {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range pems {
		out = append(out, p...)
	}
	return out
}
