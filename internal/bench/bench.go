// Package bench is the logic of "acmegw bench", a load generator for ACME
// servers: N concurrent clients, each with its own account, loop full
// dns-01 issuances (newOrder, challenge, authorization polling, finalize,
// order polling, certificate download) while the bench answers dns-01 from
// its own authoritative DNS server, which the server under test must use as
// its resolver. It reports throughput, time to certificate, per-endpoint
// latency, errors by problem type and, given the server's process ids, the
// server's CPU time per certificate and memory.
//
// The client is a minimal hand-rolled ES256 JWS client: on a 2-core machine
// the client's CPU competes with the server's, so it avoids everything a full
// ACME library does beyond the protocol.
package bench

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config describes one run.
type Config struct {
	// Directory is the server's directory URL.
	Directory string
	// RootCAs verifies the server's certificate; nil uses the system roots.
	RootCAs *x509.CertPool
	// Insecure skips verification of the server's certificate.
	Insecure bool
	// HTTP1 disables HTTP/2 (each client then keeps one HTTP/1.1 connection alive).
	HTTP1 bool

	// Clients is the number of concurrent clients, each with its own account.
	Clients int
	// Duration bounds the run when Certificates is zero: no issuance starts
	// after it, and those under way are allowed to finish.
	Duration time.Duration
	// Certificates, when positive, is the total number of issuances to
	// attempt across all clients; the run ends when they are done.
	Certificates int
	// NamesPerCert is the number of DNS names in each order (default 1).
	NamesPerCert int
	// KeyType of the certificate keys: ec256 (default), ec384, rsa2048, rsa3072.
	KeyType string
	// Domain, if set, is the suffix of every name: "<random>.<Domain>".
	// Empty gives every certificate a registered domain of its own,
	// "bench-<random>.test" (plus "n<i>." prefixes for more names), so that
	// per-domain rate limits (acmegw's certificatesPerRegisteredDomain, 1000
	// a week by default) cannot cut a long run short.
	Domain string

	// TXT publishes dns-01 answers where the server under test looks.
	TXT TXTRecords

	// PollInterval is the wait between polls when the server sends no
	// Retry-After (default 1s); MaxRetryAfter caps a Retry-After (default 1s).
	PollInterval  time.Duration
	MaxRetryAfter time.Duration
	// IssueTimeout bounds one issuance (default 2m).
	IssueTimeout time.Duration

	// ServerPIDs are the processes whose CPU time and memory are measured
	// (the server under test, and its Redis if wanted). Linux only.
	ServerPIDs []int

	// Progress, if set, gets a line every ProgressEvery (default 5s).
	Progress      io.Writer
	ProgressEvery time.Duration
}

func (c *Config) defaults() error {
	if c.Directory == "" {
		return errors.New("no directory URL")
	}
	if c.TXT == nil {
		return errors.New("no TXT record publisher (DNS server)")
	}
	if c.Clients <= 0 {
		c.Clients = 1
	}
	if c.Certificates <= 0 && c.Duration <= 0 {
		return errors.New("need a duration or a number of certificates")
	}
	if c.NamesPerCert <= 0 {
		c.NamesPerCert = 1
	}
	if c.KeyType == "" {
		c.KeyType = "ec256"
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = time.Second
	}
	if c.IssueTimeout <= 0 {
		c.IssueTimeout = 2 * time.Minute
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 5 * time.Second
	}
	return nil
}

// recorder collects one client's measurements; merged after the run.
type recorder struct {
	latencies map[string][]time.Duration
	issues    []time.Duration
	errors    map[string]int
	samples   map[string]string // one detail per error kind
	retries   map[string]int
	last      time.Duration // when the last certificate arrived, since the issuance phase began
}

func newRecorder() *recorder {
	return &recorder{
		latencies: map[string][]time.Duration{},
		errors:    map[string]int{},
		samples:   map[string]string{},
		retries:   map[string]int{},
	}
}

func (r *recorder) latency(endpoint string, d time.Duration) {
	r.latencies[endpoint] = append(r.latencies[endpoint], d)
}

func (r *recorder) retry(kind string) { r.retries[kind]++ }

func (r *recorder) fail(err error) {
	kind, detail := errorKind(err)
	r.errors[kind]++
	if _, ok := r.samples[kind]; !ok {
		r.samples[kind] = detail
	}
}

// Run generates the load described by cfg and returns the measurements.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	tlsConf := &tls.Config{RootCAs: cfg.RootCAs, InsecureSkipVerify: cfg.Insecure, MinVersion: tls.VersionTLS12}
	clients := make([]*client, cfg.Clients)
	recs := make([]*recorder, cfg.Clients)
	for i := range clients {
		tr := &http.Transport{
			TLSClientConfig:     tlsConf.Clone(),
			ForceAttemptHTTP2:   !cfg.HTTP1,
			MaxIdleConnsPerHost: 4,
			DisableCompression:  true,
			IdleConnTimeout:     time.Minute,
		}
		if cfg.HTTP1 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		defer tr.CloseIdleConnections()
		recs[i] = newRecorder()
		c, err := newClient(&cfg, &http.Client{Transport: tr, Timeout: time.Minute}, recs[i])
		if err != nil {
			return nil, err
		}
		clients[i] = c
	}

	before, err := sampleProcs(cfg.ServerPIDs)
	if err != nil {
		return nil, err
	}
	selfBefore, busyBefore := selfCPU(), machineBusy()

	// Accounts first, all clients at once, then the issuance phase. Apart
	// from keeping account creation out of the timed phase, this spares
	// Pebble v2.10.1 a deadlock: its authorization handler holds the
	// authorization's lock while it waits for the store's read lock, which a
	// pending store write (newAccount) blocks, while newOrder's scan for a
	// reusable authorization holds the store's read lock and waits for that
	// authorization's lock.
	setupStart := time.Now()
	var setup sync.WaitGroup
	for i, c := range clients {
		setup.Add(1)
		go func() {
			defer setup.Done()
			for attempt := 0; attempt < 3 && ctx.Err() == nil; attempt++ {
				sctx, cancel := context.WithTimeout(ctx, cfg.IssueTimeout)
				err := c.setup(sctx)
				cancel()
				if err == nil {
					return
				}
				recs[i].fail(err)
				sleepCtx(ctx, 200*time.Millisecond)
			}
		}()
	}
	setup.Wait()
	setupTime := time.Since(setupStart)

	start := time.Now()
	deadline := start.Add(cfg.Duration)
	var tickets, issued, failed atomic.Int64
	next := func() bool {
		if ctx.Err() != nil {
			return false
		}
		if cfg.Certificates > 0 {
			return tickets.Add(1) <= int64(cfg.Certificates)
		}
		return time.Now().Before(deadline)
	}

	stopProgress := make(chan struct{})
	var progressDone sync.WaitGroup
	if cfg.Progress != nil {
		progressDone.Add(1)
		go func() {
			defer progressDone.Done()
			t := time.NewTicker(cfg.ProgressEvery)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case now := <-t.C:
					fmt.Fprintf(cfg.Progress, "bench: %5.1fs  %d certificates  %d errors\n",
						now.Sub(start).Seconds(), issued.Load(), failed.Load())
				}
			}
		}()
	}

	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := recs[i]
			if c.kid == "" {
				return // no account: its errors are counted already
			}
			for next() {
				ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.IssueTimeout)
				names := uniqueNames(cfg.NamesPerCert, cfg.Domain)
				t0 := time.Now()
				err := c.issue(ictx, names)
				cancel()
				if err != nil {
					rec.fail(err)
					failed.Add(1)
					continue
				}
				rec.issues = append(rec.issues, time.Since(t0))
				rec.last = time.Since(start)
				issued.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopProgress)
	progressDone.Wait()
	after, err := sampleProcs(cfg.ServerPIDs)
	if err != nil {
		return nil, err
	}
	selfAfter, busyAfter := selfCPU(), machineBusy()

	res := &Result{
		Directory:        cfg.Directory,
		Clients:          cfg.Clients,
		NamesPerCert:     cfg.NamesPerCert,
		KeyType:          cfg.KeyType,
		HTTP1:            cfg.HTTP1,
		PollInterval:     cfg.PollInterval.Seconds(),
		MaxRetryAfter:    cfg.MaxRetryAfter.Seconds(),
		Seconds:          elapsed.Seconds(),
		SetupSeconds:     setupTime.Seconds(),
		Errors:           map[string]int{},
		ErrorSamples:     map[string]string{},
		Retries:          map[string]int{},
		ClientCPUSeconds: (selfAfter - selfBefore).Seconds(),
		CPUs:             runtime.NumCPU(),
	}
	if cfg.Certificates > 0 {
		res.Requested = cfg.Certificates
	} else {
		res.RequestedSeconds = cfg.Duration.Seconds()
	}
	lat := map[string][]time.Duration{}
	var issues []time.Duration
	for _, r := range recs {
		for k, v := range r.latencies {
			lat[k] = append(lat[k], v...)
		}
		issues = append(issues, r.issues...)
		for k, v := range r.errors {
			res.Errors[k] += v
			res.ErrorsTotal += v
			if _, ok := res.ErrorSamples[k]; !ok {
				res.ErrorSamples[k] = r.samples[k]
			}
		}
		for k, v := range r.retries {
			res.Retries[k] += v
		}
		res.LastCertSeconds = max(res.LastCertSeconds, r.last.Seconds())
	}
	res.Certificates = len(issues)
	if elapsed > 0 {
		res.CertsPerSecond = float64(res.Certificates) / elapsed.Seconds()
	}
	res.TimeToCert = summarize("time to certificate", issues)
	for _, ep := range endpointOrder {
		if len(lat[ep]) > 0 {
			res.Endpoints = append(res.Endpoints, summarize(ep, lat[ep]))
		}
	}
	for i, pid := range cfg.ServerPIDs {
		p := ProcessStats{PID: pid, Command: after[i].comm, CPUSeconds: after[i].cpu.Seconds() - before[i].cpu.Seconds(),
			RSSBytes: after[i].rss, PeakRSSBytes: after[i].hwm}
		if res.Certificates > 0 {
			p.CPUMsPerCert = p.CPUSeconds * 1000 / float64(res.Certificates)
		}
		res.Server = append(res.Server, p)
		res.ServerCPUSeconds += p.CPUSeconds
	}
	if len(cfg.ServerPIDs) > 0 && res.Certificates > 0 {
		res.ServerCPUMsPerCert = res.ServerCPUSeconds * 1000 / float64(res.Certificates)
	}
	if busyBefore > 0 && busyAfter > 0 {
		res.MachineCPUSeconds = (busyAfter - busyBefore).Seconds()
		res.OtherCPUSeconds = max(0, res.MachineCPUSeconds-res.ServerCPUSeconds-res.ClientCPUSeconds)
	}
	return res, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// uniqueNames returns n fresh names (see Config.Domain), so that no order
// reuses another's authorizations.
func uniqueNames(n int, domain string) []string {
	names := make([]string, n)
	var b [10]byte
	if domain == "" {
		_, _ = rand.Read(b[:])
		base := "bench-" + b32.EncodeToString(b[:]) + ".test"
		names[0] = base
		for i := 1; i < n; i++ {
			names[i] = "n" + strconv.Itoa(i) + "." + base
		}
		return names
	}
	for i := range names {
		_, _ = rand.Read(b[:])
		names[i] = b32.EncodeToString(b[:]) + "." + domain
	}
	return names
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Stats are latency percentiles in milliseconds.
type Stats struct {
	Name  string  `json:"name"`
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

func summarize(name string, ds []time.Duration) Stats {
	s := Stats{Name: name, Count: len(ds)}
	if len(ds) == 0 {
		return s
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	// Nearest-rank percentiles.
	pct := func(p float64) float64 {
		i := int(p*float64(len(ds))+0.999999) - 1
		return ms(ds[max(0, min(i, len(ds)-1))])
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	s.P50, s.P90, s.P99, s.Max = pct(0.50), pct(0.90), pct(0.99), ms(ds[len(ds)-1])
	s.Mean = ms(sum / time.Duration(len(ds)))
	return s
}

// ProcessStats is what one server process used during the run.
type ProcessStats struct {
	PID          int     `json:"pid"`
	Command      string  `json:"command"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	CPUMsPerCert float64 `json:"cpu_ms_per_cert"`
	RSSBytes     int64   `json:"rss_bytes"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
}

// Result is the outcome of a run; it is also the --json format.
type Result struct {
	Name             string  `json:"name,omitempty"`
	Command          string  `json:"command,omitempty"`
	Directory        string  `json:"directory"`
	Clients          int     `json:"clients"`
	NamesPerCert     int     `json:"names_per_cert"`
	KeyType          string  `json:"key_type"`
	HTTP1            bool    `json:"http1,omitempty"`
	PollInterval     float64 `json:"poll_interval_seconds"`
	MaxRetryAfter    float64 `json:"max_retry_after_seconds"`
	Requested        int     `json:"requested_certificates,omitempty"`
	RequestedSeconds float64 `json:"requested_seconds,omitempty"`

	// SetupSeconds is the account-creation phase before the timed one;
	// Seconds is the issuance phase, over which certificates/s is counted.
	// Server and client CPU cover both.
	SetupSeconds float64 `json:"setup_seconds"`
	Seconds      float64 `json:"seconds"`
	Certificates int     `json:"certificates"`
	// LastCertSeconds is when the last certificate arrived, from the start
	// of the issuance phase: far below Seconds means the server stalled.
	LastCertSeconds float64 `json:"last_certificate_seconds"`
	CertsPerSecond  float64 `json:"certs_per_second"`
	TimeToCert      Stats   `json:"time_to_certificate"`
	Endpoints       []Stats `json:"endpoints"`

	ErrorsTotal  int               `json:"errors_total"`
	Errors       map[string]int    `json:"errors"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	Retries      map[string]int    `json:"retries,omitempty"`

	Server             []ProcessStats `json:"server,omitempty"`
	ServerCPUSeconds   float64        `json:"server_cpu_seconds,omitempty"`
	ServerCPUMsPerCert float64        `json:"server_cpu_ms_per_cert,omitempty"`
	ClientCPUSeconds   float64        `json:"client_cpu_seconds"`
	// MachineCPUSeconds is the CPU time the whole machine used during the
	// run; OtherCPUSeconds is what remains after the server processes and
	// the bench itself: other work competing for the cores, which makes
	// the figures pessimistic.
	MachineCPUSeconds float64 `json:"machine_cpu_seconds,omitempty"`
	OtherCPUSeconds   float64 `json:"other_cpu_seconds,omitempty"`
	CPUs              int     `json:"cpus"`
}

// ErrorKinds lists the error kinds, most frequent first.
func (r *Result) ErrorKinds() []string {
	kinds := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b string) int {
		if r.Errors[a] != r.Errors[b] {
			return r.Errors[b] - r.Errors[a]
		}
		return strings.Compare(a, b)
	})
	return kinds
}
