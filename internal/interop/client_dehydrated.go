package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// dehydrated (Debian's package), the bash client over curl and openssl:
// http-01 through a webroot the cell serves, dns-01 through its hook,
// tls-alpn-01 through certificates it writes to ALPNCERTDIR, which the
// cell serves.

func dehydratedDriver() *Driver {
	d := &Driver{
		Name:     "dehydrated",
		Version:  func() string { return debVersion("dehydrated") },
		Programs: []string{"dehydrated", "curl", "openssl"},
		Unsupported: map[Flow]string{
			FlowIP:            "dehydrated 0.7.0 sends every identifier as type dns (no RFC 8738 IP identifiers)",
			FlowARI:           "dehydrated 0.7.0 does not implement ARI (renewalInfo, replaces)",
			FlowRevokeCertKey: "`dehydrated --revoke` signs with the account key only",
			FlowKeyRollover:   "dehydrated 0.7.0 has no account key rollover",
		},
	}
	issue := func(chal string, names func(*Cell) []string) func(*Cell, *Server) {
		return func(c *Cell, s *Server) {
			dh := newDehydrated(c, s, chal, "")
			ns := names(c)
			dh.must(c, "--register", "--accept-terms")
			dh.must(c, append([]string{"--cron"}, domainArgs("--domain", ns...)...)...)
			CheckIssued(c, s, readChain(c, dh.cert(ns[0], "fullchain.pem")), ns...)
			CheckIssued(c, s, readChain(c, dh.cert(ns[0], "cert.pem"), dh.cert(ns[0], "chain.pem")), ns...)
		}
	}
	one := func(c *Cell) []string { return c.Domains(1) }
	issueOne := func(c *Cell, dh *dehydrated) string {
		name := c.Domain()
		dh.must(c, "--register", "--accept-terms")
		dh.must(c, "--cron", "--domain", name)
		return name
	}
	d.Flows = map[Flow]func(*Cell, *Server){
		FlowRegister: func(c *Cell, s *Server) {
			dh := newDehydrated(c, s, "http-01", "")
			dh.must(c, "--register", "--accept-terms")
			CheckAccount(c, s, readKey(c, dh.accountKeyFile(c)))
		},
		FlowHTTP01:    issue("http-01", one),
		FlowDNS01:     issue("dns-01", one),
		FlowTLSALPN01: issue("tls-alpn-01", one),
		FlowWildcard: issue("dns-01", func(c *Cell) []string {
			d := c.Domain()
			return []string{d, "*." + d}
		}),
		FlowMultiName: issue("http-01", func(c *Cell) []string { return c.Domains(3) }),
		FlowEAB: func(c *Cell, s *Server) {
			s2 := s.WithEAB(c)
			dh := newDehydrated(c, s2, "http-01", fmt.Sprintf("EAB_KID=%q\nEAB_HMAC_KEY=%q\n", s2.EAB.KID, s2.EAB.HMAC))
			name := issueOne(c, dh)
			CheckIssued(c, s2, readChain(c, dh.cert(name, "fullchain.pem")), name)
		},
		FlowRenewal: func(c *Cell, s *Server) {
			dh := newDehydrated(c, s, "http-01", "")
			name := issueOne(c, dh)
			leaf1 := CheckIssued(c, s, readChain(c, dh.cert(name, "fullchain.pem")), name)
			// dehydrated names files by the second they were made.
			time.Sleep(1100 * time.Millisecond)
			dh.must(c, "--cron", "--domain", name, "--force")
			leaf2 := CheckIssued(c, s, readChain(c, dh.cert(name, "fullchain.pem")), name)
			if leaf1.SerialNumber.Cmp(leaf2.SerialNumber) == 0 {
				c.Fatalf("--cron --force kept serial %x", leaf1.SerialNumber)
			}
		},
		FlowAlternateChain: func(c *Cell, s *Server) {
			dh := newDehydrated(c, s, "http-01", fmt.Sprintf("PREFERRED_CHAIN=%q\n", s.AlternateRoot(c).Subject.CommonName))
			name := c.Domain()
			dh.must(c, "--register", "--accept-terms")
			out, err := dh.cmd("--cron", "--domain", name).Run(c)
			if err != nil {
				if strings.Contains(out, "Alternative chain with CN = ") && strings.Contains(out, "issuer=CN = ") {
					c.Note("dehydrated 0.7.0 reads a chain's root name with a sed expression that expects an RDN before CN " +
						"(`O = …, CN = …`); Pebble's roots have a CN only, so every chain's name comes out as `issuer=CN = …` " +
						"and PREFERRED_CHAIN never matches. acmegw's roots carry O and CN")
				}
				c.Fatalf("dehydrated --cron: %v\n%s", err, tail(out, 6))
			}
			CheckAlternate(c, s, readChain(c, dh.cert(name, "fullchain.pem")), name)
		},
		FlowRevokeAccount: func(c *Cell, s *Server) {
			dh := newDehydrated(c, s, "http-01", "")
			name := issueOne(c, dh)
			leaf := CheckIssued(c, s, readChain(c, dh.cert(name, "fullchain.pem")), name)
			dh.must(c, "--revoke", dh.cert(name, "cert.pem"))
			s.WaitRevoked(c, leaf)
		},
		FlowDeactivate: func(c *Cell, s *Server) {
			dh := newDehydrated(c, s, "http-01", "")
			dh.must(c, "--register", "--accept-terms")
			key := readKey(c, dh.accountKeyFile(c))
			CheckAccount(c, s, key)
			dh.must(c, "--deactivate")
			CheckDeactivated(c, s, key)
		},
	}
	return d
}

// dehydrated is one dehydrated BASEDIR and config for one server.
type dehydrated struct {
	bin, dir, config string
}

// newDehydrated writes a config for challenge, starts the responder it
// needs and returns the client; extra is appended to the config.
func newDehydrated(c *Cell, s *Server, challenge, extra string) *dehydrated {
	dh := &dehydrated{bin: lookPath(c, "dehydrated"), dir: c.TempDir()}
	dh.config = filepath.Join(dh.dir, "config")
	wellKnown := mkdir(c, "wellknown")
	alpnDir := mkdir(c, "alpn-certs")
	hook := ""
	switch challenge {
	case "http-01":
		ServeWebroot(c, s.HTTPPort, wellKnown)
	case "tls-alpn-01":
		ServeALPN(c, s.TLSPort, alpnDir)
	case "dns-01":
		h := StartHookServer(c, s, nil)
		hook = writeScript(c, filepath.Join(dh.dir, "hook.sh"), `case "$1" in
deploy_challenge) `+h.Curl("txt/add", "_acme-challenge.$2", "$4")+` ;;
clean_challenge) `+h.Curl("txt/remove", "_acme-challenge.$2", "$4")+` ;;
esac`)
	}
	cfg := fmt.Sprintf(`CA=%q
CHALLENGETYPE=%q
BASEDIR=%q
WELLKNOWN=%q
ALPNCERTDIR=%q
CURL_OPTS=%q
CONTACT_EMAIL="interop@example.com"
KEY_ALGO="prime256v1"
KEYSIZE="2048"
HOOK=%q
HOOK_CHAIN="no"
`, s.DirURL, challenge, dh.dir, wellKnown, alpnDir, "--cacert "+s.TrustFile+" --noproxy 127.0.0.1", hook) + extra
	c.Must(os.WriteFile(dh.config, []byte(cfg), 0o644), "writing dehydrated config")
	return dh
}

func (dh *dehydrated) cmd(args ...string) Cmd {
	return Cmd{Path: dh.bin, Dir: dh.dir, Env: []string{"HOME=" + dh.dir},
		Args: append([]string{"--config", dh.config}, args...)}
}

func (dh *dehydrated) must(c *Cell, args ...string) string { return dh.cmd(args...).Must(c) }

func (dh *dehydrated) cert(name, file string) string {
	return filepath.Join(dh.dir, "certs", name, file)
}

func (dh *dehydrated) accountKeyFile(c *Cell) string {
	matches, _ := filepath.Glob(filepath.Join(dh.dir, "accounts", "*", "account_key.pem"))
	if len(matches) != 1 {
		c.Fatalf("dehydrated account keys: %q, want one", matches)
	}
	return matches[0]
}
