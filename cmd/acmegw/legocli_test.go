package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// legoPackage is the lego CLI, pinned through the tool line in go.mod.
const legoPackage = "github.com/go-acme/lego/v4/cmd/lego"

var legoBuild struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// legoBinary builds the lego CLI once per test binary, next to the acmegw
// binary that TestMain built (and removes). The first build ever takes a
// few minutes; afterwards the Go build cache makes it quick.
func legoBinary(t *testing.T) string {
	t.Helper()
	legoBuild.once.Do(func() {
		path := filepath.Join(filepath.Dir(binary), "lego")
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", path, legoPackage)
		legoBuild.out, legoBuild.err = cmd.CombinedOutput()
		legoBuild.path = path
	})
	if legoBuild.err != nil {
		msg := fmt.Sprintf("building %s: %v\n%s", legoPackage, legoBuild.err, legoBuild.out)
		if os.Getenv(envRequireClients) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return legoBuild.path
}

// legoCLI drives the lego command line against one gateway, its state in a temp dir.
type legoCLI struct {
	gw   *gateway
	bin  string
	path string // --path
	dir  string
	env  []string
}

func newLegoCLI(t *testing.T, gw *gateway) *legoCLI {
	t.Helper()
	dir := t.TempDir()
	return &legoCLI{
		gw:   gw,
		bin:  legoBinary(t),
		dir:  dir,
		path: filepath.Join(dir, "lego"),
		env:  []string{"LEGO_CA_CERTIFICATES=" + gw.RootPath, "HOME=" + dir},
	}
}

// cmd runs lego with the global flags, then solver flags and domains, then
// the command and its own flags.
func (l *legoCLI) cmd(global []string, command string, args ...string) clientRun {
	all := append([]string{"--server", l.gw.DirURL, "--email", "t@example.com", "--accept-tos",
		"--path", l.path}, global...)
	all = append(all, command)
	return clientRun{Dir: l.dir, Path: l.bin, Env: l.env, Args: append(all, args...)}
}

func (l *legoCLI) must(t *testing.T, global []string, command string, args ...string) string {
	t.Helper()
	return l.cmd(global, command, args...).mustRun(t, nil)
}

// certFile is where lego keeps a certificate's files; it names a wildcard's
// files with "_" for "*".
func (l *legoCLI) certFile(domain, ext string) string {
	return filepath.Join(l.path, "certificates", strings.ReplaceAll(domain, "*", "_")+ext)
}

func domainFlags(domains ...string) []string {
	var out []string
	for _, d := range domains {
		out = append(out, "--domains", d)
	}
	return out
}

// TestLegoCLI runs the lego v4 command line end to end: run, renew (with ARI
// and "replaces" when the gateway offers renewalInfo), revoke, over http-01,
// tls-alpn-01 and dns-01 (the exec provider feeding the test's DNS server),
// and for an IP address identifier.
func TestLegoCLI(t *testing.T) {
	legoBinary(t)
	forEachStore(t, func(t *testing.T, gw *gateway) {
		t.Run("http01-run-renew-revoke", func(t *testing.T) {
			const name = "www.lego.test"
			gw.DNS.AddA(name, "127.0.0.1")
			l := newLegoCLI(t, gw)
			solver := append([]string{"--http", "--http.port", "127.0.0.1:" + strconv.Itoa(gw.HTTPPort)}, domainFlags(name)...)

			l.must(t, solver, "run")
			first := verifyIssued(t, gw, l.certFile(name, ".crt"), []string{name})
			verifyIssued(t, gw, l.certFile(name, ".crt"), []string{name}, l.certFile(name, ".issuer.crt"))

			// --days 10000 makes a 90-day certificate due for renewal.
			l.must(t, solver, "renew", "--days", "10000", "--no-random-sleep")
			renewed := verifyIssued(t, gw, l.certFile(name, ".crt"), []string{name})
			if renewed.SerialNumber.Cmp(first.SerialNumber) == 0 {
				t.Fatalf("renew --days 10000 kept serial %x", first.SerialNumber)
			}

			l.must(t, solver, "revoke", "--reason", "1", "--keep")
			waitForLog(t, gw, `msg="certificate revoked"`, "serial="+serialHexOf(renewed), "reason=keyCompromise")
			out, err := l.cmd(solver, "revoke", "--keep").run(t)
			if err == nil {
				t.Fatalf("second revoke of a revoked certificate succeeded:\n%s", out)
			}
			if !strings.Contains(out, "alreadyRevoked") {
				t.Fatalf("second revoke failed without alreadyRevoked:\n%s", out)
			}
		})

		t.Run("tlsalpn01", func(t *testing.T) {
			const name = "tls.lego.test"
			gw.DNS.AddA(name, "127.0.0.1")
			const alt = "alt.tls.lego.test"
			gw.DNS.AddA(alt, "127.0.0.1")
			l := newLegoCLI(t, gw)
			flags := []string{"--tls", "--tls.port", "127.0.0.1:" + strconv.Itoa(gw.TLSALPNPort), "--key-type", "rsa2048"}
			l.must(t, append(slices.Clip(flags), domainFlags(name, alt)...), "run")
			leaf := verifyIssued(t, gw, l.certFile(name, ".crt"), []string{name, alt})
			// lego revokes the certificate of every --domains given, and alt has none of its own.
			l.must(t, append(slices.Clip(flags), domainFlags(name)...), "revoke")
			waitForLog(t, gw, `msg="certificate revoked"`, "serial="+serialHexOf(leaf), "reason=unspecified")
			if _, err := os.Stat(l.certFile(name, ".crt")); !os.IsNotExist(err) {
				t.Fatalf("lego revoke did not archive %s (%v)", l.certFile(name, ".crt"), err)
			}
		})

		t.Run("dns01-exec", func(t *testing.T) {
			const name = "dns.lego.test"
			hook := startTXTHook(t, gw.DNS)
			l := newLegoCLI(t, gw)
			script := writeScript(t, filepath.Join(l.dir, "dns.sh"), `case "$1" in
present) `+hook.curlCommand("add", "$2", "$3")+` ;;
cleanup) `+hook.curlCommand("remove", "$2", "$3")+` ;;
esac`)
			l.env = append(l.env, "EXEC_PATH="+script, "EXEC_POLLING_INTERVAL=1", "EXEC_PROPAGATION_TIMEOUT=30",
				"EXEC_SEQUENCE_INTERVAL=1") // it solves one TXT name at a time, 60 s apart by default
			solver := append([]string{"--dns", "exec", "--dns.resolvers", gw.DNS.Addr(),
				"--dns.propagation-wait", "1s"}, domainFlags("*."+name, name)...)
			l.must(t, solver, "run")
			leaf := verifyIssued(t, gw, l.certFile("*."+name, ".crt"), []string{name, "any." + name})
			if added := hook.Added(); len(added) != 2 || !sameSet(hook.Removed(), added) {
				t.Fatalf("exec provider published %q and withdrew %q, want two records, both withdrawn", added, hook.Removed())
			}
			if leaf.DNSNames[0] != "*."+name {
				t.Fatalf("certificate names %q, want the order's order (%q first)", leaf.DNSNames, "*."+name)
			}
		})

		t.Run("profile", func(t *testing.T) {
			const name = "short.lego.test"
			gw.DNS.AddA(name, "127.0.0.1")
			l := newLegoCLI(t, gw)
			solver := append([]string{"--http", "--http.port", "127.0.0.1:" + strconv.Itoa(gw.HTTPPort)}, domainFlags(name)...)
			l.must(t, solver, "run", "--profile", "shortlived")
			leaf := verifyIssued(t, gw, l.certFile(name, ".crt"), []string{name})
			if life := leaf.NotAfter.Sub(leaf.NotBefore); life > 161*time.Hour || life < 159*time.Hour {
				t.Fatalf("profile shortlived gave a certificate valid for %s, want about 160h", life)
			}
			out, err := l.cmd(solver, "run", "--profile", "no-such-profile").run(t)
			if err == nil || !strings.Contains(out, "invalidProfile") {
				t.Fatalf("run with an unknown profile: err=%v, want invalidProfile:\n%s", err, out)
			}
		})

		t.Run("ip-http01", func(t *testing.T) {
			l := newLegoCLI(t, gw)
			solver := append([]string{"--http", "--http.port", "127.0.0.1:" + strconv.Itoa(gw.HTTPPort)}, domainFlags("127.0.0.1")...)
			l.must(t, solver, "run")
			leaf := verifyIssued(t, gw, l.certFile("127.0.0.1", ".crt"), []string{"127.0.0.1"})
			if len(leaf.IPAddresses) != 1 || len(leaf.DNSNames) != 0 {
				t.Fatalf("IP certificate has IPs %v and DNS names %q", leaf.IPAddresses, leaf.DNSNames)
			}
		})
	})
}
