package interop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
)

// github.com/mholt/acmez/v3, the ACME client of Caddy (through certmagic):
// solvers per challenge type, all chains of a certificate, ARI with
// "replaces", and account management on the low-level client.

func acmezDriver() *Driver {
	d := &Driver{
		Name: "acmez",
		Version: func() string {
			return "github.com/mholt/acmez/v3 " + moduleVersion("github.com/mholt/acmez/v3") + " (Caddy)"
		},
		Unsupported: map[Flow]string{},
	}
	issue := func(chal string, names func(*Cell) []string) func(*Cell, *Server) {
		return func(c *Cell, s *Server) {
			cl, acct := acmezNew(c, s, chal, nil)
			ns := names(c)
			certs, _ := acmezObtain(c, cl, acct, ns, nil)
			CheckIssued(c, s, parseChain(c, certs[0].ChainPEM, "certificate"), ns...)
		}
	}
	one := func(c *Cell) []string { return c.Domains(1) }
	d.Flows = map[Flow]func(*Cell, *Server){
		FlowRegister: func(c *Cell, s *Server) {
			_, acct := acmezNew(c, s, "http-01", nil)
			if url := CheckAccount(c, s, acct.PrivateKey); url != acct.Location {
				c.Fatalf("registered %s, the server has the key at %s", acct.Location, url)
			}
		},
		FlowHTTP01:    issue("http-01", one),
		FlowDNS01:     issue("dns-01", one),
		FlowTLSALPN01: issue("tls-alpn-01", one),
		FlowWildcard: issue("dns-01", func(c *Cell) []string {
			d := c.Domain()
			return []string{"*." + d, d}
		}),
		FlowMultiName: issue("http-01", func(c *Cell) []string { return c.Domains(3) }),
		FlowIP:        issue("http-01", func(*Cell) []string { return []string{"127.0.0.1"} }),
		FlowEAB: func(c *Cell, s *Server) {
			s2 := s.WithEAB(c)
			cl, acct := acmezNew(c, s2, "http-01", s2.EAB)
			name := c.Domain()
			certs, _ := acmezObtain(c, cl, acct, []string{name}, nil)
			CheckIssued(c, s2, parseChain(c, certs[0].ChainPEM, "certificate"), name)
		},
		FlowRenewal: func(c *Cell, s *Server) {
			cl, acct := acmezNew(c, s, "http-01", nil)
			name := c.Domain()
			first, _ := acmezObtain(c, cl, acct, []string{name}, nil)
			leaf1 := CheckIssued(c, s, parseChain(c, first[0].ChainPEM, "certificate"), name)
			second, _ := acmezObtain(c, cl, acct, []string{name}, nil)
			leaf2 := CheckIssued(c, s, parseChain(c, second[0].ChainPEM, "renewed certificate"), name)
			if leaf1.SerialNumber.Cmp(leaf2.SerialNumber) == 0 {
				c.Fatalf("renewal returned the same serial %x", leaf1.SerialNumber)
			}
		},
		FlowARI: func(c *Cell, s *Server) {
			cl, acct := acmezNew(c, s, "http-01", nil)
			name := c.Domain()
			first, _ := acmezObtain(c, cl, acct, []string{name}, nil)
			leaf1 := CheckIssued(c, s, parseChain(c, first[0].ChainPEM, "certificate"), name)
			ri, err := cl.GetRenewalInfo(c.Context(), leaf1)
			c.Must(err, "renewalInfo")
			w := ri.SuggestedWindow
			if !ri.HasWindow() || !w.Start.Before(w.End) || w.End.After(leaf1.NotAfter) {
				c.Fatalf("renewalInfo window %s – %s for a certificate valid until %s", w.Start, w.End, leaf1.NotAfter)
			}
			second, _ := acmezObtain(c, cl, acct, []string{name}, leaf1)
			CheckIssued(c, s, parseChain(c, second[0].ChainPEM, "renewed certificate"), name)
			CheckReplaced(c, s, acct.PrivateKey, leaf1)
		},
		FlowAlternateChain: func(c *Cell, s *Server) {
			cl, acct := acmezNew(c, s, "http-01", nil)
			name := c.Domain()
			certs, _ := acmezObtain(c, cl, acct, []string{name}, nil)
			if len(certs) < 2 {
				c.Fatalf("acmez got %d chain(s), want the default and an alternate", len(certs))
			}
			CheckIssued(c, s, parseChain(c, certs[0].ChainPEM, "default chain"), name)
			CheckAlternate(c, s, parseChain(c, certs[1].ChainPEM, "alternate chain"), name)
		},
		FlowRevokeAccount: func(c *Cell, s *Server) {
			cl, acct := acmezNew(c, s, "http-01", nil)
			name := c.Domain()
			certs, _ := acmezObtain(c, cl, acct, []string{name}, nil)
			leaf := CheckIssued(c, s, parseChain(c, certs[0].ChainPEM, "certificate"), name)
			c.Must(cl.RevokeCertificate(c.Context(), acct, leaf, acct.PrivateKey, acme.ReasonSuperseded), "revoke with the account key")
			s.WaitRevoked(c, leaf)
		},
		FlowRevokeCertKey: func(c *Cell, s *Server) {
			cl, acct := acmezNew(c, s, "http-01", nil)
			name := c.Domain()
			certs, certKey := acmezObtain(c, cl, acct, []string{name}, nil)
			leaf := CheckIssued(c, s, parseChain(c, certs[0].ChainPEM, "certificate"), name)
			c.Must(cl.RevokeCertificate(c.Context(), acct, leaf, certKey, acme.ReasonKeyCompromise), "revoke with the certificate key")
			s.WaitRevoked(c, leaf)
		},
		FlowKeyRollover: func(c *Cell, s *Server) {
			cl, acct := acmezNew(c, s, "http-01", nil)
			oldKey := acct.PrivateKey
			newKey := ecKey(c)
			acct2, err := cl.AccountKeyRollover(c.Context(), acct, newKey)
			c.Must(err, "AccountKeyRollover")
			CheckRolledOver(c, s, oldKey, newKey, acct.Location)
			name := c.Domain()
			certs, _ := acmezObtain(c, cl, acct2, []string{name}, nil)
			CheckIssued(c, s, parseChain(c, certs[0].ChainPEM, "certificate"), name)
		},
		FlowDeactivate: func(c *Cell, s *Server) {
			cl, acct := acmezNew(c, s, "http-01", nil)
			acct.Status = acme.StatusDeactivated
			got, err := cl.UpdateAccount(c.Context(), acct)
			c.Must(err, "deactivate")
			if got.Status != acme.StatusDeactivated {
				c.Fatalf("deactivation answered status %q", got.Status)
			}
			CheckDeactivated(c, s, acct.PrivateKey)
		},
	}
	return d
}

func ecKey(c *Cell) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c.Must(err, "EC key")
	return k
}

// acmezNew registers a new P-256 account (with eab when not nil) on a
// client that solves only chal.
func acmezNew(c *Cell, s *Server, chal string, eab *EABKey) (*acmez.Client, acme.Account) {
	cl := &acmez.Client{
		Client:           &acme.Client{Directory: s.DirURL, HTTPClient: s.HTTPClient(c), UserAgent: "acmegw-interop"},
		ChallengeSolvers: map[string]acmez.Solver{chal: &acmezSolver{c: c, s: s}},
	}
	// Start the responder here, in the cell's goroutine, not in Present.
	switch chal {
	case acme.ChallengeTypeHTTP01:
		cellHTTP01(c, s)
	case acme.ChallengeTypeTLSALPN01:
		cellALPN(c, s)
	}
	acct := acme.Account{Contact: []string{"mailto:interop@example.com"}, TermsOfServiceAgreed: true, PrivateKey: ecKey(c)}
	if eab != nil {
		c.Must(acct.SetExternalAccountBinding(c.Context(), cl.Client, acme.EAB{KeyID: eab.KID, MACKey: eab.HMAC}), "EAB")
	}
	acct, err := cl.NewAccount(c.Context(), acct)
	c.Must(err, "new account")
	if acct.Status != acme.StatusValid || acct.Location == "" {
		c.Fatalf("new account %q has status %q", acct.Location, acct.Status)
	}
	return cl, acct
}

// acmezObtain obtains a certificate for names with a new P-256 key,
// replacing old (ARI) when not nil, and returns every chain.
func acmezObtain(c *Cell, cl *acmez.Client, acct acme.Account, names []string, old *x509.Certificate) ([]acme.Certificate, crypto.Signer) {
	key := ecKey(c)
	csr, err := acmez.NewCSR(key, names)
	c.Must(err, "CSR")
	params, err := acmez.OrderParametersFromCSR(acct, csr)
	c.Must(err, "order parameters")
	params.Replaces = old
	certs, err := cl.ObtainCertificate(c.Context(), params)
	c.Must(err, "obtain")
	if len(certs) == 0 {
		c.Fatalf("obtain returned no certificate")
	}
	return certs, key
}

// acmezSolver answers challenges from the cell's responders.
type acmezSolver struct {
	c *Cell
	s *Server
}

func (z *acmezSolver) Present(_ context.Context, ch acme.Challenge) error {
	switch ch.Type {
	case acme.ChallengeTypeHTTP01:
		cellHTTP01(z.c, z.s).Set(ch.Token, ch.KeyAuthorization)
	case acme.ChallengeTypeDNS01:
		z.s.DNS.AddTXT(ch.DNS01TXTRecordName()+".", ch.DNS01KeyAuthorization())
	case acme.ChallengeTypeTLSALPN01:
		cert, err := acmez.TLSALPN01ChallengeCert(ch)
		if err != nil {
			return err
		}
		cellALPN(z.c, z.s).Set(ch.Identifier.Value, cert)
	}
	return nil
}

func (z *acmezSolver) CleanUp(_ context.Context, ch acme.Challenge) error {
	if ch.Type == acme.ChallengeTypeDNS01 {
		z.s.DNS.RemoveTXT(ch.DNS01TXTRecordName()+".", ch.DNS01KeyAuthorization())
	}
	return nil
}
