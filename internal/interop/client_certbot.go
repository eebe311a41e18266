package interop

import (
	"crypto"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// certbot (Debian's certbot with python3-acme), the EFF's client, with
// its standalone http-01 server and manual hooks for dns-01.

func certbotDriver() *Driver {
	d := &Driver{
		Name: "certbot",
		Version: func() string {
			return debVersion("certbot") + ", python3-acme " + strings.TrimSuffix(debVersion("python3-acme"), " (Debian package python3-acme)")
		},
		Programs: []string{"certbot", "curl"},
		Unsupported: map[Flow]string{
			FlowTLSALPN01:   "certbot has no tls-alpn-01 authenticator (standalone and manual answer http-01 and dns-01 only)",
			FlowIP:          "certbot 2.1 refuses IP addresses (\"Requested name 127.0.0.1 is an IP address\")",
			FlowARI:         "certbot 2.1 does not implement ARI (renewalInfo, replaces)",
			FlowKeyRollover: "certbot 2.1 has no account key rollover",
		},
	}
	issue := func(dns bool, names func(*Cell) []string) func(*Cell, *Server) {
		return func(c *Cell, s *Server) {
			cb := newCertbot(c, s)
			ns := names(c)
			args := append([]string{"certonly"}, cb.register()...)
			if dns {
				args = append(args, cb.manualDNS(c)...)
			} else {
				args = append(args, cb.standalone()...)
			}
			cb.must(c, append(args, domainArgs("-d", ns...)...)...)
			CheckIssued(c, s, readChain(c, cb.live(ns[0], "fullchain.pem")), ns...)
		}
	}
	one := func(c *Cell) []string { return c.Domains(1) }
	d.Flows = map[Flow]func(*Cell, *Server){
		FlowRegister: func(c *Cell, s *Server) {
			cb := newCertbot(c, s)
			cb.must(c, append([]string{"register"}, cb.register()...)...)
			out := cb.must(c, "show_account")
			m := regexp.MustCompile(`Account URL: (\S+)`).FindStringSubmatch(out)
			if m == nil {
				c.Fatalf("show_account printed no account URL:\n%s", out)
			}
			if url := CheckAccount(c, s, cb.accountKey(c)); url != m[1] {
				c.Fatalf("certbot shows account %s, the server has the key at %s", m[1], url)
			}
		},
		FlowHTTP01: issue(false, one),
		FlowDNS01:  issue(true, one),
		FlowWildcard: issue(true, func(c *Cell) []string {
			d := c.Domain()
			return []string{d, "*." + d}
		}),
		FlowMultiName: issue(false, func(c *Cell) []string { return c.Domains(3) }),
		FlowEAB: func(c *Cell, s *Server) {
			s2 := s.WithEAB(c)
			cb := newCertbot(c, s2)
			name := c.Domain()
			// "--flag=value": a base64url key may start with "-", which certbot
			// would take for an option.
			args := append([]string{"certonly", "--eab-kid=" + s2.EAB.KID, "--eab-hmac-key=" + s2.EAB.HMAC}, cb.register()...)
			cb.must(c, append(append(args, cb.standalone()...), "-d", name)...)
			CheckIssued(c, s2, readChain(c, cb.live(name, "fullchain.pem")), name)
		},
		FlowRenewal: func(c *Cell, s *Server) {
			cb := newCertbot(c, s)
			name := c.Domain()
			cb.must(c, append(append(append([]string{"certonly"}, cb.register()...), cb.standalone()...), "-d", name)...)
			leaf1 := CheckIssued(c, s, readChain(c, cb.live(name, "fullchain.pem")), name)
			cb.must(c, append([]string{"renew", "--force-renewal", "--no-random-sleep-on-renew", "--cert-name", name}, cb.standalone()...)...)
			leaf2 := CheckIssued(c, s, readChain(c, cb.live(name, "fullchain.pem")), name)
			if leaf1.SerialNumber.Cmp(leaf2.SerialNumber) == 0 {
				c.Fatalf("renew --force-renewal kept serial %x", leaf1.SerialNumber)
			}
		},
		FlowAlternateChain: func(c *Cell, s *Server) {
			cb := newCertbot(c, s)
			name := c.Domain()
			args := append(append([]string{"certonly", "--preferred-chain", s.AlternateRoot(c).Subject.CommonName}, cb.register()...), cb.standalone()...)
			cb.must(c, append(args, "-d", name)...)
			CheckAlternate(c, s, readChain(c, cb.live(name, "fullchain.pem")), name)
		},
		FlowRevokeAccount: func(c *Cell, s *Server) {
			cb := newCertbot(c, s)
			name := c.Domain()
			cb.must(c, append(append(append([]string{"certonly"}, cb.register()...), cb.standalone()...), "-d", name)...)
			leaf := CheckIssued(c, s, readChain(c, cb.live(name, "fullchain.pem")), name)
			cb.must(c, "revoke", "--cert-path", cb.live(name, "cert.pem"), "--reason", "superseded", "--no-delete-after-revoke")
			s.WaitRevoked(c, leaf)
		},
		FlowRevokeCertKey: func(c *Cell, s *Server) {
			cb := newCertbot(c, s)
			name := c.Domain()
			cb.must(c, append(append(append([]string{"certonly"}, cb.register()...), cb.standalone()...), "-d", name)...)
			leaf := CheckIssued(c, s, readChain(c, cb.live(name, "fullchain.pem")), name)
			// --key-path signs the request with the certificate key (RFC 8555 §7.6, jwk form).
			cb.must(c, "revoke", "--cert-path", cb.live(name, "cert.pem"), "--key-path", cb.live(name, "privkey.pem"),
				"--reason", "keycompromise", "--no-delete-after-revoke")
			s.WaitRevoked(c, leaf)
		},
		FlowDeactivate: func(c *Cell, s *Server) {
			cb := newCertbot(c, s)
			cb.must(c, append([]string{"register"}, cb.register()...)...)
			key := cb.accountKey(c)
			CheckAccount(c, s, key)
			cb.must(c, "unregister")
			CheckDeactivated(c, s, key)
		},
	}
	return d
}

// certbot is one certbot configuration (config, work and logs dirs) for one server.
type certbot struct {
	s                       *Server
	bin                     string
	dir, config, work, logs string
}

func newCertbot(c *Cell, s *Server) *certbot {
	dir := c.TempDir()
	return &certbot{s: s, bin: lookPath(c, "certbot"), dir: dir,
		config: filepath.Join(dir, "config"), work: filepath.Join(dir, "work"), logs: filepath.Join(dir, "logs")}
}

func (cb *certbot) must(c *Cell, args ...string) string {
	cmd := Cmd{
		Path: cb.bin,
		Dir:  cb.dir,
		Env: []string{"REQUESTS_CA_BUNDLE=" + cb.s.TrustFile, "HOME=" + cb.dir,
			"XDG_CONFIG_HOME=" + filepath.Join(cb.dir, "xdg")},
		Args: append(args, "--server", cb.s.DirURL, "--config-dir", cb.config, "--work-dir", cb.work,
			"--logs-dir", cb.logs, "--non-interactive"),
	}
	out, err := cmd.Run(c)
	if err != nil {
		// certbot 2.1 often hides the server's problem document from the
		// console; its log has it.
		logs, _ := os.ReadFile(filepath.Join(cb.logs, "letsencrypt.log"))
		c.Logf("certbot log:\n%s", tail(string(logs), 60))
		c.Fatalf("certbot %s: %v\n%s", strings.Join(args, " "), err, tail(out, 8))
	}
	return out
}

// register are the flags that register an account on first use.
func (cb *certbot) register() []string {
	return []string{"--agree-tos", "-m", "interop@example.com", "--no-eff-email"}
}

// standalone is certbot's own http-01 server on the server's http-01 port.
func (cb *certbot) standalone() []string {
	return []string{"--standalone", "--preferred-challenges", "http",
		"--http-01-port", strconv.Itoa(cb.s.HTTPPort), "--http-01-address", "127.0.0.1"}
}

// manualDNS answers dns-01 through manual hooks posting to the cell's hook endpoint.
func (cb *certbot) manualDNS(c *Cell) []string {
	hook := StartHookServer(c, cb.s, nil)
	auth := writeScript(c, filepath.Join(cb.dir, "auth.sh"),
		hook.Curl("txt/add", "_acme-challenge.$CERTBOT_DOMAIN", "$CERTBOT_VALIDATION"))
	cleanup := writeScript(c, filepath.Join(cb.dir, "cleanup.sh"),
		hook.Curl("txt/remove", "_acme-challenge.$CERTBOT_DOMAIN", "$CERTBOT_VALIDATION"))
	return []string{"--manual", "--preferred-challenges", "dns",
		"--manual-auth-hook", auth, "--manual-cleanup-hook", cleanup}
}

func (cb *certbot) live(name, file string) string {
	return filepath.Join(cb.config, "live", name, file)
}

// accountKey reads the account key certbot saved (a JWK).
func (cb *certbot) accountKey(c *Cell) crypto.Signer {
	var found []string
	_ = filepath.WalkDir(filepath.Join(cb.config, "accounts"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "private_key.json" {
			found = append(found, p)
		}
		return nil
	})
	if len(found) != 1 {
		c.Fatalf("certbot account keys: %q, want one", found)
	}
	return readKey(c, found[0])
}

func domainArgs(flag string, names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, flag, n)
	}
	return out
}
