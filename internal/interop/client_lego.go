package interop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	stdlog "log"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/challenge/dns01"
	"github.com/go-acme/lego/v4/challenge/http01"
	"github.com/go-acme/lego/v4/challenge/tlsalpn01"
	"github.com/go-acme/lego/v4/lego"
	legolog "github.com/go-acme/lego/v4/log"
	"github.com/go-acme/lego/v4/registration"
)

// The lego library (github.com/go-acme/lego/v4), the client inside
// Traefik and many Go programs.

func legoLibDriver() *Driver {
	d := &Driver{
		Name:    "lego",
		Version: func() string { return moduleVersion("github.com/go-acme/lego/v4") + " (Go library)" },
		Unsupported: map[Flow]string{
			FlowRevokeCertKey: "lego's Certifier.Revoke always signs with the account key",
			FlowKeyRollover:   "the lego library has no keyChange (account key rollover) API",
		},
	}
	obtain := func(solver func(*Cell, *Server, *lego.Client), names func(*Cell) []string) func(*Cell, *Server) {
		return func(c *Cell, s *Server) {
			cl, _ := legoNew(c, s, true)
			solver(c, s, cl)
			domains := names(c)
			res := legoObtain(c, cl, certificate.ObtainRequest{Domains: domains, Bundle: true})
			CheckIssued(c, s, parseChain(c, res.Certificate, "certificate"), domains...)
		}
	}
	one := func(c *Cell) []string { return c.Domains(1) }
	d.Flows = map[Flow]func(*Cell, *Server){
		FlowRegister: func(c *Cell, s *Server) {
			_, u := legoNew(c, s, true)
			if url := CheckAccount(c, s, u.key); url != u.reg.URI {
				c.Fatalf("lego registered %s, the server has the key at %s", u.reg.URI, url)
			}
		},
		FlowHTTP01:    obtain(legoHTTP01, one),
		FlowDNS01:     obtain(legoDNS01, one),
		FlowTLSALPN01: obtain(legoTLSALPN01, one),
		FlowWildcard: obtain(legoDNS01, func(c *Cell) []string {
			d := c.Domain()
			return []string{"*." + d, d}
		}),
		FlowMultiName: obtain(legoHTTP01, func(c *Cell) []string { return c.Domains(3) }),
		FlowIP:        obtain(legoHTTP01, func(*Cell) []string { return []string{"127.0.0.1"} }),
		FlowEAB: func(c *Cell, s *Server) {
			s2 := s.WithEAB(c)
			cl, u := legoClient(c, s2, nil)
			reg, err := cl.Registration.RegisterWithExternalAccountBinding(registration.RegisterEABOptions{
				TermsOfServiceAgreed: true, Kid: s2.EAB.KID, HmacEncoded: s2.EAB.HMAC})
			c.Must(err, "lego register with EAB")
			u.reg = reg
			legoHTTP01(c, s2, cl)
			name := c.Domain()
			res := legoObtain(c, cl, certificate.ObtainRequest{Domains: []string{name}, Bundle: true})
			CheckIssued(c, s2, parseChain(c, res.Certificate, "certificate"), name)
		},
		FlowRenewal: func(c *Cell, s *Server) {
			cl, _ := legoNew(c, s, true)
			legoHTTP01(c, s, cl)
			name := c.Domain()
			first := legoObtain(c, cl, certificate.ObtainRequest{Domains: []string{name}, Bundle: true})
			leaf1 := CheckIssued(c, s, parseChain(c, first.Certificate, "certificate"), name)
			second, err := cl.Certificate.RenewWithOptions(*first, &certificate.RenewOptions{Bundle: true})
			c.Must(err, "lego renew")
			leaf2 := CheckIssued(c, s, parseChain(c, second.Certificate, "renewed certificate"), name)
			if leaf1.SerialNumber.Cmp(leaf2.SerialNumber) == 0 {
				c.Fatalf("renewal returned the same serial %x", leaf1.SerialNumber)
			}
		},
		FlowARI: func(c *Cell, s *Server) {
			cl, u := legoNew(c, s, true)
			legoHTTP01(c, s, cl)
			name := c.Domain()
			first := legoObtain(c, cl, certificate.ObtainRequest{Domains: []string{name}, Bundle: true})
			leaf1 := CheckIssued(c, s, parseChain(c, first.Certificate, "certificate"), name)
			ri, err := cl.Certificate.GetRenewalInfo(certificate.RenewalInfoRequest{Cert: leaf1})
			c.Must(err, "lego renewalInfo")
			w := ri.SuggestedWindow
			if !w.Start.Before(w.End) || w.End.After(leaf1.NotAfter) {
				c.Fatalf("renewalInfo window %s – %s for a certificate valid until %s", w.Start, w.End, leaf1.NotAfter)
			}
			certID, err := certificate.MakeARICertID(leaf1)
			c.Must(err, "ARI cert id")
			second := legoObtain(c, cl, certificate.ObtainRequest{Domains: []string{name}, Bundle: true, ReplacesCertID: certID})
			CheckIssued(c, s, parseChain(c, second.Certificate, "renewed certificate"), name)
			CheckReplaced(c, s, u.key, leaf1)
		},
		FlowAlternateChain: func(c *Cell, s *Server) {
			cl, _ := legoNew(c, s, true)
			legoHTTP01(c, s, cl)
			name := c.Domain()
			res := legoObtain(c, cl, certificate.ObtainRequest{Domains: []string{name}, Bundle: true,
				PreferredChain: s.AlternateRoot(c).Subject.CommonName})
			CheckAlternate(c, s, parseChain(c, res.Certificate, "certificate"), name)
		},
		FlowRevokeAccount: func(c *Cell, s *Server) {
			cl, _ := legoNew(c, s, true)
			legoHTTP01(c, s, cl)
			name := c.Domain()
			res := legoObtain(c, cl, certificate.ObtainRequest{Domains: []string{name}, Bundle: true})
			leaf := CheckIssued(c, s, parseChain(c, res.Certificate, "certificate"), name)
			reason := uint(4) // superseded
			c.Must(cl.Certificate.RevokeWithReason(res.Certificate, &reason), "lego revoke")
			s.WaitRevoked(c, leaf)
		},
		FlowDeactivate: func(c *Cell, s *Server) {
			cl, u := legoNew(c, s, true)
			c.Must(cl.Registration.DeleteRegistration(), "lego deactivate")
			CheckDeactivated(c, s, u.key)
		},
	}
	return d
}

var legoLogOnce sync.Once

// legoUser implements registration.User.
type legoUser struct {
	key crypto.Signer
	reg *registration.Resource
}

func (u *legoUser) GetEmail() string                        { return "interop@example.com" }
func (u *legoUser) GetRegistration() *registration.Resource { return u.reg }
func (u *legoUser) GetPrivateKey() crypto.PrivateKey        { return u.key }

// legoClient is a lego client for s with account key key (a new P-256
// key when nil), not registered.
func legoClient(c *Cell, s *Server, key crypto.Signer) (*lego.Client, *legoUser) {
	legoLogOnce.Do(func() {
		// lego logs from its solvers' goroutines to a process-wide logger.
		legolog.Logger = stdlog.New(io.Discard, "", 0)
	})
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		c.Must(err, "account key")
		key = k
	}
	u := &legoUser{key: key}
	cfg := lego.NewConfig(u)
	cfg.CADirURL = s.DirURL
	cfg.HTTPClient = s.HTTPClient(c)
	cfg.UserAgent = "acmegw-interop"
	cfg.Certificate.KeyType = certcrypto.EC256
	cfg.Certificate.Timeout = 60 * time.Second
	cl, err := lego.NewClient(cfg)
	c.Must(err, "lego.NewClient")
	return cl, u
}

// legoNew is legoClient with a registered account.
func legoNew(c *Cell, s *Server, register bool) (*lego.Client, *legoUser) {
	cl, u := legoClient(c, s, nil)
	if register {
		reg, err := cl.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true})
		c.Must(err, "lego register")
		if reg.Body.Status != "valid" {
			c.Fatalf("lego register: account %s has status %q", reg.URI, reg.Body.Status)
		}
		u.reg = reg
	}
	return cl, u
}

func legoObtain(c *Cell, cl *lego.Client, req certificate.ObtainRequest) *certificate.Resource {
	res, err := cl.Certificate.Obtain(req)
	c.Must(err, "lego obtain")
	return res
}

func legoHTTP01(c *Cell, s *Server, cl *lego.Client) {
	c.Must(cl.Challenge.SetHTTP01Provider(http01.NewProviderServer("127.0.0.1", strconv.Itoa(s.HTTPPort))), "http-01 provider")
}

func legoTLSALPN01(c *Cell, s *Server, cl *lego.Client) {
	c.Must(cl.Challenge.SetTLSALPN01Provider(tlsalpn01.NewProviderServer("127.0.0.1", strconv.Itoa(s.TLSPort))), "tls-alpn-01 provider")
}

// legoNameserver is the DNS server lego's dns01 package asks (for CNAMEs
// and propagation); it is a package global there, so it is set once per
// DNS server rather than by every client.
var legoNameserver struct {
	mu   sync.Mutex
	addr string
}

func legoDNS01(c *Cell, s *Server, cl *lego.Client) {
	legoNameserver.mu.Lock()
	if legoNameserver.addr != s.DNS.Addr() {
		legoNameserver.addr = s.DNS.Addr()
		_ = dns01.AddRecursiveNameservers([]string{s.DNS.Addr()})(nil)
	}
	legoNameserver.mu.Unlock()
	err := cl.Challenge.SetDNS01Provider(&legoDNSProvider{s: s},
		dns01.DisableAuthoritativeNssPropagationRequirement(),
		dns01.AddDNSTimeout(5*time.Second))
	c.Must(err, "dns-01 provider")
}

// legoDNSProvider publishes TXT records in the server's DNS.
type legoDNSProvider struct{ s *Server }

func (p *legoDNSProvider) Present(domain, _, keyAuth string) error {
	info := dns01.GetChallengeInfo(domain, keyAuth)
	p.s.DNS.AddTXT(info.EffectiveFQDN, info.Value)
	return nil
}

func (p *legoDNSProvider) CleanUp(domain, _, keyAuth string) error {
	info := dns01.GetChallengeInfo(domain, keyAuth)
	p.s.DNS.RemoveTXT(info.EffectiveFQDN, info.Value)
	return nil
}

// Timeout keeps lego's propagation polling fast.
func (p *legoDNSProvider) Timeout() (timeout, interval time.Duration) {
	return 10 * time.Second, 50 * time.Millisecond
}

// moduleVersion is the version of a Go module this binary uses: from the
// build information, which for a test binary lists only the modules of the
// package under test, else from go.mod (go list -m).
func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == path {
				if m.Replace != nil {
					return m.Replace.Version
				}
				return m.Version
			}
		}
	}
	return commandOutput("go", "list", "-m", "-f", "{{.Version}}", path)
}
