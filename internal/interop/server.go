package interop

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/internal/testpebble"
	"github.com/acmegw/acmegw/validation/validationtest"
)

// Server is one running ACME server as the drivers see it.
type Server struct {
	Kind   string // ServerAcmegw or ServerPebble
	DirURL string
	// TrustFile is the PEM file a client must trust to reach DirURL.
	TrustFile string
	// Roots are the roots of the certificates it issues: Roots[0] ends the
	// default chain, Roots[1] (when present) the alternate chain.
	Roots []*x509.Certificate
	// HTTPPort and TLSPort are where the server connects (on 127.0.0.1)
	// for http-01 and tls-alpn-01: the clients' solvers listen there.
	HTTPPort, TLSPort int
	// DNS is the DNS server the server resolves through; dns-01 answers go here.
	DNS *validationtest.DNSServer
	// EAB holds the key identifier and base64url MAC key of an external
	// account when the server requires External Account Binding.
	EAB *EABKey
	// Revoked reports whether the server has recorded the certificate
	// with this serial as revoked.
	Revoked func(serial *big.Int) (bool, error)
	// Log is the server's log so far, shown when a cell fails.
	Log func() string
	// WithEAB starts a second server of the same kind, on the same
	// validation ports and DNS, that requires External Account Binding;
	// it is stopped when tb ends.
	WithEAB func(tb testing.TB) *Server
}

// EABKey is an external account's key identifier and MAC key (unpadded base64url).
type EABKey struct {
	KID, HMAC string
}

// HTTPClient trusts TrustFile.
func (s *Server) HTTPClient(tb testing.TB) *http.Client {
	tb.Helper()
	pemBytes, err := os.ReadFile(s.TrustFile)
	if err != nil {
		tb.Fatalf("reading %s: %v", s.TrustFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		tb.Fatalf("no certificate in %s", s.TrustFile)
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool},
			Proxy:           nil, // loopback only, whatever the environment says
		},
	}
}

// AlternateRoot is the root of the alternate chain; the cell fails when
// the server offers none.
func (s *Server) AlternateRoot(tb testing.TB) *x509.Certificate {
	tb.Helper()
	if len(s.Roots) < 2 {
		tb.Fatalf("%s offers no alternate chain", s.Kind)
	}
	return s.Roots[1]
}

// WaitRevoked waits a few seconds for the server to record the revocation.
func (s *Server) WaitRevoked(tb testing.TB, leaf *x509.Certificate) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, err := s.Revoked(leaf.SerialNumber)
		if err != nil {
			tb.Fatalf("asking %s whether serial %x is revoked: %v", s.Kind, leaf.SerialNumber, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s has not recorded serial %x as revoked", s.Kind, leaf.SerialNumber)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PebbleOptions configure StartPebble.
type PebbleOptions struct {
	DNS               *validationtest.DNSServer
	HTTPPort, TLSPort int
	EAB               bool // require External Account Binding, with one key
}

// StartPebble starts a Pebble for the matrix: validating through opts.DNS
// on the given ports, with one alternate root, no authorization reuse (so
// every order solves its challenges) and no validation sleep. It is stopped
// when tb ends.
func StartPebble(tb testing.TB, opts PebbleOptions) *Server {
	tb.Helper()
	popts := testpebble.Options{
		DNS:            opts.DNS.Addr(),
		HTTPPort:       opts.HTTPPort,
		TLSPort:        opts.TLSPort,
		AlternateRoots: 1,
	}
	var eab *EABKey
	if opts.EAB {
		eab = &EABKey{KID: "interop-eab", HMAC: "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"}
		popts.EABKeys = map[string]string{eab.KID: eab.HMAC}
	}
	p := testpebble.Start(tb, popts)
	var roots []*x509.Certificate
	for i := 0; i < 2; i++ {
		r, err := p.Root(i)
		if err != nil {
			tb.Fatalf("pebble root %d: %v", i, err)
		}
		roots = append(roots, r)
	}
	s := &Server{
		Kind:      ServerPebble,
		DirURL:    p.DirURL(),
		TrustFile: p.MinicaPath(),
		Roots:     roots,
		HTTPPort:  p.HTTPPort(),
		TLSPort:   p.TLSPort(),
		DNS:       opts.DNS,
		EAB:       eab,
		Log:       p.Log,
		Revoked: func(serial *big.Int) (bool, error) {
			st, err := p.CertStatus(serial)
			if err != nil {
				return false, err
			}
			return st.Revoked(), nil
		},
	}
	s.WithEAB = func(tb testing.TB) *Server {
		o := opts
		o.EAB = true
		return StartPebble(tb, o)
	}
	return s
}

// BaseURL is the scheme and authority of the directory URL.
func (s *Server) BaseURL() string {
	rest := strings.TrimPrefix(s.DirURL, "https://")
	host, _, _ := strings.Cut(rest, "/")
	return "https://" + host
}

func (s *Server) String() string { return fmt.Sprintf("%s(%s)", s.Kind, s.DirURL) }
