package validation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// ACMETLS1Protocol is the ALPN protocol name of tls-alpn-01 (RFC 8737 §6.2).
const ACMETLS1Protocol = "acme-tls/1"

// OIDACMEIdentifier is id-pe-acmeIdentifier (RFC 8737 §6.1), the critical
// extension whose value is an OCTET STRING holding SHA-256 of the key
// authorization.
var OIDACMEIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// GeneralName tags (RFC 5280 §4.2.1.6) used in the SAN comparison.
const (
	tagDNSName   = 2
	tagIPAddress = 7
)

func (v *Validator) validateTLSALPN01(ctx context.Context, ch Challenge) error {
	id, err := v.parseIdentifier(ch)
	if err != nil {
		return err
	}
	// RFC 8738 §6: IP identifiers are named in SNI by their reverse-DNS
	// name, since SNI cannot carry an IP address.
	sni := id.name
	if id.isIP() {
		sni = reverseName(id.ip)
	}
	addrs, err := v.addresses(ctx, id.String())
	if err != nil {
		return err
	}
	var conn *tls.Conn
	var addr netip.Addr
	for i, a := range addrs {
		addr = a
		var connected bool
		conn, connected, err = v.dialALPN(ctx, netip.AddrPortFrom(a, uint16(v.cfg.TLSALPNPort)), sni)
		if err == nil {
			break
		}
		if connected {
			return alpnHandshakeError(a, v.cfg.TLSALPNPort, err)
		}
		if ctx.Err() != nil || i == len(addrs)-1 {
			return &Error{Type: "connection", Detail: fmt.Sprintf("%s: Connecting to %s for tls-alpn-01 challenge: %s",
				a, net.JoinHostPort(a.String(), fmt.Sprint(v.cfg.TLSALPNPort)), describeNetErr(err, false))}
		}
	}
	defer conn.Close()

	cs := conn.ConnectionState()
	if cs.NegotiatedProtocol != ACMETLS1Protocol {
		return &Error{Type: "tls", Detail: fmt.Sprintf("%s: Cannot negotiate ALPN protocol %q for tls-alpn-01 challenge (server chose %q)",
			addr, ACMETLS1Protocol, cs.NegotiatedProtocol)}
	}
	if len(cs.PeerCertificates) == 0 {
		return &Error{Type: "unauthorized", Detail: fmt.Sprintf("%s: No certificate returned for tls-alpn-01 challenge", addr)}
	}
	if problem := checkALPNCert(cs.PeerCertificates[0], id, ch.KeyAuthorization); problem != "" {
		return &Error{Type: "unauthorized", Detail: fmt.Sprintf("%s: %s", addr, problem)}
	}
	return nil
}

// dialALPN connects to a checked address and completes the handshake; the
// boolean reports whether TCP connected, which decides both the error type
// and whether trying the next address family makes sense.
func (v *Validator) dialALPN(ctx context.Context, target netip.AddrPort, sni string) (*tls.Conn, bool, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", target.String())
	if err != nil {
		return nil, false, err
	}
	conn := tls.Client(raw, &tls.Config{
		ServerName: sni,
		NextProtos: []string{ACMETLS1Protocol},
		// The challenge certificate is self-signed by design; what it
		// proves is checked by checkALPNCert, not by a chain.
		InsecureSkipVerify: true, //nolint:gosec // see above
		MinVersion:         tls.VersionTLS12,
	})
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, true, err
	}
	return conn, true, nil
}

func alpnHandshakeError(addr netip.Addr, port int, err error) error {
	if isTimeout(err) {
		return &Error{Type: "connection", Detail: fmt.Sprintf("%s: TLS handshake for tls-alpn-01 challenge: %s", addr, describeNetErr(err, true))}
	}
	detail := fmt.Sprintf("%s: Error getting validation data: TLS handshake with port %d failed: %v", addr, port, innermost(err))
	if strings.Contains(err.Error(), "no application protocol") {
		detail += fmt.Sprintf(" (the server does not offer the %q ALPN protocol)", ACMETLS1Protocol)
	}
	return &Error{Type: "tls", Detail: detail}
}

// checkALPNCert applies RFC 8737 §3 to the leaf: its subjectAltName holds
// exactly the identifier and nothing else, and it carries a critical
// acmeIdentifier extension with the right digest. It returns the problem
// for the client, or "".
func checkALPNCert(leaf *x509.Certificate, id identifier, keyAuth string) string {
	if !sanIsExactly(leaf, id) {
		var names []string
		names = append(names, leaf.DNSNames...)
		for _, ip := range leaf.IPAddresses {
			names = append(names, ip.String())
		}
		return fmt.Sprintf("Incorrect validation certificate for tls-alpn-01 challenge. Requested %s. Received certificate containing: %s",
			id, strings.Join(names, ", "))
	}
	for _, ext := range leaf.Extensions {
		if !ext.Id.Equal(OIDACMEIdentifier) {
			continue
		}
		if !ext.Critical {
			return fmt.Sprintf("Incorrect validation certificate for tls-alpn-01 challenge. The acmeIdentifier extension (%s) is not critical", OIDACMEIdentifier)
		}
		var digest []byte
		rest, err := asn1.Unmarshal(ext.Value, &digest)
		if err != nil || len(rest) != 0 || len(digest) != sha256.Size {
			return "Incorrect validation certificate for tls-alpn-01 challenge. Malformed acmeIdentifier extension value"
		}
		want := sha256.Sum256([]byte(keyAuth))
		if subtle.ConstantTimeCompare(digest, want[:]) != 1 {
			return "Incorrect validation certificate for tls-alpn-01 challenge. Invalid acmeIdentifier extension value (key authorization digest mismatch)"
		}
		return ""
	}
	return fmt.Sprintf("Incorrect validation certificate for tls-alpn-01 challenge. Required extension OID %s is not present", OIDACMEIdentifier)
}

// sanIsExactly reads the raw SAN extension rather than x509's parsed fields,
// because those silently drop name types they do not model (otherName,
// directoryName...), and RFC 8737 requires that no other entries exist.
func sanIsExactly(leaf *x509.Certificate, id identifier) bool {
	for _, ext := range leaf.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		var names []asn1.RawValue
		rest, err := asn1.Unmarshal(ext.Value, &names)
		if err != nil || len(rest) != 0 || len(names) != 1 {
			return false
		}
		n := names[0]
		if n.Class != asn1.ClassContextSpecific || n.IsCompound {
			return false
		}
		if id.isIP() {
			want := id.ip.AsSlice()
			return n.Tag == tagIPAddress && bytes.Equal(n.Bytes, want)
		}
		return n.Tag == tagDNSName && strings.EqualFold(string(n.Bytes), id.name)
	}
	return false
}

// reverseName is the in-addr.arpa or ip6.arpa name of ip, without the
// trailing dot that SNI does not allow.
func reverseName(ip netip.Addr) string {
	name, err := dns.ReverseAddr(ip.String())
	if err != nil {
		// ip came from netip, so this cannot happen; an empty SNI would
		// still fail the check safely.
		return ""
	}
	return strings.TrimSuffix(name, ".")
}
