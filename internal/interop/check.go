package interop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/mholt/acmez/v3/acme"
)

// Checks of a flow's outcome that do not trust the client's word: the
// certificate chains to the server's root and names exactly what was
// asked, and the server's view of accounts and replaced certificates
// (asked with the client's own account key, through acmez's low-level
// client).

// parseChain parses every CERTIFICATE block of a PEM bundle.
func parseChain(c *Cell, pemBytes []byte, what string) []*x509.Certificate {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, pemBytes = pem.Decode(pemBytes)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		c.Must(err, "parsing "+what)
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		c.Fatalf("%s holds no certificate", what)
	}
	return certs
}

// readChain parses the certificates in PEM files: the first file's first
// certificate is the leaf, everything else intermediates.
func readChain(c *Cell, paths ...string) []*x509.Certificate {
	var all []*x509.Certificate
	for _, p := range paths {
		b, err := os.ReadFile(p)
		c.Must(err, "reading certificate")
		all = append(all, parseChain(c, b, p)...)
	}
	return all
}

// derChain parses a DER chain.
func derChain(c *Cell, ders [][]byte) []*x509.Certificate {
	var certs []*x509.Certificate
	for _, d := range ders {
		cert, err := x509.ParseCertificate(d)
		c.Must(err, "parsing certificate")
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		c.Fatalf("no certificate")
	}
	return certs
}

// CheckChain verifies chain[0] for every name (wildcards through a name
// below them) to one of roots with chain[1:] as intermediates, checks that
// it names exactly names, and returns the leaf.
func CheckChain(c *Cell, roots []*x509.Certificate, chain []*x509.Certificate, names ...string) *x509.Certificate {
	leaf := chain[0]
	if leaf.IsCA {
		c.Fatalf("the chain starts with a CA certificate (%s)", leaf.Subject)
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	inter := x509.NewCertPool()
	for _, cert := range chain[1:] {
		inter.AddCert(cert)
	}
	var got []string
	got = append(got, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		got = append(got, ip.String())
	}
	want := slices.Clone(names)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		c.Fatalf("certificate (serial %x) names %q, want %q", leaf.SerialNumber, got, want)
	}
	for _, name := range names {
		host := name
		if rest, ok := strings.CutPrefix(name, "*."); ok {
			host = "any." + rest
		}
		if _, err := leaf.Verify(x509.VerifyOptions{
			DNSName:       host,
			Roots:         pool,
			Intermediates: inter,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			c.Fatalf("certificate (serial %x) for %q does not verify to the server's root: %v", leaf.SerialNumber, host, err)
		}
	}
	return leaf
}

// CheckIssued verifies a chain against every root of the server.
func CheckIssued(c *Cell, s *Server, chain []*x509.Certificate, names ...string) *x509.Certificate {
	return CheckChain(c, s.Roots, chain, names...)
}

// CheckAlternate verifies that chain leads to the server's alternate root
// (and only there).
func CheckAlternate(c *Cell, s *Server, chain []*x509.Certificate, names ...string) *x509.Certificate {
	alt := s.AlternateRoot(c)
	top := chain[len(chain)-1]
	if top.Issuer.CommonName != alt.Subject.CommonName {
		c.Fatalf("the chain's last certificate (%s) is issued by %q, want the alternate root %q",
			top.Subject.CommonName, top.Issuer.CommonName, alt.Subject.CommonName)
	}
	return CheckChain(c, []*x509.Certificate{alt}, chain, names...)
}

// parseKey reads an account or certificate key: PEM (PKCS#1, SEC 1,
// PKCS#8) or a JWK (certbot's private_key.json).
func parseKey(b []byte) (crypto.Signer, error) {
	if block, _ := pem.Decode(b); block != nil {
		if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
			return k, nil
		}
		if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
			return k, nil
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM %s: %w", block.Type, err)
		}
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, fmt.Errorf("PEM %s: %T is not a signer", block.Type, k)
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(b, &jwk); err != nil {
		return nil, fmt.Errorf("neither PEM nor JWK: %w", err)
	}
	switch k := jwk.Key.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return k.(crypto.Signer), nil
	}
	return nil, fmt.Errorf("JWK holds %T, not a private key", jwk.Key)
}

// readKey reads a key file.
func readKey(c *Cell, path string) crypto.Signer {
	b, err := os.ReadFile(path)
	c.Must(err, "reading key")
	k, err := parseKey(b)
	c.Must(err, "parsing key "+path)
	return k
}

// probeClient is acmez's low-level client for s.
func probeClient(c *Cell, s *Server) *acme.Client {
	return &acme.Client{Directory: s.DirURL, HTTPClient: s.HTTPClient(c)}
}

// lookupAccount asks the server for the account of key (newAccount with
// onlyReturnExisting).
func lookupAccount(c *Cell, s *Server, key crypto.Signer) (acme.Account, error) {
	return probeClient(c, s).GetAccount(c.Context(), acme.Account{PrivateKey: key})
}

// problemType is the ACME error type in err ("accountDoesNotExist"), or "".
func problemType(err error) string {
	var p acme.Problem
	if errors.As(err, &p) {
		return strings.TrimPrefix(p.Type, "urn:ietf:params:acme:error:")
	}
	return ""
}

// CheckAccount checks that key belongs to a valid account on the server
// and returns its URL.
func CheckAccount(c *Cell, s *Server, key crypto.Signer) string {
	acct, err := lookupAccount(c, s, key)
	if err != nil {
		c.Fatalf("the server does not know the account key: %v", err)
	}
	if acct.Status != acme.StatusValid || acct.Location == "" {
		c.Fatalf("account %q has status %q, want valid", acct.Location, acct.Status)
	}
	return acct.Location
}

// CheckDeactivated checks that the server refuses key as a deactivated account.
func CheckDeactivated(c *Cell, s *Server, key crypto.Signer) {
	acct, err := lookupAccount(c, s, key)
	if err == nil {
		c.Fatalf("the server still knows the account (%s, status %q) after deactivation", acct.Location, acct.Status)
	}
	if problemType(err) != "unauthorized" {
		c.Fatalf("looking up the deactivated account: %v, want an unauthorized problem", err)
	}
}

// CheckRolledOver checks that the account answers to newKey at url and no
// longer to oldKey.
func CheckRolledOver(c *Cell, s *Server, oldKey, newKey crypto.Signer, url string) {
	if _, err := lookupAccount(c, s, oldKey); problemType(err) != "accountDoesNotExist" {
		c.Fatalf("looking up the old key after rollover: %v, want accountDoesNotExist", err)
	}
	if got := CheckAccount(c, s, newKey); url != "" && got != url {
		c.Fatalf("the new key belongs to %s, want the rolled-over account %s", got, url)
	}
}

// CheckReplaced checks that old has been replaced through ARI by the
// account of key: a newOrder naming it in "replaces" gets alreadyReplaced.
func CheckReplaced(c *Cell, s *Server, key crypto.Signer, old *x509.Certificate) {
	acct, err := lookupAccount(c, s, key)
	c.Must(err, "looking up the account")
	certID, err := acme.ARIUniqueIdentifier(old)
	c.Must(err, "ARI certificate id")
	var ids []acme.Identifier
	for _, n := range old.DNSNames {
		ids = append(ids, acme.Identifier{Type: "dns", Value: n})
	}
	for _, ip := range old.IPAddresses {
		ids = append(ids, acme.Identifier{Type: "ip", Value: ip.String()})
	}
	order, err := probeClient(c, s).NewOrder(c.Context(), acct, acme.Order{Identifiers: ids, Replaces: certID})
	if err == nil {
		c.Fatalf("a second order replacing serial %x was accepted (%s): the client's renewal did not send replaces", old.SerialNumber, order.Location)
	}
	if problemType(err) != "alreadyReplaced" {
		c.Fatalf("a second order replacing serial %x: %v, want alreadyReplaced", old.SerialNumber, err)
	}
}

// decodeB64URL decodes base64url with or without padding.
func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// isIP reports whether name is an IP address.
func isIP(name string) bool { return net.ParseIP(name) != nil }
