package acmeup

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmegw/acmegw/validation/validationtest"
)

// The tests run a real Pebble (github.com/letsencrypt/pebble/v2, pinned in
// go.mod) built from the module cache, with its VA resolving through a
// validationtest.DNSServer on loopback. One Pebble and one DNS server serve
// the whole package, started on first use and stopped after the last test;
// tests that need another Pebble configuration (EAB) start their own.

const pebbleModule = "github.com/letsencrypt/pebble/v2"

// pebble is a running Pebble process.
type pebble struct {
	Directory string // https://127.0.0.1:<port>/dir
	mgmt      string // https://127.0.0.1:<port>
	caFile    string // minica root that signed Pebble's HTTPS certificate
	client    *http.Client
	cmd       *exec.Cmd
	exited    chan struct{}

	logMu sync.Mutex
	log   bytes.Buffer
}

// logText returns what Pebble printed so far.
func (p *pebble) logText() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.log.String()
}

// pebbleOptions are the knobs of the generated Pebble config.
type pebbleOptions struct {
	eabKeys map[string]string // kid → base64url HMAC; non-empty requires EAB
}

// blockedDomain is refused by the shared Pebble's policy (rejectedIdentifier).
const blockedDomain = "blocked.acmeup.test"

var (
	fixtureOnce sync.Once
	fixture     struct {
		pebble *pebble
		dns    *validationtest.DNSServer
		err    error
	}
	pebbleBinOnce sync.Once
	pebbleBin     string
	pebbleBinErr  error
	cleanups      []func()
	cleanupsMu    sync.Mutex
)

func TestMain(m *testing.M) {
	code := m.Run()
	cleanupsMu.Lock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanupsMu.Unlock()
	os.Exit(code)
}

func atExit(f func()) {
	cleanupsMu.Lock()
	defer cleanupsMu.Unlock()
	cleanups = append(cleanups, f)
}

// mainTB lets validationtest.NewDNSServer live for the whole package rather
// than one test: its Cleanup runs after the last test, and a Fatalf during
// setup panics into sharedFixture's recover.
type mainTB struct{ testing.TB }

func (mainTB) Helper()                           {}
func (mainTB) Cleanup(f func())                  { atExit(f) }
func (mainTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (mainTB) Logf(format string, args ...any)   {}

// shared returns the package's Pebble and DNS server, starting them once.
func shared(t *testing.T) (*pebble, *validationtest.DNSServer) {
	t.Helper()
	fixtureOnce.Do(func() {
		defer func() {
			if p := recover(); p != nil {
				fixture.err = fmt.Errorf("%v", p)
			}
		}()
		fixture.dns = validationtest.NewDNSServer(mainTB{})
		fixture.pebble, fixture.err = startPebble(fixture.dns.Addr(), pebbleOptions{}, atExit)
	})
	if fixture.err != nil {
		t.Fatalf("starting Pebble: %v", fixture.err)
	}
	return fixture.pebble, fixture.dns
}

// buildPebble compiles Pebble once per test binary; the Go build cache makes
// later runs cheap.
func buildPebble() (string, error) {
	pebbleBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "acmeup-pebble-bin-")
		if err != nil {
			pebbleBinErr = err
			return
		}
		atExit(func() { os.RemoveAll(dir) })
		bin := filepath.Join(dir, "pebble")
		out, err := exec.Command("go", "build", "-o", bin, pebbleModule+"/cmd/pebble").CombinedOutput()
		if err != nil {
			pebbleBinErr = fmt.Errorf("go build pebble: %v\n%s", err, out)
			return
		}
		pebbleBin = bin
	})
	return pebbleBin, pebbleBinErr
}

// pebbleModDir locates Pebble's module directory, which ships the test
// certificates its HTTPS listener uses.
func pebbleModDir() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", pebbleModule).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", pebbleModule, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("module %s is not downloaded", pebbleModule)
	}
	return dir, nil
}

// freePort picks an unused loopback TCP port. Another process could take it
// before Pebble binds, which startPebble reports as Pebble exiting early.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startPebble starts Pebble on loopback ports with the VA resolving through
// dnsAddr, and registers its shutdown with cleanup.
func startPebble(dnsAddr string, opts pebbleOptions, cleanup func(func())) (*pebble, error) {
	bin, err := buildPebble()
	if err != nil {
		return nil, err
	}
	modDir, err := pebbleModDir()
	if err != nil {
		return nil, err
	}
	certs := filepath.Join(modDir, "test", "certs")
	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "acmeup-pebble-")
	if err != nil {
		return nil, err
	}
	cleanup(func() { os.RemoveAll(dir) })

	type profile struct {
		Description    string `json:"description"`
		ValidityPeriod uint64 `json:"validityPeriod"`
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"certificate":                    filepath.Join(certs, "localhost", "cert.pem"),
		"privateKey":                     filepath.Join(certs, "localhost", "key.pem"),
		"httpPort":                       ports[2], // unused: dns-01 only
		"tlsPort":                        ports[3],
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": len(opts.eabKeys) > 0,
		"externalAccountMACKeys":         opts.eabKeys,
		"domainBlocklist":                []string{blockedDomain},
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]profile{
			"default":    {Description: "90 days", ValidityPeriod: 90 * 24 * 3600},
			"shortlived": {Description: "6 days", ValidityPeriod: 6 * 24 * 3600},
		},
	}}
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(cfgFile, data, 0o600); err != nil {
		return nil, err
	}

	p := &pebble{
		Directory: fmt.Sprintf("https://127.0.0.1:%d/dir", ports[0]),
		mgmt:      fmt.Sprintf("https://127.0.0.1:%d", ports[1]),
		caFile:    filepath.Join(certs, "pebble.minica.pem"),
		exited:    make(chan struct{}),
	}
	roots, err := os.ReadFile(p.caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(roots) {
		return nil, fmt.Errorf("no certificate in %s", p.caFile)
	}
	p.client = &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}

	p.cmd = exec.Command(bin, "-config", cfgFile, "-dnsserver", dnsAddr)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",      // no random 0-15 s sleeps before validating
		"PEBBLE_WFE_NONCEREJECT=0", // no spurious badNonce
		"PEBBLE_AUTHZREUSE=100",    // reuse valid authzs: the account-reuse test relies on it
		"PEBBLE_ALTERNATE_ROOTS=1", // one alternate chain, for Result.Alternates
		"PEBBLE_CHAIN_LENGTH=2",    // leaf, two intermediates, root
		"PEBBLE_VA_ALWAYS_VALID=0", // really look up the TXT records
	)
	w := writerFunc(func(b []byte) (int, error) {
		p.logMu.Lock()
		defer p.logMu.Unlock()
		return p.log.Write(b)
	})
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pebble: %w", err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("pebble exited during start-up:\n%s", p.logText())
		default:
		}
		resp, err := p.client.Get(p.Directory)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("pebble not ready after 30 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// get fetches a management API path.
func (p *pebble) get(path string) (int, []byte, error) {
	resp, err := p.client.Get(p.mgmt + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// root returns Pebble's root certificate number i (0 is the default chain's).
func (p *pebble) root(t *testing.T, i int) *x509.Certificate {
	t.Helper()
	code, body, err := p.get(fmt.Sprintf("/roots/%d", i))
	if err != nil || code != http.StatusOK {
		t.Fatalf("pebble /roots/%d: %d %v", i, code, err)
	}
	blk, _ := pem.Decode(body)
	if blk == nil {
		t.Fatalf("pebble /roots/%d: no PEM", i)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// certStatus asks Pebble's management API about a serial.
type certStatus struct {
	Status    string
	Serial    string
	Reason    *uint
	RevokedAt string
}

func (p *pebble) certStatus(t *testing.T, serialHex string) certStatus {
	t.Helper()
	code, body, err := p.get("/cert-status-by-serial/" + serialHex)
	if err != nil || code != http.StatusOK {
		t.Fatalf("pebble cert-status-by-serial/%s: %d %v %s", serialHex, code, err, body)
	}
	var st certStatus
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("cert status: %v: %s", err, body)
	}
	return st
}

// dumpLog prints Pebble's log when a test failed, which is where the
// upstream side of a failure shows.
func (p *pebble) dumpLog(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble log:\n%s", p.logText())
		}
	})
}

var errNotReady = errors.New("not ready")

// waitFor polls f until it returns nil or the context ends.
func waitFor(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
