package main

import (
	"cmp"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmegw/acmegw/internal/interop"
	"github.com/acmegw/acmegw/internal/testpebble"
	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/validation/validationtest"
)

// The client interoperability matrix (internal/interop): every client runs
// every flow it supports against acmegw and against Pebble. A flow that
// passes on Pebble and fails on acmegw fails this test; everything else is
// recorded, and written to docs/INTEROP.md by scripts/interop.
//
// Environment:
//
//	ACMEGW_INTEROP_OUT       write the Markdown report to this file
//	ACMEGW_INTEROP_CLIENTS   comma-separated clients to run (default: all; no report then)
//	ACMEGW_INTEROP_FLOWS     comma-separated flows to run (default: all; no report then)
//	ACMEGW_INTEROP_PARALLEL  lanes (client × server) running at once (default 8)
//	ACMEGW_INTEROP_STORE     "redis" runs the acmegw lanes on a throw-away redis-server (default memory)
//	ACMEGW_INTEROP_SLOW      a duration ("2s"): acmegw's default profile goes to a manual brand that
//	                         issues that long after finalize, so every client polls a processing order
//	                         (default: the built-in CA, which signs within the finalize request)

// interopFixes are the server-side bugs the matrix found, fixed in acme/,
// each with a regression test; docs/INTEROP.md lists them.
var interopFixes = []string{}

func TestInterop(t *testing.T) {
	start := time.Now()
	dns := validationtest.NewDNSServer(t)
	drivers := interop.Drivers(interop.Tools{Lego: legoBinary(t)})
	for _, d := range drivers {
		if err := d.Check(); err != nil {
			t.Fatal(err)
		}
	}
	clients, flows, filtered := interopSelection(t, drivers)
	// A missing client fails the test under ACMEGW_REQUIRE_CLIENTS=1 (as in
	// scripts/test); otherwise the matrix runs without it.
	clients = slices.DeleteFunc(slices.Clone(clients), func(d *interop.Driver) bool {
		for _, p := range d.Programs {
			if _, err := exec.LookPath(p); err != nil {
				if os.Getenv(envRequireClients) == "1" {
					t.Errorf("%s needs %s, which is not installed (%s=1): %v", d.Name, p, envRequireClients, err)
				} else {
					t.Logf("leaving %s out of the matrix: %s is not installed", d.Name, p)
				}
				filtered = true
				return true
			}
		}
		return false
	})
	if t.Failed() {
		t.FailNow()
	}
	servers := []string{interop.ServerAcmegw, interop.ServerPebble}
	parallel := 8
	if v, err := strconv.Atoi(os.Getenv("ACMEGW_INTEROP_PARALLEL")); err == nil && v > 0 {
		parallel = v
	}

	var m interop.Matrix
	m.SetVersion(interop.ServerAcmegw, acmegwVersion())
	m.SetVersion(interop.ServerPebble, goModuleVersion(testpebble.Module))

	// The slowest clients start first so that they do not form the tail.
	lanesFirst := []string{"certbot", "dehydrated", "uacme", "acme-tiny", "lego-cli"}
	order := slices.Clone(clients)
	slices.SortStableFunc(order, func(a, b *interop.Driver) int {
		ia, ib := slices.Index(lanesFirst, a.Name), slices.Index(lanesFirst, b.Name)
		if ia < 0 {
			ia = len(lanesFirst)
		}
		if ib < 0 {
			ib = len(lanesFirst)
		}
		return ia - ib
	})
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, d := range order {
		m.SetVersion(d.Name, d.Version())
		for _, kind := range servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				t.Run(d.Name+"/"+kind, func(t *testing.T) {
					httpPort, tlsPort := interop.SolverPort(t), interop.SolverPort(t)
					var s *interop.Server
					switch {
					case kind == interop.ServerAcmegw && os.Getenv("ACMEGW_INTEROP_STORE") == "redis":
						s = interopGateway(t, dns, httpPort, tlsPort, false, testredis.Start(t))
					case kind == interop.ServerAcmegw:
						s = interopGateway(t, dns, httpPort, tlsPort, false)
					default:
						s = interop.StartPebble(t, interop.PebbleOptions{DNS: dns, HTTPPort: httpPort, TLSPort: tlsPort})
					}
					interop.RunLane(t, &m, d, s, flows)
				})
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)

	for _, v := range m.Violations() {
		t.Errorf("%s", v)
	}
	for _, r := range m.FailedOnBoth() {
		t.Logf("fails on acmegw and Pebble alike (check the driver): %s %s: %s", r.Client, r.Flow, r.Detail)
	}
	t.Logf("interop matrix: %d lanes in %s", len(clients)*len(servers), elapsed.Round(time.Second))

	out := os.Getenv("ACMEGW_INTEROP_OUT")
	if out == "" {
		return
	}
	if filtered {
		t.Logf("ACMEGW_INTEROP_OUT ignored: the report is written only from a run of the whole matrix")
		return
	}
	brand := "its built-in CA"
	if slow := os.Getenv("ACMEGW_INTEROP_SLOW"); slow != "" {
		brand = "a brand that issues " + slow + " after finalize"
	}
	var names []string
	for _, d := range drivers {
		names = append(names, d.Name)
	}
	report := m.Markdown(interop.Report{
		Command:   "./scripts/interop",
		Generated: time.Now(),
		Runtime:   elapsed,
		Machine: fmt.Sprintf("%s/%s, %d CPUs, %s, %d lanes at once, acmegw on the %s store with %s", runtime.GOOS, runtime.GOARCH,
			runtime.NumCPU(), runtime.Version(), parallel, cmp.Or(os.Getenv("ACMEGW_INTEROP_STORE"), "memory"), brand),
		Clients: names,
		Servers: servers,
		Fixes:   interopFixes,
		Preface: "Variants, set in the environment of `./scripts/interop` (the line above says which this table ran; " +
			"`./scripts/test` runs the memory store with the built-in CA): `ACMEGW_INTEROP_STORE=redis` puts the acmegw lanes on Redis; " +
			"`ACMEGW_INTEROP_SLOW=2s` sends acmegw's default profile to a brand that issues 2 s after finalize, " +
			"so every client polls a `processing` order through `Retry-After` and `Location`; " +
			"`ACMEGW_INTEROP_CLIENTS` and `ACMEGW_INTEROP_FLOWS` pick a subset (no report then).",
	})
	if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", out)
}

// interopSelection applies ACMEGW_INTEROP_CLIENTS and ACMEGW_INTEROP_FLOWS.
func interopSelection(t *testing.T, drivers []*interop.Driver) ([]*interop.Driver, []interop.Flow, bool) {
	clients, flows, filtered := drivers, interop.Flows, false
	if v := os.Getenv("ACMEGW_INTEROP_CLIENTS"); v != "" {
		filtered = true
		clients = nil
		for name := range strings.SplitSeq(v, ",") {
			i := slices.IndexFunc(drivers, func(d *interop.Driver) bool { return d.Name == strings.TrimSpace(name) })
			if i < 0 {
				t.Fatalf("ACMEGW_INTEROP_CLIENTS: no client %q", name)
			}
			clients = append(clients, drivers[i])
		}
	}
	if v := os.Getenv("ACMEGW_INTEROP_FLOWS"); v != "" {
		filtered = true
		flows = nil
		for name := range strings.SplitSeq(v, ",") {
			f := interop.Flow(strings.TrimSpace(name))
			if !slices.Contains(interop.Flows, f) {
				t.Fatalf("ACMEGW_INTEROP_FLOWS: no flow %q", name)
			}
			flows = append(flows, f)
		}
	}
	return clients, flows, filtered
}

// interopGateway starts acmegw for the matrix: memory store, an alternate
// chain, validation on the lane's ports through dns; with eab, External
// Account Binding is required and one key is configured.
func interopGateway(t testing.TB, dns *validationtest.DNSServer, httpPort, tlsPort int, eab bool, redisURL ...string) *interop.Server {
	t.Helper()
	cfg := "ca: {alternate_chain: true}\n"
	if slow := os.Getenv("ACMEGW_INTEROP_SLOW"); slow != "" {
		cfg += fmt.Sprintf("default_profile: default\nprofiles:\n  default: {brand: slow, description: \"issues %s after finalize\"}\n"+
			"brands:\n  slow: {type: manual, issue_after: %s}\n", slow, slow)
	}
	var key *interop.EABKey
	if eab {
		mac := make([]byte, 32)
		_, _ = rand.Read(mac)
		key = &interop.EABKey{KID: "interop-eab", HMAC: base64.RawURLEncoding.EncodeToString(mac)}
		cfg += fmt.Sprintf("eab:\n  required: true\n  accounts:\n    - {kid: %s, hmac: %q}\n", key.KID, key.HMAC)
	}
	cfgPath := filepath.Join(t.TempDir(), "acmegw.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := gatewayOptions{DNS: dns, Args: []string{"--config", cfgPath,
		"--http01-port", strconv.Itoa(httpPort), "--tlsalpn01-port", strconv.Itoa(tlsPort)}}
	if len(redisURL) > 0 {
		opts.RedisURL = redisURL[0]
	}
	gw := startGateway(t, opts)
	s := &interop.Server{
		Kind:      interop.ServerAcmegw,
		DirURL:    gw.DirURL,
		TrustFile: gw.RootPath,
		Roots:     []*x509.Certificate{readPEMCert(t, gw.RootPath), readPEMCert(t, filepath.Join(gw.DataDir, "root-alt.pem"))},
		HTTPPort:  httpPort,
		TLSPort:   tlsPort,
		DNS:       dns,
		EAB:       key,
		Log:       gw.Log,
		Revoked: func(serial *big.Int) (bool, error) {
			want := "serial=" + serial.Text(16)
			for line := range strings.SplitSeq(gw.Log(), "\n") {
				if strings.Contains(line, `msg="certificate revoked"`) && strings.Contains(line, want+" ") {
					return true, nil
				}
			}
			return false, nil
		},
	}
	s.WithEAB = func(tb testing.TB) *interop.Server {
		return interopGateway(tb, dns, httpPort, tlsPort, true, redisURL...)
	}
	return s
}

func readPEMCert(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// acmegwVersion is the commit the matrix ran on.
func acmegwVersion() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return "git " + strings.TrimSpace(string(out))
}

// goModuleVersion is the version go.mod pins for a module.
func goModuleVersion(module string) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", module).Output()
	if err != nil {
		return "unknown"
	}
	return module + " " + strings.TrimSpace(string(out))
}
