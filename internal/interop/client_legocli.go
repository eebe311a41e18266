package interop

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The lego command line (github.com/go-acme/lego/v4/cmd/lego), built from
// the version go.mod pins.

func legoCLIDriver(bin string) *Driver {
	d := &Driver{
		Name: "lego-cli",
		Version: func() string {
			if bin == "" {
				return "not built"
			}
			return commandOutput(bin, "--version")
		},
		Unsupported: map[Flow]string{
			FlowRevokeCertKey: "`lego revoke` always signs with the account key",
			FlowKeyRollover:   "the lego CLI has no account key rollover command",
			FlowDeactivate:    "the lego CLI has no account deactivation command",
		},
	}
	run := func(solver func(*legoCLI, *Cell) []string, names func(*Cell) []string, extra ...string) func(*Cell, *Server) {
		return func(c *Cell, s *Server) {
			l := newLegoCLI(c, s, bin)
			ns := names(c)
			l.must(c, append(solver(l, c), domainFlags(ns...)...), "run", extra...)
			CheckIssued(c, s, readChain(c, l.certFile(ns[0], ".crt")), ns...)
		}
	}
	one := func(c *Cell) []string { return c.Domains(1) }
	http := (*legoCLI).httpFlags
	d.Flows = map[Flow]func(*Cell, *Server){
		FlowRegister: func(c *Cell, s *Server) {
			// lego registers the account as the first step of run.
			l := newLegoCLI(c, s, bin)
			name := c.Domain()
			l.must(c, append(l.httpFlags(c), domainFlags(name)...), "run")
			var acct struct {
				Registration struct {
					URI  string `json:"uri"`
					Body struct {
						Status string `json:"status"`
					} `json:"body"`
				} `json:"registration"`
			}
			b, err := os.ReadFile(l.accountFile(c, "account.json"))
			c.Must(err, "reading lego's account.json")
			c.Must(json.Unmarshal(b, &acct), "parsing lego's account.json")
			if url := CheckAccount(c, s, readKey(c, l.accountFile(c, "keys/*.key"))); url != acct.Registration.URI {
				c.Fatalf("lego saved account %s, the server has the key at %s", acct.Registration.URI, url)
			}
		},
		FlowHTTP01:    run(http, one),
		FlowDNS01:     run((*legoCLI).dnsFlags, one),
		FlowTLSALPN01: run((*legoCLI).tlsFlags, one),
		FlowWildcard: run((*legoCLI).dnsFlags, func(c *Cell) []string {
			d := c.Domain()
			return []string{"*." + d, d}
		}),
		FlowMultiName: run(http, func(c *Cell) []string { return c.Domains(3) }),
		FlowIP:        run(http, func(*Cell) []string { return []string{"127.0.0.1"} }),
		FlowEAB: func(c *Cell, s *Server) {
			s2 := s.WithEAB(c)
			l := newLegoCLI(c, s2, bin)
			name := c.Domain()
			global := append(l.httpFlags(c), "--eab", "--kid="+s2.EAB.KID, "--hmac="+s2.EAB.HMAC)
			l.must(c, append(global, domainFlags(name)...), "run")
			CheckIssued(c, s2, readChain(c, l.certFile(name, ".crt")), name)
		},
		FlowRenewal: func(c *Cell, s *Server) {
			l := newLegoCLI(c, s, bin)
			name := c.Domain()
			global := append(l.httpFlags(c), domainFlags(name)...)
			l.must(c, global, "run")
			leaf1 := CheckIssued(c, s, readChain(c, l.certFile(name, ".crt")), name)
			// --days 10000 makes a 90-day certificate due; ARI off: a plain renewal.
			l.must(c, global, "renew", "--days", "10000", "--no-random-sleep", "--ari-disable")
			leaf2 := CheckIssued(c, s, readChain(c, l.certFile(name, ".crt")), name)
			if leaf1.SerialNumber.Cmp(leaf2.SerialNumber) == 0 {
				c.Fatalf("renew kept serial %x", leaf1.SerialNumber)
			}
		},
		FlowARI: func(c *Cell, s *Server) {
			l := newLegoCLI(c, s, bin)
			name := c.Domain()
			global := append(l.httpFlags(c), domainFlags(name)...)
			l.must(c, global, "run")
			leaf1 := CheckIssued(c, s, readChain(c, l.certFile(name, ".crt")), name)
			// ARI is on by default: lego asks renewalInfo and sends replaces.
			out := l.must(c, global, "renew", "--days", "10000", "--no-random-sleep")
			if !strings.Contains(out, "renewalInfo") {
				c.Fatalf("lego renew did not consult renewalInfo:\n%s", tail(out, 10))
			}
			leaf2 := CheckIssued(c, s, readChain(c, l.certFile(name, ".crt")), name)
			if leaf1.SerialNumber.Cmp(leaf2.SerialNumber) == 0 {
				c.Fatalf("renew kept serial %x", leaf1.SerialNumber)
			}
			CheckReplaced(c, s, readKey(c, l.accountFile(c, "keys/*.key")), leaf1)
		},
		FlowAlternateChain: func(c *Cell, s *Server) {
			l := newLegoCLI(c, s, bin)
			name := c.Domain()
			l.must(c, append(l.httpFlags(c), domainFlags(name)...), "run",
				"--preferred-chain", s.AlternateRoot(c).Subject.CommonName)
			CheckAlternate(c, s, readChain(c, l.certFile(name, ".crt")), name)
		},
		FlowRevokeAccount: func(c *Cell, s *Server) {
			l := newLegoCLI(c, s, bin)
			name := c.Domain()
			global := append(l.httpFlags(c), domainFlags(name)...)
			l.must(c, global, "run")
			leaf := CheckIssued(c, s, readChain(c, l.certFile(name, ".crt")), name)
			l.must(c, global, "revoke", "--reason", "4")
			s.WaitRevoked(c, leaf)
		},
	}
	return d
}

// legoCLI is one lego CLI state directory (--path) for one server.
type legoCLI struct {
	s    *Server
	bin  string
	path string
	env  []string
}

func newLegoCLI(c *Cell, s *Server, bin string) *legoCLI {
	if bin == "" {
		c.Fatalf("the lego CLI was not built")
	}
	dir := c.TempDir()
	return &legoCLI{s: s, bin: bin, path: filepath.Join(dir, "lego"),
		env: []string{"LEGO_CA_CERTIFICATES=" + s.TrustFile, "HOME=" + dir}}
}

// must runs lego with the common global flags, then global, the command
// and its flags.
func (l *legoCLI) must(c *Cell, global []string, command string, args ...string) string {
	all := append([]string{"--server", l.s.DirURL, "--email", "interop@example.com", "--accept-tos",
		"--path", l.path}, global...)
	all = append(all, command)
	return Cmd{Path: l.bin, Args: append(all, args...), Env: l.env}.Must(c)
}

func (l *legoCLI) httpFlags(*Cell) []string {
	return []string{"--http", "--http.port", "127.0.0.1:" + strconv.Itoa(l.s.HTTPPort)}
}

func (l *legoCLI) tlsFlags(*Cell) []string {
	return []string{"--tls", "--tls.port", "127.0.0.1:" + strconv.Itoa(l.s.TLSPort)}
}

// dnsFlags use lego's exec DNS provider, whose script posts the records
// to the cell's hook endpoint.
func (l *legoCLI) dnsFlags(c *Cell) []string {
	hook := StartHookServer(c, l.s, nil)
	script := writeScript(c, filepath.Join(c.TempDir(), "dns.sh"), `case "$1" in
present) `+hook.Curl("txt/add", "$2", "$3")+` ;;
cleanup) `+hook.Curl("txt/remove", "$2", "$3")+` ;;
esac`)
	// It solves one TXT name at a time, 60 s apart by default.
	l.env = append(l.env, "EXEC_PATH="+script, "EXEC_POLLING_INTERVAL=1", "EXEC_PROPAGATION_TIMEOUT=30",
		"EXEC_SEQUENCE_INTERVAL=1")
	return []string{"--dns", "exec", "--dns.resolvers", l.s.DNS.Addr(), "--dns.propagation-wait", "1s"}
}

// certFile is where lego keeps a certificate's files ("_" for "*").
func (l *legoCLI) certFile(domain, ext string) string {
	return filepath.Join(l.path, "certificates", strings.ReplaceAll(domain, "*", "_")+ext)
}

// accountFile finds a file of the (only) account lego saved.
func (l *legoCLI) accountFile(c *Cell, pattern string) string {
	matches, _ := filepath.Glob(filepath.Join(l.path, "accounts", "*", "*", pattern))
	if len(matches) != 1 {
		c.Fatalf("lego account files matching %s: %q, want one", pattern, matches)
	}
	return matches[0]
}

func domainFlags(domains ...string) []string {
	var out []string
	for _, d := range domains {
		out = append(out, "--domains", d)
	}
	return out
}
