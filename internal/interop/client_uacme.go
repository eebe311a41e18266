package interop

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// uacme (Debian's package), the small C client over libcurl-gnutls, with
// one hook program for every challenge type.
//
// Trust: uacme sets no CA file on libcurl and libcurl-gnutls reads no
// environment variable for one (CURL_CA_BUNDLE and SSL_CERT_FILE are
// ignored), so it trusts only the system bundle,
// /etc/ssl/certs/ca-certificates.crt. Rather than change the machine's
// trust store, each run happens in a private user and mount namespace
// (unshare --user --map-root-user --mount) where a temporary copy of that
// bundle plus the server's root is bind-mounted over it; the mount
// vanishes with the process. Where namespaces are not allowed, the cells
// are recorded unsupported with the reason.

const systemBundle = "/etc/ssl/certs/ca-certificates.crt"

func uacmeDriver() *Driver {
	d := &Driver{
		Name:     "uacme",
		Version:  func() string { return debVersion("uacme") },
		Programs: []string{"uacme", "unshare", "curl"},
		Unsupported: map[Flow]string{
			FlowARI: "uacme 1.7.4 does not implement ARI (renewalInfo, replaces)",
		},
	}
	issue := func(chal string, names func(*Cell) []string) func(*Cell, *Server) {
		return func(c *Cell, s *Server) {
			u := newUacme(c, s, chal)
			ns := names(c)
			u.must(c, "new", "interop@example.com")
			u.must(c, append([]string{"issue"}, ns...)...)
			CheckIssued(c, s, readChain(c, u.cert(ns[0])), ns...)
		}
	}
	one := func(c *Cell) []string { return c.Domains(1) }
	issueOne := func(c *Cell, u *uacme, flags ...string) string {
		name := c.Domain()
		u.must(c, "new", "interop@example.com")
		u.must(c, append(flags, "issue", name)...)
		return name
	}
	d.Flows = map[Flow]func(*Cell, *Server){
		FlowRegister: func(c *Cell, s *Server) {
			u := newUacme(c, s, "http-01")
			u.must(c, "new", "interop@example.com")
			CheckAccount(c, s, readKey(c, u.accountKey()))
		},
		FlowHTTP01:    issue("http-01", one),
		FlowDNS01:     issue("dns-01", one),
		FlowTLSALPN01: issue("tls-alpn-01", one),
		FlowWildcard: issue("dns-01", func(c *Cell) []string {
			d := c.Domain()
			return []string{d, "*." + d}
		}),
		FlowMultiName: issue("http-01", func(c *Cell) []string { return c.Domains(3) }),
		FlowIP:        issue("http-01", func(*Cell) []string { return []string{"127.0.0.1"} }),
		FlowEAB: func(c *Cell, s *Server) {
			s2 := s.WithEAB(c)
			u := newUacme(c, s2, "http-01")
			name := c.Domain()
			u.must(c, "-e", s2.EAB.KID+":"+s2.EAB.HMAC, "new", "interop@example.com")
			u.must(c, "issue", name)
			CheckIssued(c, s2, readChain(c, u.cert(name)), name)
		},
		FlowRenewal: func(c *Cell, s *Server) {
			u := newUacme(c, s, "http-01")
			name := issueOne(c, u)
			leaf1 := CheckIssued(c, s, readChain(c, u.cert(name)), name)
			u.must(c, "-f", "issue", name)
			leaf2 := CheckIssued(c, s, readChain(c, u.cert(name)), name)
			if leaf1.SerialNumber.Cmp(leaf2.SerialNumber) == 0 {
				c.Fatalf("issue -f kept serial %x", leaf1.SerialNumber)
			}
		},
		FlowAlternateChain: func(c *Cell, s *Server) {
			u := newUacme(c, s, "http-01")
			name := issueOne(c, u, "-l", "1")
			CheckAlternate(c, s, readChain(c, u.cert(name)), name)
		},
		FlowRevokeAccount: func(c *Cell, s *Server) {
			u := newUacme(c, s, "http-01")
			name := issueOne(c, u)
			leaf := CheckIssued(c, s, readChain(c, u.cert(name)), name)
			u.must(c, "-r", "4", "revoke", u.cert(name))
			s.WaitRevoked(c, leaf)
		},
		FlowRevokeCertKey: func(c *Cell, s *Server) {
			u := newUacme(c, s, "http-01")
			name := issueOne(c, u)
			leaf := CheckIssued(c, s, readChain(c, u.cert(name)), name)
			u.must(c, "-r", "1", "revoke", u.cert(name), filepath.Join(u.conf, "private", name, "key.pem"))
			s.WaitRevoked(c, leaf)
		},
		FlowKeyRollover: func(c *Cell, s *Server) {
			u := newUacme(c, s, "http-01")
			u.must(c, "new", "interop@example.com")
			oldKey := readKey(c, u.accountKey())
			url := CheckAccount(c, s, oldKey)
			u.must(c, "newkey")
			newKey := readKey(c, u.accountKey())
			CheckRolledOver(c, s, oldKey, newKey, url)
			name := c.Domain()
			u.must(c, "issue", name)
			CheckIssued(c, s, readChain(c, u.cert(name)), name)
		},
		FlowDeactivate: func(c *Cell, s *Server) {
			u := newUacme(c, s, "http-01")
			u.must(c, "new", "interop@example.com")
			key := readKey(c, u.accountKey())
			CheckAccount(c, s, key)
			u.must(c, "deactivate")
			CheckDeactivated(c, s, key)
		},
	}
	return d
}

// uacme is one uacme configuration directory for one server.
type uacme struct {
	s      *Server
	bin    string
	conf   string
	hook   string
	bundle string
}

// newUacme prepares a confdir, a hook that accepts only challenge, the
// responder it needs and the trust bundle.
func newUacme(c *Cell, s *Server, challenge string) *uacme {
	if err := privateMountsAllowed(); err != nil {
		c.Unsupportedf("uacme trusts only the system CA bundle (libcurl-gnutls reads no CA environment variable) and this machine refuses the private mount namespace the matrix uses to add the test root: %v", err)
	}
	u := &uacme{s: s, bin: lookPath(c, "uacme"), conf: filepath.Join(c.TempDir(), "uacme")}
	dir := c.TempDir()

	sys, err := os.ReadFile(systemBundle)
	c.Must(err, "reading the system CA bundle")
	root, err := os.ReadFile(s.TrustFile)
	c.Must(err, "reading the server's root")
	u.bundle = filepath.Join(dir, "ca-certificates.crt")
	c.Must(os.WriteFile(u.bundle, append(append(sys, '\n'), root...), 0o644), "writing the CA bundle")

	webroot := mkdir(c, "webroot")
	var alpn *ALPNServer
	switch challenge {
	case "http-01":
		ServeWebroot(c, s.HTTPPort, webroot)
	case "tls-alpn-01":
		alpn = ServeALPN(c, s.TLSPort, "")
	}
	h := StartHookServer(c, s, alpn)
	u.hook = writeScript(c, filepath.Join(dir, "hook.sh"), fmt.Sprintf(`method=$1 type=$2 ident=$3 token=$4 auth=$5
[ "$type" = %q ] || exit 1
case "$method:$type" in
begin:http-01) printf '%%s' "$auth" > %q/"$token" ;;
done:http-01|failed:http-01) rm -f %q/"$token" ;;
begin:dns-01) %s ;;
done:dns-01|failed:dns-01) %s ;;
begin:tls-alpn-01) %s ;;
done:tls-alpn-01|failed:tls-alpn-01) %s ;;
esac`, challenge, webroot, webroot,
		h.Curl("txt/add", "_acme-challenge.$ident", "$auth"), h.Curl("txt/remove", "_acme-challenge.$ident", "$auth"),
		h.Curl("alpn/add", "$ident", "$auth"), h.Curl("alpn/remove", "$ident", "$auth")))
	return u
}

// must runs uacme inside a private mount namespace in which the system
// bundle is the cell's bundle.
func (u *uacme) must(c *Cell, args ...string) string {
	for attempt := 1; ; attempt++ {
		cmd := u.cmd(args...)
		out, err := cmd.Run(c)
		if err == nil {
			return out
		}
		// Pebble lists dns-persist-01, which has no token, among the
		// challenges of every DNS name, in random order. uacme stops at the
		// first challenge it cannot parse, so an order fails whenever
		// Pebble happens to list that one before the challenge the hook
		// takes; a rerun makes a new order with a new shuffle.
		if u.s.Kind == ServerPebble && attempt < uacmePebbleAttempts && strings.Contains(out, "failed to parse challenge") {
			c.Note(pebbleTokenlessNote)
			continue
		}
		c.Fatalf("uacme %s: %v\n%s", strings.Join(args, " "), err, tail(out, 12))
	}
}

// uacmePebbleAttempts bounds the reruns on Pebble (each succeeds with
// probability 1/2 per authorization, so 1/8 for three names).
const uacmePebbleAttempts = 40

const pebbleTokenlessNote = "Pebble 2.10.1 offers dns-persist-01, a challenge without a token, beside the others and in random order; " +
	"uacme 1.7.4 aborts the order when it meets it before the challenge its hook takes (\"failed to parse challenge\"), " +
	"so on Pebble the driver reruns `uacme issue` (up to 40 times) until the shuffle puts the wanted challenge first. " +
	"acmegw offers only http-01, dns-01 and tls-alpn-01, each with a token"

func (u *uacme) cmd(args ...string) Cmd {
	all := []string{"--user", "--map-root-user", "--mount", "sh", "-c",
		`mount --bind "$0" ` + systemBundle + ` && exec "$@"`, u.bundle,
		u.bin, "-v", "-c", u.conf, "-a", u.s.DirURL, "-h", u.hook, "-y", "-b", "2048"}
	return Cmd{Path: "unshare", Args: append(all, args...), Env: []string{"HOME=" + u.conf}}
}

func (u *uacme) cert(ident string) string { return filepath.Join(u.conf, ident, "cert.pem") }

func (u *uacme) accountKey() string { return filepath.Join(u.conf, "private", "key.pem") }

var mountCheck struct {
	once sync.Once
	err  error
}

// privateMountsAllowed checks once that unshare can bind-mount over the
// system bundle in a private namespace.
func privateMountsAllowed() error {
	mountCheck.once.Do(func() {
		if _, err := os.Stat(systemBundle); err != nil {
			mountCheck.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
			`mount --bind "$0" `+systemBundle+` && head -c 27 `+systemBundle, systemBundle)
		out, err := cmd.CombinedOutput()
		if err != nil {
			mountCheck.err = fmt.Errorf("unshare: %v: %s", err, bytes.TrimSpace(out))
		} else if !strings.HasPrefix(string(out), "-----BEGIN CERTIFICATE-----") {
			mountCheck.err = fmt.Errorf("unshare: unexpected output %q", out)
		}
	})
	return mountCheck.err
}
