package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	mathrand "math/rand/v2"
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
	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/validation/validationtest"
)

// binary is the acmegw executable built once by TestMain, so that the
// end-to-end tests drive the real program exactly as a user starts it.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "acmegw-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "acmegw")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building acmegw:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// gateway is one running acmegw process with its own DNS server and ports.
type gateway struct {
	DirURL      string
	RootPath    string
	DataDir     string
	HTTPPort    int // where http-01 validation connects: the client's solver listens here
	TLSALPNPort int // likewise for tls-alpn-01
	DNS         *validationtest.DNSServer
	RedisURL    string // empty for the memory store

	cmd    *exec.Cmd
	stderr *testlog.Buffer
	done   chan struct{}
}

// gatewayOptions tweak startGateway.
type gatewayOptions struct {
	RedisURL string                    // use this Redis instead of memory
	DataDir  string                    // share a CA between instances; default: a fresh temp dir
	DNS      *validationtest.DNSServer // share a DNS server; default: a fresh one
	Args     []string                  // extra flags
	Env      []string                  // extra environment
}

// stores lists the storage back ends every end-to-end flow runs on.
var stores = []string{"memory", "redis"}

// forEachStore runs f as a subtest against a gateway on each store.
func forEachStore(t *testing.T, f func(t *testing.T, gw *gateway)) {
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			var opts gatewayOptions
			if store == "redis" {
				opts.RedisURL = testredis.Start(t)
			}
			f(t, startGateway(t, opts))
		})
	}
}

// startGateway starts acmegw on free loopback ports and stops it when t ends.
func startGateway(t testing.TB, opts gatewayOptions) *gateway {
	t.Helper()
	gw := &gateway{
		HTTPPort:    freePort(t),
		TLSALPNPort: freePort(t),
		DNS:         opts.DNS,
		RedisURL:    opts.RedisURL,
		DataDir:     opts.DataDir,
		stderr:      &testlog.Buffer{},
		done:        make(chan struct{}),
	}
	if gw.DNS == nil {
		gw.DNS = validationtest.NewDNSServer(t)
	}
	if gw.DataDir == "" {
		gw.DataDir = t.TempDir()
	}
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	args := []string{"serve",
		"--listen", listen,
		"--data-dir", gw.DataDir,
		"--dns-resolver", gw.DNS.Addr(),
		"--http01-port", strconv.Itoa(gw.HTTPPort),
		"--tlsalpn01-port", strconv.Itoa(gw.TLSALPNPort),
		"--validation-allow-private",
		"--log-level", "debug",
	}
	if opts.RedisURL != "" {
		args = append(args, "--redis", opts.RedisURL)
	}
	args = append(args, opts.Args...)
	gw.cmd = exec.Command(binary, args...)
	gw.cmd.Env = append(os.Environ(), opts.Env...)
	gw.cmd.Stderr = gw.stderr
	stdout, err := gw.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.cmd.Start(); err != nil {
		t.Fatalf("starting acmegw: %v", err)
	}
	go func() { _ = gw.cmd.Wait(); close(gw.done) }()
	t.Cleanup(func() {
		gw.Stop()
		if t.Failed() {
			t.Logf("acmegw log:\n%s", gw.stderr.String())
		}
	})

	// The start-up banner is part of the contract README.md documents.
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(30 * time.Second)
	for gw.DirURL == "" || gw.RootPath == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("acmegw exited before printing its directory URL:\n%s", gw.stderr.String())
			}
			if v, ok := strings.CutPrefix(line, "acmegw directory: "); ok {
				gw.DirURL = v
			}
			if v, ok := strings.CutPrefix(line, "root certificate to trust: "); ok {
				gw.RootPath = v
			}
		case <-deadline:
			t.Fatalf("acmegw did not start within 30s:\n%s", gw.stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	if want := "https://" + listen + "/directory"; gw.DirURL != want {
		t.Fatalf("directory URL %q, want %q", gw.DirURL, want)
	}
	return gw
}

// Stop ends the process gracefully (SIGINT), then by force.
func (gw *gateway) Stop() {
	if gw.cmd.Process == nil {
		return
	}
	_ = gw.cmd.Process.Signal(os.Interrupt)
	select {
	case <-gw.done:
	case <-time.After(10 * time.Second):
		_ = gw.cmd.Process.Kill()
		<-gw.done
	}
}

// Kill ends the process at once, as a crash would.
func (gw *gateway) Kill() {
	_ = gw.cmd.Process.Kill()
	<-gw.done
}

// Log is what the process wrote to stderr so far.
func (gw *gateway) Log() string { return gw.stderr.String() }

// RootPool is a cert pool holding the gateway's root, for TLS clients and chain checks.
func (gw *gateway) RootPool(t testing.TB) *x509.CertPool {
	t.Helper()
	pemBytes, err := os.ReadFile(gw.RootPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("no certificate in %s", gw.RootPath)
	}
	return pool
}

// HTTPClient trusts the gateway's root.
func (gw *gateway) HTTPClient(t testing.TB) *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: gw.RootPool(t)}},
	}
}

// BaseURL is the directory URL without "/directory".
func (gw *gateway) BaseURL() string { return strings.TrimSuffix(gw.DirURL, "/directory") }

// freePort hands out a loopback port that is free now and was not handed
// out before in this process. It picks below Linux's ephemeral range
// (32768-60999), because a port from ":0" is closed before the client's
// solver binds it, and the many outgoing connections of parallel tests take
// their source ports from that range: one could take it in between.
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		p := 20000 + mathrand.IntN(12000)
		if portsGiven[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[p] = true
		return p
	}
	t.Fatal("no free loopback port between 20000 and 32000")
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// TestStartPrintsDirectory checks the zero-config start that README.md promises.
func TestStartPrintsDirectory(t *testing.T) {
	gw := startGateway(t, gatewayOptions{})
	resp, err := gw.HTTPClient(t).Get(gw.DirURL)
	if err != nil {
		t.Fatalf("GET directory with the printed root trusted: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"newOrder"`) {
		t.Fatalf("directory: %d %s", resp.StatusCode, body)
	}
	if filepath.Base(gw.RootPath) != "root.pem" || filepath.Dir(gw.RootPath) != gw.DataDir {
		t.Fatalf("root path %q, want %s/root.pem", gw.RootPath, gw.DataDir)
	}
}
