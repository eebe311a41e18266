package main

// Helpers for the end-to-end tests that drive real, external ACME client
// programs (certbot, lego, dehydrated) against the real binary, and the
// dehydrated test itself (TestDehydrated, at the end).

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acmegw/acmegw/validation/validationtest"
)

// envRequireClients names the environment variable that, set to 1, turns a
// missing external client into a test failure instead of a skip, so that CI
// can never skip the interoperability tests silently.
const envRequireClients = "ACMEGW_REQUIRE_CLIENTS"

// clientTimeout bounds one run of an external client. certbot alone waits
// up to 90 s for a certificate, so this leaves room for a slow machine.
const clientTimeout = 3 * time.Minute

// requireCommand returns the path of an external program, skipping the test
// when it is not installed (failing it when ACMEGW_REQUIRE_CLIENTS=1).
func requireCommand(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv(envRequireClients) == "1" {
		t.Fatalf("%s is not installed and %s=1: %v", name, envRequireClients, err)
	}
	t.Skipf("%s is not installed (set %s=1 to fail instead): %v", name, envRequireClients, err)
	return ""
}

// clientRun describes one run of an external client.
type clientRun struct {
	Dir  string   // working directory; default: a fresh temp dir
	Env  []string // added to the test's environment; later entries win
	Path string   // the program
	Args []string
}

// run starts the program in its own process group and waits for it. The whole
// group is killed when clientTimeout passes or the test ends first, so no
// helper process (hooks, curl, openssl) outlives the test.
func (c clientRun) run(t *testing.T) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Dir = c.Dir
	if cmd.Dir == "" {
		cmd.Dir = t.TempDir()
	}
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdin = nil // clients must not wait for a human
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The leader has not been waited for yet, so the group id is still ours.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("%w (killed after %s: %v)", err, time.Since(start).Round(time.Millisecond), ctx.Err())
	}
	t.Logf("$ %s %s  [%s, %v]", filepath.Base(c.Path), strings.Join(c.Args, " "), time.Since(start).Round(time.Millisecond), errOrOK(err))
	if testing.Verbose() && len(out) > 0 {
		t.Logf("%s", out)
	}
	return string(out), err
}

func errOrOK(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// mustRun runs the client and fails the test, with its output and whatever
// onFail adds (log files), when it does not exit 0.
func (c clientRun) mustRun(t *testing.T, onFail func()) string {
	t.Helper()
	out, err := c.run(t)
	if err != nil {
		if onFail != nil {
			onFail()
		}
		t.Fatalf("%s %s: %v\n%s", filepath.Base(c.Path), strings.Join(c.Args, " "), err, out)
	}
	return out
}

// logTree t.Logs every regular file under dir (clients' log directories).
func logTree(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		const max = 64 << 10
		if len(b) > max {
			b = append([]byte("…"), b[len(b)-max:]...)
		}
		t.Logf("---- %s ----\n%s", path, b)
		return nil
	})
}

// readChain parses every certificate in a PEM file.
func readChain(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		t.Fatalf("%s holds no certificate", path)
	}
	return certs
}

// verifyIssued checks that the leaf in chainPath (followed by its
// intermediates, or with them in extraPaths) chains to the gateway's root
// for every name, and returns the leaf.
func verifyIssued(t *testing.T, gw *gateway, chainPath string, names []string, extraPaths ...string) *x509.Certificate {
	t.Helper()
	certs := readChain(t, chainPath)
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	for _, p := range extraPaths {
		for _, c := range readChain(t, p) {
			inter.AddCert(c)
		}
	}
	for _, name := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{
			DNSName:       name,
			Roots:         gw.RootPool(t),
			Intermediates: inter,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			t.Fatalf("certificate %s (serial %x) for %q does not verify to the gateway root: %v", chainPath, leaf.SerialNumber, name, err)
		}
	}
	return leaf
}

// serialHexOf is a certificate's serial as the gateway names it (lower-case hex).
func serialHexOf(c *x509.Certificate) string { return fmt.Sprintf("%x", c.SerialNumber) }

// waitForLog waits until the gateway's log contains every one of the
// strings on one line, and fails the test after a few seconds.
func waitForLog(t *testing.T, gw *gateway, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for line := range strings.SplitSeq(gw.Log(), "\n") {
			all := true
			for _, p := range parts {
				if !strings.Contains(line, p) {
					all = false
					break
				}
			}
			if all {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway log has no line with all of %q", parts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// txtHook is a loopback HTTP endpoint through which a client's DNS hook
// script (a separate process) publishes and withdraws _acme-challenge TXT
// records in the test's in-process DNS server:
//
//	curl -d name=_acme-challenge.example.test -d value=… $URL/add
type txtHook struct {
	URL string

	mu      sync.Mutex
	added   []string // "name value", in order
	removed []string
}

func startTXTHook(t *testing.T, dns *validationtest.DNSServer) *txtHook {
	t.Helper()
	requireCommand(t, "curl") // the hook scripts post with curl
	h := &txtHook{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, value := r.PostFormValue("name"), r.PostFormValue("value")
		if r.Method != http.MethodPost || name == "" || value == "" {
			http.Error(w, "POST name and value", http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		switch r.URL.Path {
		case "/add":
			dns.AddTXT(name, value)
			h.added = append(h.added, name+" "+value)
		case "/remove":
			dns.RemoveTXT(name, value)
			h.removed = append(h.removed, name+" "+value)
		default:
			http.NotFound(w, r)
			return
		}
		_, _ = fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	return h
}

// Added and Removed list the records the hook was asked to publish and withdraw.
func (h *txtHook) Added() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.added...)
}

func (h *txtHook) Removed() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.removed...)
}

// curlCommand is the shell command that posts name and value (shell words,
// usually variables) to the hook endpoint op ("add" or "remove").
func (h *txtHook) curlCommand(op, name, value string) string {
	return fmt.Sprintf(`curl -fsS --noproxy '*' --max-time 10 --data-urlencode "name=%s" --data-urlencode "value=%s" %s/%s`,
		name, value, h.URL, op)
}

// writeScript writes an executable shell script.
func writeScript(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\nset -eu\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// serveWellKnown serves dir as /.well-known/acme-challenge/ on 127.0.0.1:port
// (where the gateway looks for http-01 answers) until the test ends; it is
// the web server that webroot-style clients such as dehydrated expect.
func serveWellKnown(t *testing.T, port int, dir string) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "/.well-known/acme-challenge/"
	mux := http.NewServeMux()
	mux.Handle(prefix, http.StripPrefix(prefix, http.FileServer(http.Dir(dir))))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("well-known server: %v", err)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
}

// dehydrated drives the Debian dehydrated (a bash client over curl and
// openssl) against one gateway, its state and config in a temp dir.
type dehydrated struct {
	gw     *gateway
	bin    string
	dir    string // BASEDIR
	config string
}

// newDehydrated writes a config for challenge ("http-01" with a well-known
// directory the test serves, or "dns-01" with hook) and returns the client.
func newDehydrated(t *testing.T, gw *gateway, challenge, hook string) *dehydrated {
	t.Helper()
	d := &dehydrated{gw: gw, bin: requireCommand(t, "dehydrated"), dir: t.TempDir()}
	d.config = filepath.Join(d.dir, "config")
	wellKnown := filepath.Join(d.dir, "wellknown")
	if err := os.Mkdir(wellKnown, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`CA=%q
CHALLENGETYPE=%q
BASEDIR=%q
WELLKNOWN=%q
CURL_OPTS=%q
CONTACT_EMAIL="t@example.com"
KEY_ALGO="prime256v1"
KEYSIZE="2048"
HOOK=%q
HOOK_CHAIN="no"
`, gw.DirURL, challenge, d.dir, wellKnown, "--cacert "+gw.RootPath+" --noproxy 127.0.0.1", hook)
	if err := os.WriteFile(d.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if challenge == "http-01" {
		serveWellKnown(t, gw.HTTPPort, wellKnown)
	}
	return d
}

func (d *dehydrated) cmd(args ...string) clientRun {
	return clientRun{Dir: d.dir, Path: d.bin, Env: []string{"HOME=" + d.dir}, Args: append([]string{"--config", d.config}, args...)}
}

func (d *dehydrated) must(t *testing.T, args ...string) string {
	t.Helper()
	return d.cmd(args...).mustRun(t, nil)
}

func (d *dehydrated) cert(name, file string) string {
	return filepath.Join(d.dir, "certs", name, file)
}

// TestDehydrated runs dehydrated 0.7 end to end: registration, http-01
// through a webroot the test serves, forced renewal, revocation, dns-01 with
// a wildcard through its hook, and account deactivation.
func TestDehydrated(t *testing.T) {
	requireCommand(t, "dehydrated")
	forEachStore(t, func(t *testing.T, gw *gateway) {
		t.Run("http01-renew-revoke-deactivate", func(t *testing.T) {
			const name = "www.dehydrated.test"
			gw.DNS.AddA(name, "127.0.0.1")
			d := newDehydrated(t, gw, "http-01", "")
			d.must(t, "--register", "--accept-terms")
			d.must(t, "--cron", "--domain", name)
			first := verifyIssued(t, gw, d.cert(name, "fullchain.pem"), []string{name})
			verifyIssued(t, gw, d.cert(name, "cert.pem"), []string{name}, d.cert(name, "chain.pem"))

			// dehydrated names files by the second they were made; make sure the renewal gets a new one.
			time.Sleep(1100 * time.Millisecond)
			d.must(t, "--cron", "--domain", name, "--force")
			renewed := verifyIssued(t, gw, d.cert(name, "fullchain.pem"), []string{name})
			if renewed.SerialNumber.Cmp(first.SerialNumber) == 0 {
				t.Fatalf("--cron --force kept serial %x", first.SerialNumber)
			}

			d.must(t, "--revoke", d.cert(name, "cert.pem"))
			waitForLog(t, gw, `msg="certificate revoked"`, "serial="+serialHexOf(renewed), "reason=unspecified")

			out := d.must(t, "--deactivate")
			acct, ok := strings.CutPrefix(regexp.MustCompile(`Deactivating account (\S+)`).FindString(out), "Deactivating account ")
			if !ok || !strings.HasPrefix(acct, gw.BaseURL()+"/acme/acct/") {
				t.Fatalf("dehydrated --deactivate did not name the account:\n%s", out)
			}
			waitForLog(t, gw, `msg="account deactivated"`, "account="+path.Base(acct))
		})

		t.Run("dns01-hook-wildcard", func(t *testing.T) {
			const name = "dns.dehydrated.test"
			hook := startTXTHook(t, gw.DNS)
			dir := t.TempDir()
			script := writeScript(t, filepath.Join(dir, "hook.sh"), `case "$1" in
deploy_challenge) `+hook.curlCommand("add", "_acme-challenge.$2", "$4")+` ;;
clean_challenge) `+hook.curlCommand("remove", "_acme-challenge.$2", "$4")+` ;;
esac`)
			d := newDehydrated(t, gw, "dns-01", script)
			d.must(t, "--register", "--accept-terms")
			d.must(t, "--cron", "--domain", name, "--domain", "*."+name)
			verifyIssued(t, gw, d.cert(name, "fullchain.pem"), []string{name, "any." + name})
			if added := hook.Added(); len(added) != 2 || !sameSet(hook.Removed(), added) {
				t.Fatalf("hook published %q and withdrew %q, want two records, both withdrawn", added, hook.Removed())
			}
		})
	})
}
