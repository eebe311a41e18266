// Package testpebble runs a real Pebble (github.com/letsencrypt/pebble/v2,
// Let's Encrypt's ACME test server, pinned in go.mod) on loopback for tests,
// interop runs and benchmarks: an upstream ACME CA for the acme brand type,
// or a reference server to compare acmegw with.
//
// # Use
//
// In a test, one Pebble for that test, stopped when it ends:
//
//	dns := validationtest.NewDNSServer(t)
//	p := testpebble.Start(t, testpebble.Options{DNS: dns.Addr()})
//	// trust p.MinicaPath() (or use p.HTTPClient()) to reach p.DirURL();
//	// answer dns-01 by writing TXT records into dns;
//	root, err := p.Root(0) // the issuing root, from the management API
//
// One Pebble shared by a whole package, stopped by TestMain:
//
//	var pebble testpebble.Shared
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		pebble.Stop()
//		os.Exit(code)
//	}
//
//	func TestX(t *testing.T) {
//		p := pebble.Start(t, testpebble.Options{DNS: sharedDNS.Addr()})
//		p.LogOnFailure(t)
//		...
//	}
//
// Outside tests (a benchmark driver), New and Stop do the same without a
// testing.TB; PID gives the process for CPU and memory sampling.
//
// # What it starts
//
// The first Start or New of a process builds Pebble with
// "go build github.com/letsencrypt/pebble/v2/cmd/pebble" (the go command must
// be on PATH and the working directory inside this module, which is where
// "go test" runs) into $XDG_CACHE_HOME/acmegw-testpebble (os.UserCacheDir),
// shared by concurrent test processes; the Go build cache makes rebuilding
// nearly free. Each Pebble is one process with a JSON
// config in its own temporary directory, listening on free 127.0.0.1 ports
// for ACME and for its management API, with the HTTPS certificate Pebble's
// module ships (signed by the "minica" root at MinicaPath, valid for
// 127.0.0.1, localhost and pebble). The environment makes it deterministic:
// PEBBLE_VA_NOSLEEP=1 (no random 0–15 s sleep before validating),
// PEBBLE_WFE_NONCEREJECT=0 (no spurious badNonce), PEBBLE_AUTHZREUSE from
// Options.AuthzReuse (0 by default, where Pebble's own default reuses half
// the time), PEBBLE_VA_ALWAYS_VALID only with Options.AlwaysValid. Its VA
// resolves through Options.DNS (-dnsserver, over TCP) and connects to
// Options.HTTPPort and Options.TLSPort for http-01 and tls-alpn-01.
//
// Pebble keeps everything in memory: its roots and intermediates are new in
// every process, so read them from the management API (Root, RootsPEM) rather
// than from files, and never share state between two instances.
//
// Everything is on loopback and every process started is stopped by Stop, or
// by the test's Cleanup for Start.
package testpebble

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmegw/acmegw/internal/testlog"
)

// Module is the Go module Pebble is built from; its version is the one
// go.mod pins.
const Module = "github.com/letsencrypt/pebble/v2"

// startTimeout bounds how long a fresh Pebble may take to answer on both its
// ACME and management listeners.
const startTimeout = 30 * time.Second

// Options configure one Pebble. Set DNS (or AlwaysValid): New refuses to
// start a Pebble that would validate through the system resolver. The other
// zero values give the Pebble described in the package documentation.
type Options struct {
	// DNS is the HOST:PORT of the DNS server Pebble's VA queries (Pebble's
	// -dnsserver flag; Pebble uses TCP), typically
	// validationtest.DNSServer.Addr(). Required unless AlwaysValid.
	DNS string

	// EABKeys maps key identifiers to base64url MAC keys. When non-empty,
	// Pebble requires External Account Binding for new accounts.
	EABKeys map[string]string

	// Profiles are the profiles Pebble offers in its directory and accepts
	// in newOrder; nil means DefaultProfiles(). The first order without a
	// profile gets Pebble's "default" profile, so keep one by that name.
	Profiles map[string]Profile

	// AlternateRoots is how many extra roots cross-sign Pebble's
	// intermediate (PEBBLE_ALTERNATE_ROOTS): every certificate then has
	// 1+AlternateRoots chains, served as rel="alternate" links, and
	// Root(i) exists for i <= AlternateRoots.
	AlternateRoots int

	// ChainLength is the number of intermediates between leaf and root
	// (PEBBLE_CHAIN_LENGTH); 0 means Pebble's default, 1. Only the one
	// next to the root is available from the management API.
	ChainLength int

	// AuthzReuse is the percentage of new orders in which Pebble reuses an
	// account's valid authorization for a name (PEBBLE_AUTHZREUSE). 0 (the
	// default here) always makes new authorizations, so every order really
	// solves its challenges; 100 always reuses.
	AuthzReuse int

	// AlwaysValid makes Pebble's VA mark every challenge valid without
	// looking anything up (PEBBLE_VA_ALWAYS_VALID=1).
	AlwaysValid bool

	// BlockedDomains are refused with rejectedIdentifier, names below them
	// too (Pebble's domainBlocklist).
	BlockedDomains []string

	// CAAIdentities are the issuer domains Pebble lists in the directory's
	// meta.caaIdentities; nil means Pebble's default,
	// "pebble.letsencrypt.org".
	CAAIdentities []string

	// KeyAlgorithm is "ecdsa" (the default here: faster to start) or "rsa"
	// (Pebble's own default), the key type of its roots and intermediates.
	KeyAlgorithm string

	// RetryAfterAuthz and RetryAfterOrder are the Retry-After seconds Pebble
	// sends on pending authorizations and processing orders; 0 means 1.
	RetryAfterAuthz, RetryAfterOrder int

	// HTTPPort and TLSPort are where Pebble's VA connects for http-01 and
	// tls-alpn-01 (on the address the name resolves to); 0 means a free
	// port nothing listens on, so those challenges fail fast.
	HTTPPort, TLSPort int

	// Strict runs Pebble with -strict (upcoming API-breaking changes).
	Strict bool

	// Config holds extra keys merged into the "pebble" object of the JSON
	// config (they win over the keys above), for settings this struct
	// does not cover.
	Config map[string]any

	// Env holds extra NAME=value environment entries for the process; they
	// win over the ones set from the fields above.
	Env []string
}

// Profile is one Pebble certificate profile.
type Profile struct {
	Description string
	// Validity is the lifetime of certificates issued under the profile
	// (whole seconds); 0 means Pebble's default, about 5 years.
	Validity time.Duration
	// PromoteCommonName copies the CSR's common name into the certificate.
	PromoteCommonName bool
}

// DefaultProfiles are the profiles of a Pebble whose Options set none:
// "default" (90 days) and "shortlived" (6 days), like Let's Encrypt's.
func DefaultProfiles() map[string]Profile {
	return map[string]Profile{
		"default":    {Description: "90 days", Validity: 90 * 24 * time.Hour},
		"shortlived": {Description: "6 days", Validity: 6 * 24 * time.Hour},
	}
}

// Pebble is a running Pebble process. Its methods are safe for concurrent
// use.
type Pebble struct {
	dirURL   string
	mgmtURL  string
	minica   string
	pid      int
	httpPort int
	tlsPort  int
	workDir  string
	client   *http.Client
	cmd      *exec.Cmd
	exited   chan struct{}
	stopOnce sync.Once
	log      testlog.Buffer
}

// ErrNotFound is returned by CertStatus for a serial Pebble never issued.
var ErrNotFound = errors.New("testpebble: certificate not found")

// errEarlyExit marks a Pebble that died during start-up, most likely because
// another process took one of its ports between picking and binding.
var errEarlyExit = errors.New("pebble exited during start-up")

// Start starts a Pebble for t and stops it when t ends, logging Pebble's
// output if t failed. A failure to start fails t.
func Start(t testing.TB, opts Options) *Pebble {
	t.Helper()
	p, err := New(opts)
	if err != nil {
		t.Fatalf("testpebble: %v", err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("pebble log (%s):\n%s", p.dirURL, p.Log())
		}
	})
	return p
}

// New starts a Pebble and waits until it answers. The caller must Stop it.
func New(opts Options) (*Pebble, error) {
	if opts.DNS == "" && !opts.AlwaysValid {
		return nil, errors.New("testpebble: Options.DNS is empty: Pebble would validate through the system resolver (set DNS, or AlwaysValid)")
	}
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	modDir, err := moduleDir()
	if err != nil {
		return nil, err
	}
	// Picking a free port and binding it are two steps, so another process
	// can win a port in between; Pebble then exits, and a retry picks again.
	for attempt := 1; ; attempt++ {
		p, err := launch(bin, modDir, opts)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, errEarlyExit) || attempt == 3 {
			return nil, err
		}
	}
}

// launch writes the config, starts the process and waits for both listeners.
func launch(bin, modDir string, opts Options) (*Pebble, error) {
	certs := filepath.Join(modDir, "test", "certs")
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	p := &Pebble{
		dirURL:   fmt.Sprintf("https://127.0.0.1:%d/dir", ports[0]),
		mgmtURL:  fmt.Sprintf("https://127.0.0.1:%d", ports[1]),
		minica:   filepath.Join(certs, "pebble.minica.pem"),
		httpPort: cmp.Or(opts.HTTPPort, ports[2]),
		tlsPort:  cmp.Or(opts.TLSPort, ports[3]),
		exited:   make(chan struct{}),
	}
	p.client, err = clientTrusting(p.minica)
	if err != nil {
		return nil, err
	}
	p.workDir, err = os.MkdirTemp("", "testpebble-")
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(p.workDir, "pebble-config.json")
	cfg, err := json.MarshalIndent(map[string]any{"pebble": config(opts, p, certs, ports)}, "", "  ")
	if err == nil {
		err = os.WriteFile(cfgFile, cfg, 0o600)
	}
	if err != nil {
		os.RemoveAll(p.workDir)
		return nil, err
	}

	args := []string{"-config", cfgFile}
	if opts.DNS != "" {
		args = append(args, "-dnsserver", opts.DNS)
	}
	if opts.Strict {
		args = append(args, "-strict")
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = p.workDir
	p.cmd.Env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",
		"PEBBLE_WFE_NONCEREJECT=0",
		"PEBBLE_AUTHZREUSE="+strconv.Itoa(opts.AuthzReuse),
		"PEBBLE_ALTERNATE_ROOTS="+strconv.Itoa(opts.AlternateRoots),
		"PEBBLE_VA_ALWAYS_VALID="+boolEnv(opts.AlwaysValid),
	)
	if opts.ChainLength > 0 {
		p.cmd.Env = append(p.cmd.Env, "PEBBLE_CHAIN_LENGTH="+strconv.Itoa(opts.ChainLength))
	}
	p.cmd.Env = append(p.cmd.Env, opts.Env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
	if err := p.cmd.Start(); err != nil {
		os.RemoveAll(p.workDir)
		return nil, fmt.Errorf("start pebble: %w", err)
	}
	p.pid = p.cmd.Process.Pid
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-p.exited:
			p.Stop()
			return nil, fmt.Errorf("%w:\n%s", errEarlyExit, p.Log())
		default:
		}
		err := p.ready()
		if err == nil {
			return p, nil
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("pebble not ready after %s: %v\n%s", startTimeout, err, p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// config is the "pebble" object of the JSON config file.
func config(opts Options, p *Pebble, certs string, ports []int) map[string]any {
	profiles := opts.Profiles
	if profiles == nil {
		profiles = DefaultProfiles()
	}
	type profile struct {
		Description       string `json:"description"`
		ValidityPeriod    uint64 `json:"validityPeriod"`
		PromoteCommonName bool   `json:"promoteCommonName,omitempty"`
	}
	ps := make(map[string]profile, len(profiles))
	for name, pr := range profiles {
		ps[name] = profile{pr.Description, uint64(pr.Validity / time.Second), pr.PromoteCommonName}
	}
	cfg := map[string]any{
		"listenAddress":                  strings.TrimSuffix(strings.TrimPrefix(p.dirURL, "https://"), "/dir"),
		"managementListenAddress":        strings.TrimPrefix(p.mgmtURL, "https://"),
		"certificate":                    filepath.Join(certs, "localhost", "cert.pem"),
		"privateKey":                     filepath.Join(certs, "localhost", "key.pem"),
		"httpPort":                       p.httpPort,
		"tlsPort":                        p.tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": len(opts.EABKeys) > 0,
		"externalAccountMACKeys":         opts.EABKeys,
		"domainBlocklist":                opts.BlockedDomains,
		"caaIdentities":                  opts.CAAIdentities,
		"keyAlgorithm":                   cmp.Or(opts.KeyAlgorithm, "ecdsa"),
		"retryAfter": map[string]int{
			"authz": cmp.Or(opts.RetryAfterAuthz, 1),
			"order": cmp.Or(opts.RetryAfterOrder, 1),
		},
		"profiles": ps,
	}
	for k, v := range opts.Config {
		cfg[k] = v
	}
	return cfg
}

// ready checks both listeners: the ACME directory and the management API
// (Pebble starts the latter in a goroutine of its own).
func (p *Pebble) ready() error {
	for _, u := range []string{p.dirURL, p.mgmtURL + "/roots/0"} {
		resp, err := p.client.Get(u)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", u, resp.Status)
		}
	}
	return nil
}

// Stop kills Pebble, waits for it to exit and removes its working
// directory. Stopping a stopped Pebble does nothing.
func (p *Pebble) Stop() {
	p.stopOnce.Do(func() {
		if p.cmd != nil && p.cmd.Process != nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		os.RemoveAll(p.workDir)
	})
}

// DirURL is the ACME directory URL, https://127.0.0.1:<port>/dir.
func (p *Pebble) DirURL() string { return p.dirURL }

// ManagementURL is the base URL of the management API
// (https://127.0.0.1:<port>), which serves /roots/<i>, /intermediates/<i>,
// /cert-status-by-serial/<hex> and more.
func (p *Pebble) ManagementURL() string { return p.mgmtURL }

// MinicaPath is the PEM file of the root that signed Pebble's own HTTPS
// certificate (both listeners): what an ACME client must trust to reach
// DirURL (LEGO_CA_CERTIFICATES, REQUESTS_CA_BUNDLE, acmegw's
// ca_certificates). It is not the root of the certificates Pebble issues;
// that is Root(0).
func (p *Pebble) MinicaPath() string { return p.minica }

// HTTPClient is an HTTPS client trusting MinicaPath, for DirURL and the
// management API.
func (p *Pebble) HTTPClient() *http.Client { return p.client }

// PID is the process id, for CPU and memory sampling.
func (p *Pebble) PID() int { return p.pid }

// HTTPPort and TLSPort are the ports Pebble's VA connects to for http-01 and
// tls-alpn-01.
func (p *Pebble) HTTPPort() int { return p.httpPort }

// TLSPort: see HTTPPort.
func (p *Pebble) TLSPort() int { return p.tlsPort }

// Exited is closed once the process has ended (after Stop, or a crash).
func (p *Pebble) Exited() <-chan struct{} { return p.exited }

// Log is everything Pebble printed so far (its own log and its VA's).
func (p *Pebble) Log() string { return p.log.String() }

// LogOnFailure logs, when t ends failed, what Pebble printed since this
// call: for a shared Pebble, the part of its log that belongs to t.
func (p *Pebble) LogOnFailure(t testing.TB) {
	from := p.log.Len()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble log since the test started (%s):\n%s", p.dirURL, p.log.From(from))
		}
	})
}

// get fetches a management API path.
func (p *Pebble) get(path string) (int, []byte, error) {
	resp, err := p.client.Get(p.mgmtURL + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// RootPEM is Pebble's issuing root number i, PEM-encoded: 0 is the root of
// the default chain, 1..AlternateRoots those of the alternate chains.
func (p *Pebble) RootPEM(i int) ([]byte, error) {
	return p.certPEM("/roots/" + strconv.Itoa(i))
}

// IntermediatePEM is the intermediate next to root i, PEM-encoded.
func (p *Pebble) IntermediatePEM(i int) ([]byte, error) {
	return p.certPEM("/intermediates/" + strconv.Itoa(i))
}

func (p *Pebble) certPEM(path string) ([]byte, error) {
	code, body, err := p.get(path)
	if err != nil {
		return nil, fmt.Errorf("pebble %s: %w", path, err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("pebble %s: HTTP %d: %s", path, code, bytes.TrimSpace(body))
	}
	return body, nil
}

// Root is RootPEM(i) parsed.
func (p *Pebble) Root(i int) (*x509.Certificate, error) {
	b, err := p.RootPEM(i)
	if err != nil {
		return nil, err
	}
	return parsePEMCert(b)
}

// RootsPEM is every issuing root (0..AlternateRoots) in one PEM bundle, for
// a client's trust store.
func (p *Pebble) RootsPEM() ([]byte, error) {
	var all []byte
	for i := 0; ; i++ {
		code, body, err := p.get("/roots/" + strconv.Itoa(i))
		if err != nil {
			return nil, fmt.Errorf("pebble /roots/%d: %w", i, err)
		}
		if code == http.StatusNotFound && i > 0 {
			return all, nil
		}
		if code != http.StatusOK {
			return nil, fmt.Errorf("pebble /roots/%d: HTTP %d: %s", i, code, bytes.TrimSpace(body))
		}
		all = append(all, body...)
	}
}

// RootPool is a pool of every issuing root, for verifying what Pebble issued.
func (p *Pebble) RootPool() (*x509.CertPool, error) {
	b, err := p.RootsPEM()
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("pebble roots: no certificate")
	}
	return pool, nil
}

// CertStatus is Pebble's view of one certificate it issued.
type CertStatus struct {
	Status      string // "Valid" or "Revoked"
	Serial      string // lower-case hex
	Certificate string // PEM
	Reason      *uint  // RFC 5280 reason code, when revoked with one
	RevokedAt   string // RFC 3339, when revoked
}

// Revoked says whether Pebble has revoked the certificate.
func (s CertStatus) Revoked() bool { return s.Status == "Revoked" }

// CertStatus asks the management API about the certificate with the given
// serial number. A serial Pebble never issued gives ErrNotFound.
func (p *Pebble) CertStatus(serial *big.Int) (CertStatus, error) {
	var st CertStatus
	path := "/cert-status-by-serial/" + serial.Text(16)
	code, body, err := p.get(path)
	switch {
	case err != nil:
		return st, fmt.Errorf("pebble %s: %w", path, err)
	case code == http.StatusNotFound:
		return st, fmt.Errorf("%w: serial %s", ErrNotFound, serial.Text(16))
	case code != http.StatusOK:
		return st, fmt.Errorf("pebble %s: HTTP %d: %s", path, code, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("pebble %s: %w: %s", path, err, body)
	}
	return st, nil
}

// Shared is a Pebble shared by the tests of a package: started by the first
// Start, stopped by Stop from TestMain after m.Run. The zero value is ready
// to use.
type Shared struct {
	once sync.Once
	p    *Pebble
	err  error
}

// Start returns the shared Pebble, starting it with opts on the first call;
// later calls ignore opts. If starting failed, every call fails its t with
// that error. Each test should call LogOnFailure itself.
func (s *Shared) Start(t testing.TB, opts Options) *Pebble {
	t.Helper()
	s.once.Do(func() { s.p, s.err = New(opts) })
	if s.err != nil {
		t.Fatalf("testpebble: shared Pebble: %v", s.err)
	}
	return s.p
}

// Stop stops the shared Pebble if it was started. Safe to call more than
// once.
func (s *Shared) Stop() {
	s.once.Do(func() { s.err = errors.New("stopped before first use") })
	if s.p != nil {
		s.p.Stop()
	}
}

var build struct {
	once sync.Once
	bin  string
	err  error
}

// binary builds Pebble once per process and returns the executable's path.
func binary() (string, error) {
	build.once.Do(func() { build.bin, build.err = buildPebble() })
	return build.bin, build.err
}

// buildPebble runs go build into the cache directory under a temporary
// name, then renames the result into place, so concurrent test processes
// never see a half-written executable and one already running is untouched.
func buildPebble() (string, error) {
	version, err := goList("{{.Version}}")
	if err != nil {
		return "", err
	}
	dir, err := cacheDir()
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "pebble-*.tmp")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name()) // left over only if the build failed
	out, err := exec.Command("go", "build", "-o", tmp.Name(), Module+"/cmd/pebble").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s/cmd/pebble: %v\n%s", Module, err, out)
	}
	bin := filepath.Join(dir, "pebble-"+sanitize(version))
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// cacheDir is where built Pebble executables live.
func cacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "acmegw-testpebble")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

var modDir struct {
	once sync.Once
	dir  string
	err  error
}

// moduleDir is Pebble's module directory, which ships the certificates its
// HTTPS listeners use. go build has downloaded the module by then.
func moduleDir() (string, error) {
	modDir.once.Do(func() {
		modDir.dir, modDir.err = goList("{{.Dir}}")
		if modDir.err == nil && modDir.dir == "" {
			modDir.err = fmt.Errorf("module %s is not downloaded", Module)
		}
	})
	return modDir.dir, modDir.err
}

func goList(format string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", format, Module).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			out = ee.Stderr
		}
		return "", fmt.Errorf("go list -m %s (run inside the acmegw module): %v %s", Module, err, bytes.TrimSpace(out))
	}
	return strings.TrimSpace(string(out)), nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ' ' {
			return '_'
		}
		return r
	}, s)
}

func clientTrusting(caFile string) (*http.Client, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}, nil
}

func parsePEMCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("pebble: no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// freePorts picks n distinct unused loopback TCP ports, holding each open
// until all are picked so that none is handed out twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

func boolEnv(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
