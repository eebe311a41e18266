package validation

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/acmegw/acmegw/validation/validationtest"
)

func tlsALPN01(idType, id string) Challenge {
	return Challenge{Type: "tls-alpn-01", IdentifierType: idType, Identifier: id, Token: testToken, KeyAuthorization: testKeyAuth}
}

// alpnServer is a real TLS listener that completes handshakes with the
// configured certificate and records the SNI each client sent.
type alpnServer struct {
	port int
	mu   sync.Mutex
	snis []string
}

func (s *alpnServer) lastSNI() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.snis) == 0 {
		return ""
	}
	return s.snis[len(s.snis)-1]
}

func newALPNServer(t *testing.T, network, addr string, cert tls.Certificate, protos []string) *alpnServer {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	s := &alpnServer{port: l.Addr().(*net.TCPAddr).Port}
	cfg := &tls.Config{
		NextProtos: protos,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			s.mu.Lock()
			s.snis = append(s.snis, hello.ServerName)
			s.mu.Unlock()
			return &cert, nil
		},
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := tls.Server(c, cfg)
				_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
				if tc.Handshake() == nil {
					// Wait for the client to hang up, as a real server would.
					_, _ = tc.Read(make([]byte, 1))
				}
			}()
		}
	}()
	return s
}

func mustALPNCert(t *testing.T, idType, id, keyAuth string) tls.Certificate {
	t.Helper()
	c, err := validationtest.ALPNCert(idType, id, keyAuth)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTLSALPN01(t *testing.T) {
	dnsSrv := validationtest.NewDNSServer(t)
	dnsSrv.AddA("alpn.example.test", "127.0.0.1")
	dnsSrv.AddAAAA("dual.example.test", "::1")
	dnsSrv.AddA("dual.example.test", "127.0.0.1")

	t.Run("dns identifier", func(t *testing.T) {
		srv := newALPNServer(t, "tcp", "127.0.0.1:0", mustALPNCert(t, "dns", "alpn.example.test", testKeyAuth), []string{ACMETLS1Protocol})
		v := newTestValidator(t, dnsSrv, func(c *Config) { c.TLSALPNPort = srv.port })
		if err := v.Validate(t.Context(), tlsALPN01("dns", "ALPN.example.test")); err != nil {
			t.Fatal(err)
		}
		if got := srv.lastSNI(); got != "alpn.example.test" {
			t.Errorf("SNI = %q", got)
		}
	})
	t.Run("falls back to IPv4", func(t *testing.T) {
		srv := newALPNServer(t, "tcp", "127.0.0.1:0", mustALPNCert(t, "dns", "dual.example.test", testKeyAuth), []string{ACMETLS1Protocol})
		v := newTestValidator(t, dnsSrv, func(c *Config) { c.TLSALPNPort = srv.port })
		if err := v.Validate(t.Context(), tlsALPN01("dns", "dual.example.test")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ipv4 identifier", func(t *testing.T) {
		srv := newALPNServer(t, "tcp", "127.0.0.1:0", mustALPNCert(t, "ip", "127.0.0.1", testKeyAuth), []string{ACMETLS1Protocol})
		v := newTestValidator(t, nil, func(c *Config) { c.TLSALPNPort = srv.port })
		if err := v.Validate(t.Context(), tlsALPN01("ip", "127.0.0.1")); err != nil {
			t.Fatal(err)
		}
		if got := srv.lastSNI(); got != "1.0.0.127.in-addr.arpa" {
			t.Errorf("SNI = %q, want the reverse-DNS name (RFC 8738)", got)
		}
	})
	t.Run("ipv6 identifier", func(t *testing.T) {
		srv := newALPNServer(t, "tcp6", "[::1]:0", mustALPNCert(t, "ip", "::1", testKeyAuth), []string{ACMETLS1Protocol})
		v := newTestValidator(t, nil, func(c *Config) { c.TLSALPNPort = srv.port })
		if err := v.Validate(t.Context(), tlsALPN01("ip", "::1")); err != nil {
			t.Fatal(err)
		}
		want := "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"
		if got := srv.lastSNI(); got != want {
			t.Errorf("SNI = %q, want %q", got, want)
		}
	})
}

func TestTLSALPN01Failures(t *testing.T) {
	dnsSrv := validationtest.NewDNSServer(t)
	dnsSrv.AddA("alpn.example.test", "127.0.0.1")
	const id = "alpn.example.test"
	tests := []struct {
		name   string
		cert   tls.Certificate
		protos []string
		typ    string
		detail []string
	}{
		{"wrong digest", mustALPNCert(t, "dns", id, "other.keyauth"), []string{ACMETLS1Protocol},
			"unauthorized", []string{"127.0.0.1: Incorrect validation certificate", "Invalid acmeIdentifier extension value"}},
		{"certificate for another name", mustALPNCert(t, "dns", "other.example.test", testKeyAuth), []string{ACMETLS1Protocol},
			"unauthorized", []string{"Requested alpn.example.test", "Received certificate containing: other.example.test"}},
		{"certificate for an IP", mustALPNCert(t, "ip", "127.0.0.1", testKeyAuth), []string{ACMETLS1Protocol},
			"unauthorized", []string{"Received certificate containing: 127.0.0.1"}},
		{"extra name", customALPNCert(t, []string{id, "extra.example.test"}, nil, true, sha(testKeyAuth)), []string{ACMETLS1Protocol},
			"unauthorized", []string{"Received certificate containing: alpn.example.test, extra.example.test"}},
		{"extension not critical", customALPNCert(t, []string{id}, nil, false, sha(testKeyAuth)), []string{ACMETLS1Protocol},
			"unauthorized", []string{"not critical"}},
		{"extension missing", customALPNCert(t, []string{id}, nil, true, nil), []string{ACMETLS1Protocol},
			"unauthorized", []string{"Required extension OID 1.3.6.1.5.5.7.1.31 is not present"}},
		{"extension not an OCTET STRING", customALPNCert(t, []string{id}, nil, true, []byte("raw-bytes-not-der")), []string{ACMETLS1Protocol},
			"unauthorized", []string{"Malformed acmeIdentifier extension value"}},
		{"no ALPN support", mustALPNCert(t, "dns", id, testKeyAuth), nil,
			"tls", []string{`Cannot negotiate ALPN protocol "acme-tls/1"`}},
		{"only other protocols", mustALPNCert(t, "dns", id, testKeyAuth), []string{"h2", "http/1.1"},
			"tls", []string{"TLS handshake", "acme-tls/1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newALPNServer(t, "tcp", "127.0.0.1:0", tt.cert, tt.protos)
			v := newTestValidator(t, dnsSrv, func(c *Config) { c.TLSALPNPort = srv.port })
			wantError(t, v.Validate(t.Context(), tlsALPN01("dns", id)), tt.typ, tt.detail...)
		})
	}

	t.Run("ip identifier with a dNSName certificate", func(t *testing.T) {
		srv := newALPNServer(t, "tcp", "127.0.0.1:0", mustALPNCert(t, "dns", "1.0.0.127.in-addr.arpa", testKeyAuth), []string{ACMETLS1Protocol})
		v := newTestValidator(t, nil, func(c *Config) { c.TLSALPNPort = srv.port })
		wantError(t, v.Validate(t.Context(), tlsALPN01("ip", "127.0.0.1")), "unauthorized", "Requested 127.0.0.1")
	})
	t.Run("not TLS", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
				c.Close()
			}
		}()
		v := newTestValidator(t, dnsSrv, func(c *Config) { c.TLSALPNPort = l.Addr().(*net.TCPAddr).Port })
		wantError(t, v.Validate(t.Context(), tlsALPN01("dns", id)), "tls", "TLS handshake")
	})
	t.Run("connection refused", func(t *testing.T) {
		v := newTestValidator(t, dnsSrv, func(c *Config) { c.TLSALPNPort = freePort(t) })
		wantError(t, v.Validate(t.Context(), tlsALPN01("dns", id)), "connection", "Connection refused")
	})
	t.Run("nxdomain", func(t *testing.T) {
		v := newTestValidator(t, dnsSrv, nil)
		wantError(t, v.Validate(t.Context(), tlsALPN01("dns", "missing.example.test")), "dns", "NXDOMAIN")
	})
	t.Run("loopback refused by default", func(t *testing.T) {
		srv := newALPNServer(t, "tcp", "127.0.0.1:0", mustALPNCert(t, "ip", "127.0.0.1", testKeyAuth), []string{ACMETLS1Protocol})
		v := newTestValidator(t, dnsSrv, func(c *Config) {
			c.AllowPrivate = false
			c.TLSALPNPort = srv.port
		})
		wantError(t, v.Validate(t.Context(), tlsALPN01("ip", "127.0.0.1")), "rejectedIdentifier", "127.0.0.1 is a loopback address")
		wantError(t, v.Validate(t.Context(), tlsALPN01("ip", "::1")), "rejectedIdentifier", "::1 is a loopback address")
		wantError(t, v.Validate(t.Context(), tlsALPN01("dns", id)), "connection", "resolves to 127.0.0.1, which is a loopback address")
		if got := srv.lastSNI(); got != "" {
			t.Errorf("the server was contacted (SNI %q)", got)
		}
	})
}

func sha(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	der, _ := asn1.Marshal(sum[:])
	return der
}

// customALPNCert builds the malformed certificates that ALPNCert, being
// correct, cannot: extension value is used raw; nil leaves it out.
func customALPNCert(t *testing.T, names []string, ips []net.IP, critical bool, extValue []byte) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     names,
		IPAddresses:  ips,
	}
	if extValue != nil {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: OIDACMEIdentifier, Critical: critical, Value: extValue}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestCheckALPNCertSAN(t *testing.T) {
	// A SAN with an otherName next to the identifier: x509 drops the
	// otherName from DNSNames, so only the raw check catches it.
	otherName := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true,
		Bytes: mustMarshal(t, struct {
			ID    asn1.ObjectIdentifier
			Value asn1.RawValue `asn1:"explicit,tag:0"`
		}{asn1.ObjectIdentifier{1, 2, 3}, asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte("x")}})[2:]}
	san := mustMarshal(t, []asn1.RawValue{
		{Class: asn1.ClassContextSpecific, Tag: tagDNSName, Bytes: []byte("alpn.example.test")},
		otherName,
	})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{
			{Id: oidSubjectAltName, Critical: true, Value: san},
			{Id: OIDACMEIdentifier, Critical: true, Value: sha(testKeyAuth)},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.DNSNames) != 1 {
		t.Fatalf("DNSNames = %q; the test certificate is not what it should be", leaf.DNSNames)
	}
	if p := checkALPNCert(leaf, identifier{name: "alpn.example.test"}, testKeyAuth); p == "" {
		t.Error("a SAN with a second (otherName) entry was accepted")
	}

	good := mustALPNCert(t, "dns", "alpn.example.test", testKeyAuth)
	if p := checkALPNCert(good.Leaf, identifier{name: "alpn.example.test"}, testKeyAuth); p != "" {
		t.Errorf("a correct certificate was refused: %s", p)
	}
	ipCert := mustALPNCert(t, "ip", "2001:db8::1", testKeyAuth)
	if p := checkALPNCert(ipCert.Leaf, identifier{ip: netip.MustParseAddr("2001:db8::1")}, testKeyAuth); p != "" {
		t.Errorf("a correct IPv6 certificate was refused: %s", p)
	}
	if p := checkALPNCert(ipCert.Leaf, identifier{ip: netip.MustParseAddr("2001:db8::2")}, testKeyAuth); p == "" {
		t.Error("a certificate for another IP was accepted")
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReverseName(t *testing.T) {
	for ip, want := range map[string]string{
		"192.0.2.1":   "1.2.0.192.in-addr.arpa",
		"2001:db8::1": "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
	} {
		if got := reverseName(netip.MustParseAddr(ip)); got != want {
			t.Errorf("reverseName(%s) = %q, want %q", ip, got, want)
		}
	}
}

func TestALPNCertHelper(t *testing.T) {
	if _, err := validationtest.ALPNCert("email", "a@example.test", "x"); err == nil {
		t.Error("unsupported identifier type accepted")
	}
	if _, err := validationtest.ALPNCert("ip", "not-an-ip", "x"); err == nil {
		t.Error("bad IP accepted")
	}
}
