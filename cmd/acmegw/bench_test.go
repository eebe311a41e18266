package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acmegw/acmegw/internal/bench"
	"github.com/acmegw/acmegw/internal/testredis"
)

// TestBench runs the load generator's logic for a handful of certificates
// against the real binary, with the bench's own DNS server as the gateway's
// resolver.
func TestBench(t *testing.T) {
	dnsSrv, err := bench.ListenDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dnsSrv.Close)
	// The later --dns-resolver wins over the one startGateway passes.
	gw := startGateway(t, gatewayOptions{Args: []string{"--dns-resolver", dnsSrv.Addr(), "--log-level", "info"}})

	const clients, perClient = 4, 2
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := bench.Run(ctx, bench.Config{
		Directory:    gw.DirURL,
		RootCAs:      gw.RootPool(t),
		Clients:      clients,
		Certificates: clients * perClient,
		NamesPerCert: 2,
		TXT:          dnsSrv,
		ServerPIDs:   []int{gw.cmd.Process.Pid},
	})
	if err != nil {
		t.Fatal(err)
	}
	var report bytes.Buffer
	if err := res.WriteText(&report); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", report.String())
	if res.ErrorsTotal != 0 || res.Certificates != clients*perClient {
		t.Fatalf("want %d certificates and no errors, got %d certificates, errors %v %v",
			clients*perClient, res.Certificates, res.Errors, res.ErrorSamples)
	}
	counts := map[string]int{}
	for _, e := range res.Endpoints {
		counts[e.Name] = e.Count
	}
	for _, ep := range []string{"newNonce", "newAccount", "newOrder", "authz", "challenge", "finalize", "cert download"} {
		if counts[ep] == 0 {
			t.Errorf("no %s requests recorded: %v", ep, counts)
		}
	}
	if got, want := counts["newAccount"], clients; got != want {
		t.Errorf("%d newAccount requests, want one per client (%d)", got, want)
	}
	if got, want := counts["challenge"], 2*clients*perClient; got != want {
		t.Errorf("%d challenge requests, want one per name (%d)", got, want)
	}
	if len(res.Server) != 1 || res.Server[0].RSSBytes == 0 || res.Server[0].Command != "acmegw" {
		t.Errorf("server stats %+v", res.Server)
	}
	if n := dnsSrv.Len(); n != 0 {
		t.Errorf("%d names still hold TXT records after the run", n)
	}
}

// TestBenchCommand drives "acmegw bench" and "acmegw bench compare" as a
// user would, through the binary.
func TestBenchCommand(t *testing.T) {
	dnsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freeUDPTCPPort(t)))
	gw := startGateway(t, gatewayOptions{Args: []string{"--dns-resolver", dnsAddr, "--log-level", "info"}})

	// The server's CPU time comes from /proc in clock ticks (10 ms), so
	// the run must cost the server well over one tick for the figure to
	// be non-zero: 40 certificates take some 60 ms of its CPU, 4 did not
	// always cross a tick.
	const certificates = 40
	out := filepath.Join(t.TempDir(), "result.json")
	cmd := exec.Command(binary, "bench",
		"--directory", gw.DirURL, "--ca-cert", gw.RootPath,
		"--clients", "2", "--certificates", strconv.Itoa(certificates),
		"--dns-listen", dnsAddr,
		"--server-pid", strconv.Itoa(gw.cmd.Process.Pid),
		"--name", "acmegw-test", "--json", out, "--quiet")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("acmegw bench: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	for _, want := range []string{"certificates/s:", "time to certificate: p50", "finalize", "ms/certificate"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, stdout.String())
		}
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res bench.Result
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if res.Certificates != certificates || res.ErrorsTotal != 0 || res.ServerCPUMsPerCert <= 0 || res.Name != "acmegw-test" {
		t.Fatalf("result: %d certificates, errors %v, %.3f server ms/cert, name %q\n%s",
			res.Certificates, res.ErrorSamples, res.ServerCPUMsPerCert, res.Name, raw)
	}

	md, err := exec.Command(binary, "bench", "compare", out, out).CombinedOutput()
	if err != nil {
		t.Fatalf("acmegw bench compare: %v\n%s", err, md)
	}
	for _, want := range []string{"| | acmegw-test | acmegw-test |", "**certificates/s**", "1.0×"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("comparison lacks %q:\n%s", want, md)
		}
	}
	md, err = exec.Command(binary, "bench", "compare", "--no-ratio", out, out).CombinedOutput()
	if err != nil {
		t.Fatalf("acmegw bench compare --no-ratio: %v\n%s", err, md)
	}
	if !strings.Contains(string(md), "**certificates/s**") || strings.Contains(string(md), "relative to") {
		t.Errorf("comparison with --no-ratio has no table or still a ratio row:\n%s", md)
	}
}

// freeUDPTCPPort finds a loopback port free for both UDP and TCP.
func freeUDPTCPPort(t testing.TB) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		pc.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// BenchmarkIssuance runs full issuances against an in-process server (the
// real serve(), on memory and on Redis) so that a CPU profile shows where
// the server's time goes:
//
//	go test -run '^$' -bench Issuance -benchtime 2000x -cpuprofile cpu.out ./cmd/acmegw
//	go tool pprof -top -focus 'acme\.\(\*Server\)\.ServeHTTP|acme\.\(\*Server\)\.startValidation' cpu.out
//
// The profile also holds the bench client's own CPU; focus on the server's
// frames as above. It reports server+client CPU per certificate.
func BenchmarkIssuance(b *testing.B) {
	for _, store := range []string{"memory", "redis"} {
		b.Run(store, func(b *testing.B) {
			var args []string
			if store == "redis" {
				args = append(args, "--redis", testredis.Start(b))
			}
			benchmarkIssuance(b, args)
		})
	}
}

func benchmarkIssuance(b *testing.B, extra []string) {
	dnsSrv, err := bench.ListenDNS("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer dnsSrv.Close()
	dataDir := b.TempDir()
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(b)))
	args := append([]string{
		"--listen", listen, "--data-dir", dataDir, "--dns-resolver", dnsSrv.Addr(),
		"--validation-allow-private", "--log-level", "error",
	}, extra...)
	done := make(chan error, 1)
	go func() { done <- serve(args) }()
	// serve stops on SIGINT, which it catches while it runs; signalling this
	// process is how the benchmark ends it.
	defer func() {
		_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
		if err := <-done; err != nil {
			b.Errorf("serve: %v", err)
		}
	}()
	dirURL := "https://" + listen + "/directory"
	roots := waitForServer(b, dirURL, filepath.Join(dataDir, "root.pem"), done)

	clients := 32
	if b.N < clients {
		clients = b.N
	}
	b.ResetTimer()
	res, err := bench.Run(context.Background(), bench.Config{
		Directory:    dirURL,
		RootCAs:      roots,
		Clients:      clients,
		Certificates: b.N,
		TXT:          dnsSrv,
		ServerPIDs:   []int{os.Getpid()},
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if res.ErrorsTotal != 0 {
		b.Fatalf("errors: %v %v", res.Errors, res.ErrorSamples)
	}
	b.ReportMetric(res.CertsPerSecond, "certs/s")
	b.ReportMetric(res.ServerCPUMsPerCert, "cpu-ms/cert(server+client)")
	b.ReportMetric(res.TimeToCert.P50, "p50-ms")
}

// waitForServer waits until the in-process server answers its directory.
func waitForServer(b *testing.B, dirURL, rootPath string, done <-chan error) *x509.CertPool {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			b.Fatalf("serve ended: %v", err)
		default:
		}
		if pemBytes, err := os.ReadFile(rootPath); err == nil {
			pool := x509.NewCertPool()
			if pool.AppendCertsFromPEM(pemBytes) {
				hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
				if resp, err := hc.Get(dirURL); err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						return pool
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatal(fmt.Errorf("in-process server did not answer %s within 30s", dirURL))
	return nil
}
