package validationtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"time"
)

// oidACMEIdentifier is id-pe-acmeIdentifier (RFC 8737 §6.1); it is repeated
// here rather than imported so that package validation's own tests can use
// this package without an import cycle.
var oidACMEIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}

// ALPNCert builds a self-signed tls-alpn-01 challenge certificate (RFC 8737
// §3, RFC 8738 §6) for identifierType "dns" or "ip": its only
// subjectAltName is the identifier, and it carries the critical
// acmeIdentifier extension with SHA-256 of keyAuth. Serve it to clients that
// offer the "acme-tls/1" ALPN protocol.
func ALPNCert(identifierType, identifier, keyAuth string) (tls.Certificate, error) {
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "acme-tls/1 challenge"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	switch identifierType {
	case "dns":
		tmpl.DNSNames = []string{identifier}
	case "ip":
		ip, err := netip.ParseAddr(identifier)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("validationtest: ALPNCert: %w", err)
		}
		tmpl.IPAddresses = []net.IP{net.IP(ip.Unmap().AsSlice())}
	default:
		return tls.Certificate{}, fmt.Errorf("validationtest: ALPNCert: unsupported identifier type %q", identifierType)
	}
	digest := sha256.Sum256([]byte(keyAuth))
	value, err := asn1.Marshal(digest[:])
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("validationtest: ALPNCert: encoding digest: %w", err)
	}
	tmpl.ExtraExtensions = []pkix.Extension{{Id: oidACMEIdentifier, Critical: true, Value: value}}

	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("validationtest: ALPNCert: serial: %w", err)
	}
	tmpl.SerialNumber = serial
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("validationtest: ALPNCert: key: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("validationtest: ALPNCert: signing: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("validationtest: ALPNCert: parsing: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
