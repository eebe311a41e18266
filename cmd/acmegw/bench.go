package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/acmegw/acmegw/internal/bench"
)

const benchUsage = `Usage:
  acmegw bench --directory URL [--ca-cert root.pem | --insecure] --dns-listen 127.0.0.1:PORT
               [--clients 64] [--duration 30s | --certificates N] [--server-pid PID[,PID...]]
               [--names-per-cert 1] [--key-type ec256] [--json out.json] [flags]
  acmegw bench compare [--out FILE] [--no-ratio] RESULT.json...

bench runs concurrent ACME clients, each with its own account, that loop
full dns-01 issuances against the server and reports certificates/s, time to
certificate, per-endpoint latency, errors by problem type and, with
--server-pid, the server's CPU time per certificate and memory. The bench
answers dns-01 from its own DNS server on --dns-listen: start the server under
test with that address as its resolver (acmegw --dns-resolver, Pebble
-dnsserver). compare prints saved --json results side by side as Markdown, with
certificates/s relative to the last one unless --no-ratio.

Flags:
`

func benchCommand(args []string) error {
	if len(args) > 0 && args[0] == "compare" {
		return benchCompare(args[1:])
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	var (
		cfg      bench.Config
		caCert   = fs.String("ca-cert", "", "PEM file with the root that signs the server's HTTPS certificate")
		dnsAddr  = fs.String("dns-listen", "", "HOST:PORT for the bench's dns-01 DNS server (UDP and TCP); the server under test must resolve through it")
		pids     = fs.String("server-pid", "", "comma-separated process ids whose CPU time and memory to measure (e.g. the server and its Redis)")
		jsonOut  = fs.String("json", "", "also write the result as JSON to this file (- for stdout)")
		name     = fs.String("name", "", "label of this run in reports (default: the directory URL)")
		quiet    = fs.Bool("quiet", false, "no progress lines on stderr")
		duration = fs.Duration("duration", 30*time.Second, "how long to start new issuances (ignored with --certificates)")
	)
	fs.StringVar(&cfg.Directory, "directory", "", "directory URL of the ACME server under test")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "do not verify the server's HTTPS certificate")
	fs.BoolVar(&cfg.HTTP1, "http1", false, "use HTTP/1.1 keep-alive instead of HTTP/2")
	fs.IntVar(&cfg.Clients, "clients", 64, "concurrent clients, each with its own account")
	fs.IntVar(&cfg.Certificates, "certificates", 0, "issue this many certificates in total, then stop")
	fs.IntVar(&cfg.NamesPerCert, "names-per-cert", 1, "DNS names per certificate")
	fs.StringVar(&cfg.KeyType, "key-type", "ec256", "certificate key: ec256, ec384, rsa2048, rsa3072")
	fs.StringVar(&cfg.Domain, "domain", "", "make names <random>.DOMAIN (default: each certificate its own registered domain bench-<random>.test, so per-domain rate limits do not trip)")
	fs.DurationVar(&cfg.PollInterval, "poll-interval", time.Second, "wait between polls when the server sends no Retry-After")
	fs.DurationVar(&cfg.MaxRetryAfter, "max-retry-after", time.Second, "cap on a Retry-After wait")
	fs.DurationVar(&cfg.IssueTimeout, "issue-timeout", 2*time.Minute, "give up on one issuance after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected arguments %q", fs.Args())
	}
	if cfg.Directory == "" {
		return errors.New("bench: --directory is required")
	}
	if *dnsAddr == "" {
		return errors.New("bench: --dns-listen is required (the server under test must use it as its resolver)")
	}
	if *caCert == "" && !cfg.Insecure {
		return errors.New("bench: give --ca-cert (the root of the server's HTTPS certificate) or --insecure")
	}
	if *caCert != "" {
		pemBytes, err := os.ReadFile(*caCert)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pemBytes) {
			return fmt.Errorf("bench: no PEM certificate in %s", *caCert)
		}
	}
	if cfg.Certificates <= 0 {
		cfg.Duration = *duration
	}
	for p := range strings.SplitSeq(*pids, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		pid, err := strconv.Atoi(p)
		if err != nil || pid <= 0 {
			return fmt.Errorf("bench: --server-pid %q is not a process id", p)
		}
		cfg.ServerPIDs = append(cfg.ServerPIDs, pid)
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}

	dnsSrv, err := bench.ListenDNS(*dnsAddr)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer dnsSrv.Close()
	cfg.TXT = dnsSrv

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	res.Name = *name
	res.Command = "acmegw bench " + strings.Join(args, " ")
	if err := res.WriteText(os.Stdout); err != nil {
		return err
	}
	if *jsonOut != "" {
		if err := writeJSONFile(*jsonOut, res); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	return nil
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func benchCompare(args []string) error {
	fs := flag.NewFlagSet("bench compare", flag.ContinueOnError)
	out := fs.String("out", "", "write the Markdown here instead of stdout")
	noRatio := fs.Bool("no-ratio", false, "leave out the certificates/s ratio to the last result (for runs of one server at different loads)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("bench compare: give one or more --json result files")
	}
	var results []*bench.Result
	for _, path := range fs.Args() {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("bench compare: %w", err)
		}
		var r bench.Result
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("bench compare: %s: %w", path, err)
		}
		results = append(results, &r)
	}
	var w io.Writer = os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("bench compare: %w", err)
		}
		defer f.Close()
		w = f
	}
	return bench.WriteComparison(w, results, !*noRatio)
}
