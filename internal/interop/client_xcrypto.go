package interop

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"

	xacme "golang.org/x/crypto/acme"
)

// golang.org/x/crypto/acme driven the way cert-manager drives its fork of
// it: an RSA-2048 account key, strict status codes (201 for new accounts
// and orders), every authorization fetched and its challenge accepted,
// then finalize with CreateOrderCert, which polls the order at the
// finalize response's Location.

func xcryptoDriver() *Driver {
	d := &Driver{
		Name: "x-crypto-acme",
		Version: func() string {
			return "golang.org/x/crypto " + moduleVersion("golang.org/x/crypto") + " (cert-manager style)"
		},
		Unsupported: map[Flow]string{
			FlowARI: "golang.org/x/crypto/acme has no renewalInfo or newOrder `replaces` (cert-manager adds ARI in its own fork)",
		},
	}
	issue := func(chal string, names func(*Cell) []string) func(*Cell, *Server) {
		return func(c *Cell, s *Server) {
			cl, _ := xNew(c, s, nil)
			ns := names(c)
			chain, _, _ := xIssue(c, s, cl, chal, ns...)
			CheckIssued(c, s, chain, ns...)
		}
	}
	one := func(c *Cell) []string { return c.Domains(1) }
	d.Flows = map[Flow]func(*Cell, *Server){
		FlowRegister: func(c *Cell, s *Server) {
			cl, acct := xNew(c, s, nil)
			if url := CheckAccount(c, s, cl.Key); url != acct.URI {
				c.Fatalf("registered %s, the server has the key at %s", acct.URI, url)
			}
			got, err := cl.GetReg(c.Context(), acct.URI)
			c.Must(err, "GetReg")
			if got.Status != xacme.StatusValid {
				c.Fatalf("GetReg: status %q", got.Status)
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
			mac, err := decodeB64URL(s2.EAB.HMAC)
			c.Must(err, "EAB MAC key")
			cl, _ := xNew(c, s2, &xacme.ExternalAccountBinding{KID: s2.EAB.KID, Key: mac})
			name := c.Domain()
			chain, _, _ := xIssue(c, s2, cl, "http-01", name)
			CheckIssued(c, s2, chain, name)
		},
		FlowRenewal: func(c *Cell, s *Server) {
			cl, _ := xNew(c, s, nil)
			name := c.Domain()
			chain1, _, _ := xIssue(c, s, cl, "http-01", name)
			leaf1 := CheckIssued(c, s, chain1, name)
			chain2, _, _ := xIssue(c, s, cl, "http-01", name)
			leaf2 := CheckIssued(c, s, chain2, name)
			if leaf1.SerialNumber.Cmp(leaf2.SerialNumber) == 0 {
				c.Fatalf("renewal returned the same serial %x", leaf1.SerialNumber)
			}
		},
		FlowAlternateChain: func(c *Cell, s *Server) {
			cl, _ := xNew(c, s, nil)
			name := c.Domain()
			_, certURL, _ := xIssue(c, s, cl, "http-01", name)
			alts, err := cl.ListCertAlternates(c.Context(), certURL)
			c.Must(err, "ListCertAlternates")
			if len(alts) == 0 {
				c.Fatalf("no alternate chain linked from %s", certURL)
			}
			der, err := cl.FetchCert(c.Context(), alts[0], true)
			c.Must(err, "fetching the alternate chain")
			CheckAlternate(c, s, derChain(c, der), name)
		},
		FlowRevokeAccount: func(c *Cell, s *Server) {
			cl, _ := xNew(c, s, nil)
			name := c.Domain()
			chain, _, _ := xIssue(c, s, cl, "http-01", name)
			leaf := CheckIssued(c, s, chain, name)
			c.Must(cl.RevokeCert(c.Context(), nil, leaf.Raw, xacme.CRLReasonSuperseded), "RevokeCert with the account key")
			s.WaitRevoked(c, leaf)
		},
		FlowRevokeCertKey: func(c *Cell, s *Server) {
			cl, _ := xNew(c, s, nil)
			name := c.Domain()
			chain, _, certKey := xIssue(c, s, cl, "http-01", name)
			leaf := CheckIssued(c, s, chain, name)
			// A client without the account: only the certificate key signs.
			other := &xacme.Client{Key: certKey, DirectoryURL: s.DirURL, HTTPClient: s.HTTPClient(c)}
			c.Must(other.RevokeCert(c.Context(), certKey, leaf.Raw, xacme.CRLReasonKeyCompromise), "RevokeCert with the certificate key")
			s.WaitRevoked(c, leaf)
		},
		FlowKeyRollover: func(c *Cell, s *Server) {
			cl, acct := xNew(c, s, nil)
			oldKey := cl.Key
			newKey := rsaKey(c)
			c.Must(cl.AccountKeyRollover(c.Context(), newKey), "AccountKeyRollover")
			CheckRolledOver(c, s, oldKey, newKey, acct.URI)
			// The client goes on with the new key.
			name := c.Domain()
			chain, _, _ := xIssue(c, s, cl, "http-01", name)
			CheckIssued(c, s, chain, name)
		},
		FlowDeactivate: func(c *Cell, s *Server) {
			cl, _ := xNew(c, s, nil)
			c.Must(cl.DeactivateReg(c.Context()), "DeactivateReg")
			CheckDeactivated(c, s, cl.Key)
		},
	}
	return d
}

func rsaKey(c *Cell) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	c.Must(err, "RSA key")
	return k
}

// xNew registers a new RSA-2048 account, as cert-manager does.
func xNew(c *Cell, s *Server, eab *xacme.ExternalAccountBinding) (*xacme.Client, *xacme.Account) {
	cl := &xacme.Client{Key: rsaKey(c), DirectoryURL: s.DirURL, HTTPClient: s.HTTPClient(c), UserAgent: "acmegw-interop"}
	acct, err := cl.Register(c.Context(), &xacme.Account{Contact: []string{"mailto:interop@example.com"}, ExternalAccountBinding: eab}, xacme.AcceptTOS)
	c.Must(err, "register")
	if acct.Status != xacme.StatusValid || acct.URI == "" {
		c.Fatalf("register: account %q status %q", acct.URI, acct.Status)
	}
	return cl, acct
}

// xIssue orders names, answers every pending authorization with chal,
// finalizes with a new RSA-2048 key and returns the chain, the
// certificate URL and the certificate key.
func xIssue(c *Cell, s *Server, cl *xacme.Client, chal string, names ...string) ([]*x509.Certificate, string, crypto.Signer) {
	ctx := c.Context()
	var ids []xacme.AuthzID
	tmpl := &x509.CertificateRequest{}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ids = append(ids, xacme.IPIDs(n)...)
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			ids = append(ids, xacme.DomainIDs(n)...)
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	if len(tmpl.DNSNames) > 0 {
		tmpl.Subject = pkix.Name{CommonName: tmpl.DNSNames[0]}
	}
	order, err := cl.AuthorizeOrder(ctx, ids)
	c.Must(err, "new order")

	for _, u := range order.AuthzURLs {
		z, err := cl.GetAuthorization(ctx, u)
		c.Must(err, "authorization")
		if z.Status == xacme.StatusValid {
			continue
		}
		var ch *xacme.Challenge
		for _, x := range z.Challenges {
			if x.Type == chal {
				ch = x
			}
		}
		if ch == nil {
			c.Fatalf("no %s challenge for %s", chal, z.Identifier.Value)
		}
		switch chal {
		case "http-01":
			http01 := cellHTTP01(c, s)
			ka, err := cl.HTTP01ChallengeResponse(ch.Token)
			c.Must(err, "http-01 response")
			http01.Set(ch.Token, ka)
		case "dns-01":
			rec, err := cl.DNS01ChallengeRecord(ch.Token)
			c.Must(err, "dns-01 record")
			fqdn := "_acme-challenge." + z.Identifier.Value + "."
			s.DNS.AddTXT(fqdn, rec)
			c.Cleanup(func() { s.DNS.RemoveTXT(fqdn, rec) })
		case "tls-alpn-01":
			alpn := cellALPN(c, s)
			cert, err := cl.TLSALPN01ChallengeCert(ch.Token, z.Identifier.Value)
			c.Must(err, "tls-alpn-01 certificate")
			alpn.Set(z.Identifier.Value, &cert)
		}
		_, err = cl.Accept(ctx, ch)
		c.Must(err, "accept "+chal)
		_, err = cl.WaitAuthorization(ctx, u)
		c.Must(err, "authorization of "+z.Identifier.Value)
	}
	order, err = cl.WaitOrder(ctx, order.URI)
	c.Must(err, "order ready")
	certKey := rsaKey(c)
	csr, err := x509.CreateCertificateRequest(rand.Reader, tmpl, certKey)
	c.Must(err, "CSR")
	der, certURL, err := cl.CreateOrderCert(ctx, order.FinalizeURL, csr, true)
	var acmeErr *xacme.Error
	if err != nil && !errors.As(err, &acmeErr) {
		// CreateOrderCert polls the finalize response's Location; without
		// one (Pebble sends none) it fails with a transport error, and
		// cert-manager's next reconcile reads the order at the URL it
		// stored and fetches the certificate from there.
		c.Logf("CreateOrderCert: %v; polling the order URL as cert-manager's next reconcile does", err)
		c.Note("the finalize response carried no order Location while the order was still processing, so " +
			"x/crypto's CreateOrderCert, which polls that Location, failed; the driver then did what cert-manager's " +
			"next reconcile does (poll the order URL it stored, fetch the certificate). acmegw answers finalize with the order's Location")
		if s.Kind == ServerAcmegw {
			c.Errorf("finalize: %v (acmegw must answer finalize with the order's Location)", err)
		}
		o, werr := cl.WaitOrder(ctx, order.URI)
		c.Must(werr, "order after finalize")
		if o.Status != xacme.StatusValid {
			c.Fatalf("order %s is %s after finalize", order.URI, o.Status)
		}
		certURL = o.CertURL
		der, err = cl.FetchCert(ctx, certURL, true)
	}
	c.Must(err, "finalize")
	return derChain(c, der), certURL, certKey
}
