package acmeup

import (
	"crypto/x509"
	"fmt"
	"math/big"
	"os"
	"sync"
	"testing"

	"github.com/acmegw/acmegw/internal/testpebble"
	"github.com/acmegw/acmegw/validation/validationtest"
)

// The tests run a real Pebble (internal/testpebble) with its VA resolving
// through a validationtest.DNSServer on loopback. One Pebble and one DNS
// server serve the whole package, started on first use and stopped after
// the last test; tests that need another Pebble configuration (EAB) start
// their own.

// blockedDomain is refused by the shared Pebble's policy (rejectedIdentifier).
const blockedDomain = "blocked.acmeup.test"

// pebble is a running Pebble as the tests of this package use it.
type pebble struct {
	*testpebble.Pebble
	Directory string // https://127.0.0.1:<port>/dir
	caFile    string // minica root that signed Pebble's HTTPS certificate
}

// pebbleOptions are what the tests vary between Pebbles.
type pebbleOptions struct {
	eabKeys map[string]string // kid → base64url HMAC; non-empty requires EAB
}

// testpebbleOptions is the Pebble every test of this package expects.
func testpebbleOptions(dnsAddr string, opts pebbleOptions) testpebble.Options {
	return testpebble.Options{
		DNS:            dnsAddr,
		EABKeys:        opts.eabKeys,
		BlockedDomains: []string{blockedDomain},
		AuthzReuse:     100, // the account-reuse test relies on it
		AlternateRoots: 1,   // one alternate chain, for Result.Alternates
		ChainLength:    2,   // leaf, two intermediates, root
		// Profiles: testpebble's defaults, "default" and "shortlived" (6 days).
	}
}

func wrap(p *testpebble.Pebble) *pebble {
	return &pebble{Pebble: p, Directory: p.DirURL(), caFile: p.MinicaPath()}
}

// startPebble starts a Pebble of its own and registers its Stop with
// cleanup (t.Cleanup).
func startPebble(dnsAddr string, opts pebbleOptions, cleanup func(func())) (*pebble, error) {
	p, err := testpebble.New(testpebbleOptions(dnsAddr, opts))
	if err != nil {
		return nil, err
	}
	cleanup(p.Stop)
	return wrap(p), nil
}

var (
	sharedPebble testpebble.Shared
	dnsOnce      sync.Once
	sharedDNS    *validationtest.DNSServer
	dnsErr       error
	cleanupsMu   sync.Mutex
	cleanups     []func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	sharedPebble.Stop()
	cleanupsMu.Lock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanupsMu.Unlock()
	os.Exit(code)
}

// mainTB lets validationtest.NewDNSServer live for the whole package rather
// than one test: its Cleanup runs from TestMain after the last test, and a
// Fatalf during setup panics into shared's recover.
type mainTB struct{ testing.TB }

func (mainTB) Helper() {}
func (mainTB) Cleanup(f func()) {
	cleanupsMu.Lock()
	defer cleanupsMu.Unlock()
	cleanups = append(cleanups, f)
}
func (mainTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (mainTB) Logf(format string, args ...any)   {}

// shared returns the package's Pebble and DNS server, starting them once.
func shared(t *testing.T) (*pebble, *validationtest.DNSServer) {
	t.Helper()
	dnsOnce.Do(func() {
		defer func() {
			if p := recover(); p != nil {
				dnsErr = fmt.Errorf("%v", p)
			}
		}()
		sharedDNS = validationtest.NewDNSServer(mainTB{})
	})
	if dnsErr != nil {
		t.Fatalf("starting the DNS server: %v", dnsErr)
	}
	return wrap(sharedPebble.Start(t, testpebbleOptions(sharedDNS.Addr(), pebbleOptions{}))), sharedDNS
}

// root returns Pebble's root certificate number i (0 is the default chain's).
func (p *pebble) root(t *testing.T, i int) *x509.Certificate {
	t.Helper()
	c, err := p.Root(i)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// certStatus asks Pebble's management API about a serial (hex).
func (p *pebble) certStatus(t *testing.T, serialHex string) testpebble.CertStatus {
	t.Helper()
	serial, ok := new(big.Int).SetString(serialHex, 16)
	if !ok {
		t.Fatalf("serial %q is not hex", serialHex)
	}
	st, err := p.CertStatus(serial)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// dumpLog prints what Pebble logged during t when t failed, which is where
// the upstream side of a failure shows.
func (p *pebble) dumpLog(t *testing.T) { p.LogOnFailure(t) }
