package interop

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
)

// acme-tiny (Debian's package), the 200-line Python client: one account
// key, one CSR, http-01 files into a webroot, the chain on stdout. Its
// trust comes from Python's ssl module, which honours SSL_CERT_FILE.

func acmeTinyDriver() *Driver {
	only := "acme-tiny only issues, with http-01, from a CSR"
	d := &Driver{
		Name:     "acme-tiny",
		Version:  func() string { return debVersion("acme-tiny") },
		Programs: []string{"acme-tiny", "openssl"},
		Unsupported: map[Flow]string{
			FlowDNS01:          "acme-tiny answers http-01 only",
			FlowTLSALPN01:      "acme-tiny answers http-01 only",
			FlowWildcard:       "wildcards need dns-01; acme-tiny answers http-01 only",
			FlowIP:             "acme-tiny reads only DNS names from the CSR",
			FlowEAB:            "acme-tiny has no External Account Binding",
			FlowARI:            "acme-tiny does not implement ARI (renewalInfo, replaces)",
			FlowAlternateChain: "acme-tiny downloads the default chain only",
			FlowRevokeAccount:  only + "; no revocation",
			FlowRevokeCertKey:  only + "; no revocation",
			FlowKeyRollover:    only + "; no key rollover",
			FlowDeactivate:     only + "; no account deactivation",
		},
	}
	d.Flows = map[Flow]func(*Cell, *Server){
		FlowRegister: func(c *Cell, s *Server) {
			// acme-tiny registers (or finds) the account on every run.
			t := newAcmeTiny(c, s)
			name := c.Domain()
			out := t.run(c, name)
			if !strings.Contains(out, "Registered!") {
				c.Fatalf("acme-tiny did not report a new account:\n%s", tail(out, 10))
			}
			CheckAccount(c, s, readKey(c, t.accountKey))
		},
		FlowHTTP01: func(c *Cell, s *Server) {
			t := newAcmeTiny(c, s)
			name := c.Domain()
			t.run(c, name)
			CheckIssued(c, s, readChain(c, t.chain), name)
		},
		FlowMultiName: func(c *Cell, s *Server) {
			t := newAcmeTiny(c, s)
			names := c.Domains(3)
			t.run(c, names...)
			CheckIssued(c, s, readChain(c, t.chain), names...)
		},
		FlowRenewal: func(c *Cell, s *Server) {
			// Renewing with acme-tiny is running it again (from cron).
			t := newAcmeTiny(c, s)
			name := c.Domain()
			t.run(c, name)
			leaf1 := CheckIssued(c, s, readChain(c, t.chain), name)
			out := t.run(c, name)
			if !strings.Contains(out, "Already registered!") {
				c.Fatalf("acme-tiny did not find its account again:\n%s", tail(out, 10))
			}
			leaf2 := CheckIssued(c, s, readChain(c, t.chain), name)
			if leaf1.SerialNumber.Cmp(leaf2.SerialNumber) == 0 {
				c.Fatalf("the second run returned serial %x again", leaf1.SerialNumber)
			}
		},
	}
	return d
}

type acmeTiny struct {
	s                          *Server
	bin, dir                   string
	accountKey, webroot, chain string
}

func newAcmeTiny(c *Cell, s *Server) *acmeTiny {
	t := &acmeTiny{s: s, bin: lookPath(c, "acme-tiny"), dir: c.TempDir()}
	t.accountKey = filepath.Join(t.dir, "account.key")
	t.webroot = mkdir(c, "webroot")
	t.chain = filepath.Join(t.dir, "signed_chain.crt")
	key := rsaKey(c)
	c.Must(os.WriteFile(t.accountKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600), "writing the account key")
	ServeWebroot(c, s.HTTPPort, t.webroot)
	return t
}

// run issues a certificate for names from a new CSR (RSA 2048, the first
// name as CN and every name as SAN) and writes the chain to t.chain.
func (t *acmeTiny) run(c *Cell, names ...string) string {
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: names[0]}, DNSNames: names}, rsaKey(c))
	c.Must(err, "CSR")
	csr := filepath.Join(t.dir, "domain.csr")
	c.Must(os.WriteFile(csr, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}), 0o644), "writing the CSR")
	cmd := Cmd{Path: t.bin, Dir: t.dir, Env: []string{"SSL_CERT_FILE=" + t.s.TrustFile},
		Args: []string{"--account-key", t.accountKey, "--csr", csr, "--acme-dir", t.webroot,
			"--disable-check", "--directory-url", t.s.DirURL, "--contact", "mailto:interop@example.com"}}
	out, err := runSplit(c, cmd)
	if err != nil {
		c.Fatalf("acme-tiny: %v\n%s", err, tail(out.stderr, 15))
	}
	c.Must(os.WriteFile(t.chain, []byte(out.stdout), 0o644), "writing the chain")
	return out.stderr
}
