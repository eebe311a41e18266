package main

// "acmegw preload": fill a Redis store with many realistic orders, so that
// the gateway's cost per request can be measured against a full store
// (scripts/bench-growth, docs/GROWTH.md).

import (
	"bufio"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/local"
	"github.com/acmegw/acmegw/storage"
	redisstore "github.com/acmegw/acmegw/storage/redis"
)

const preloadUsage = `Usage:
  acmegw preload --redis URL --orders N [--accounts M] [--batch 1000] [--workers 16]
                 [--cert-share 0.7] [--two-names-share 0.4] [--days 90] [--json out.json]

preload writes N orders spread evenly over M new accounts into the Redis
store at URL, through storage/redis as the gateway writes them, to measure
the gateway against a full store (scripts/bench-growth). Each order has one
or two dns names, each with its own authorization of three challenges
(http-01, dns-01, tls-alpn-01), as newOrder creates them, and is dated at
random within the last --days days. A --cert-share of the orders is valid: its
dns-01 challenge and authorizations are valid and a certificate record (a real
leaf + intermediate PEM chain from a throw-away built-in CA, 64 different
chains reused) with its name-set index is stored. The rest is split between
abandoned pending orders and orders whose dns-01 validation failed. The
indexes the gateway keeps for reuse are written too: the order-reuse key of
every order that is not valid and the authorization-reuse key of every valid
authorization less than 30 days old (the gateway's defaults).

It prints progress, the elapsed time, and Redis's INFO memory used_memory
before and after, with the bytes per order. Workers write concurrently, each
claiming --batch orders at a time. The Redis should be a throw-away one:
nothing is cleaned up.

Flags:
`

// preloadConfig describes one preload.
type preloadConfig struct {
	RedisURL      string
	Orders        int
	Accounts      int
	Batch         int
	Workers       int
	CertShare     float64
	TwoNamesShare float64
	Days          int
	Progress      io.Writer // nil: quiet
	ProgressEvery time.Duration
}

// preloadResult is what a preload did; it is also the --json format.
type preloadResult struct {
	Orders         int64 `json:"orders"`
	Accounts       int   `json:"accounts"`
	Authorizations int64 `json:"authorizations"`
	Certificates   int64 `json:"certificates"`
	IndexKeys      int64 `json:"index_keys"`
	Retries        int64 `json:"retries"`
	Workers        int   `json:"workers"`
	Batch          int   `json:"batch"`

	AccountSeconds  float64 `json:"account_seconds"`
	OrderSeconds    float64 `json:"order_seconds"`
	OrdersPerSecond float64 `json:"orders_per_second"`

	// Redis's INFO memory used_memory: at the start, after the accounts
	// and at the end; and its key count (DBSIZE) at the start and end.
	UsedMemoryBefore   int64 `json:"used_memory_before"`
	UsedMemoryAccounts int64 `json:"used_memory_after_accounts"`
	UsedMemoryAfter    int64 `json:"used_memory_after"`
	KeysBefore         int64 `json:"keys_before"`
	KeysAfter          int64 `json:"keys_after"`
	// BytesPerOrder is the growth of used_memory while the orders were
	// written, per order; BytesPerOrderAll counts the accounts in too.
	BytesPerOrder    float64 `json:"bytes_per_order"`
	BytesPerOrderAll float64 `json:"bytes_per_order_with_accounts"`
	KeysPerOrder     float64 `json:"keys_per_order"`
	RedisVersion     string  `json:"redis_version"`

	// A few of what was written, for checks.
	SampleOrders       []string `json:"sample_orders"`
	SampleCertificates []string `json:"sample_certificates"`
	SampleAccounts     []string `json:"sample_accounts"`
}

// defaultPreloadConfig is the command's defaults.
func defaultPreloadConfig() preloadConfig {
	return preloadConfig{Batch: 1000, Workers: 16, CertShare: 0.7, TwoNamesShare: 0.4, Days: 90, ProgressEvery: 5 * time.Second}
}

func preloadCommand(args []string) error {
	fs := flag.NewFlagSet("preload", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), preloadUsage)
		fs.PrintDefaults()
	}
	cfg := defaultPreloadConfig()
	fs.StringVar(&cfg.RedisURL, "redis", os.Getenv("ACMEGW_REDIS"), "redis:// URL of the store to fill (env ACMEGW_REDIS)")
	fs.IntVar(&cfg.Orders, "orders", 0, "orders to write")
	fs.IntVar(&cfg.Accounts, "accounts", 0, "accounts to spread them over (default orders/100, at least 1)")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "orders a worker claims at a time")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "concurrent writers")
	fs.Float64Var(&cfg.CertShare, "cert-share", cfg.CertShare, "share of orders that are valid with a certificate")
	fs.Float64Var(&cfg.TwoNamesShare, "two-names-share", cfg.TwoNamesShare, "share of orders for two names (example.com and www.example.com) rather than one")
	fs.IntVar(&cfg.Days, "days", cfg.Days, "orders are dated at random within this many days back")
	jsonOut := fs.String("json", "", "also write the result as JSON to this file (- for stdout)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	fs.DurationVar(&cfg.ProgressEvery, "progress", cfg.ProgressEvery, "interval of progress lines")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("preload: unexpected arguments %q", fs.Args())
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := runPreload(ctx, cfg)
	if res != nil {
		res.writeText(os.Stdout)
	}
	if err != nil {
		return fmt.Errorf("preload: %w", err)
	}
	if *jsonOut != "" {
		if err := writeJSONFile(*jsonOut, res); err != nil {
			return fmt.Errorf("preload: %w", err)
		}
	}
	return nil
}

func (c *preloadConfig) check() error {
	if c.RedisURL == "" {
		return errors.New("--redis is required: preload fills a Redis store")
	}
	if c.Orders <= 0 {
		return errors.New("--orders must be positive")
	}
	if c.Accounts <= 0 {
		c.Accounts = max(1, c.Orders/100)
	}
	if c.Batch <= 0 {
		c.Batch = 1000
	}
	if c.Workers <= 0 {
		c.Workers = 1
	}
	if c.CertShare < 0 || c.CertShare > 1 || c.TwoNamesShare < 0 || c.TwoNamesShare > 1 {
		return errors.New("--cert-share and --two-names-share are between 0 and 1")
	}
	if c.Days <= 0 {
		c.Days = 90
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 5 * time.Second
	}
	return nil
}

// The gateway's defaults that shape the records (acme.Config and acme's
// reuse indexes).
const (
	preloadOrderLifetime = 7 * 24 * time.Hour   // OrderLifetime
	preloadAuthzValidity = 30 * 24 * time.Hour  // AuthzValidity
	preloadOrderReuseTTL = 120 * 24 * time.Hour // orderReuseTTL
	preloadCertValidity  = 90 * 24 * time.Hour  // the built-in CA's default
	preloadChains        = 32                   // template chains per name count
	preloadMaxAttempts   = 5                    // per Redis write
)

// preloader holds what the workers share.
type preloader struct {
	cfg      preloadConfig
	store    *redisstore.Store
	accounts []string
	chains   [2][][]byte // PEM chains for one and for two names
	now      time.Time

	next                          atomic.Int64 // first order index not yet claimed
	orders, authzs, certs, idxKey atomic.Int64
	retries                       atomic.Int64

	mu      sync.Mutex
	samples preloadResult // Sample* only
}

// runPreload writes the orders and reports; on error the result so far.
func runPreload(ctx context.Context, cfg preloadConfig) (*preloadResult, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	store, err := redisstore.New(ctx, cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	// A plain client for INFO and DBSIZE, which the Store does not expose.
	opts, err := redisstore.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	info := opts.NewClient()
	defer info.Close()

	res := &preloadResult{Accounts: cfg.Accounts, Workers: cfg.Workers, Batch: cfg.Batch}
	mem, version, err := redisMemory(ctx, info)
	if err != nil {
		return nil, err
	}
	res.UsedMemoryBefore, res.RedisVersion = mem, version
	if res.KeysBefore, err = info.DBSize(ctx).Result(); err != nil {
		return nil, fmt.Errorf("redis dbsize: %w", err)
	}

	p := &preloader{cfg: cfg, store: store, now: time.Now().UTC()}
	if err := p.makeChains(ctx); err != nil {
		return nil, err
	}

	t0 := time.Now()
	if err := p.createAccounts(ctx); err != nil {
		return nil, err
	}
	res.AccountSeconds = time.Since(t0).Seconds()
	if res.UsedMemoryAccounts, _, err = redisMemory(ctx, info); err != nil {
		return nil, err
	}
	p.logf("preload: %d accounts in %.1fs; writing %d orders with %d workers", cfg.Accounts, res.AccountSeconds, cfg.Orders, cfg.Workers)

	t1 := time.Now()
	stopProgress := p.progress(ctx, info, t1)
	err = p.writeOrders(ctx)
	stopProgress()
	res.OrderSeconds = time.Since(t1).Seconds()

	res.Orders, res.Authorizations, res.Certificates = p.orders.Load(), p.authzs.Load(), p.certs.Load()
	res.IndexKeys, res.Retries = p.idxKey.Load(), p.retries.Load()
	res.SampleOrders, res.SampleCertificates, res.SampleAccounts = p.samples.SampleOrders, p.samples.SampleCertificates, p.samples.SampleAccounts
	if res.OrderSeconds > 0 {
		res.OrdersPerSecond = float64(res.Orders) / res.OrderSeconds
	}
	// Measure even after a failure: what was written is still there.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if mem, _, merr := redisMemory(mctx, info); merr == nil {
		res.UsedMemoryAfter = mem
	}
	if n, derr := info.DBSize(mctx).Result(); derr == nil {
		res.KeysAfter = n
	}
	if res.Orders > 0 {
		res.BytesPerOrder = float64(res.UsedMemoryAfter-res.UsedMemoryAccounts) / float64(res.Orders)
		res.BytesPerOrderAll = float64(res.UsedMemoryAfter-res.UsedMemoryBefore) / float64(res.Orders)
		res.KeysPerOrder = float64(res.KeysAfter-res.KeysBefore) / float64(res.Orders)
	}
	return res, err
}

func (p *preloader) logf(format string, args ...any) {
	if p.cfg.Progress != nil {
		fmt.Fprintf(p.cfg.Progress, format+"\n", args...)
	}
}

// redisMemory reads used_memory and redis_version from INFO.
func redisMemory(ctx context.Context, c goredis.UniversalClient) (usedMemory int64, version string, err error) {
	s, err := c.Info(ctx, "memory", "server").Result()
	if err != nil {
		return 0, "", fmt.Errorf("redis info: %w", err)
	}
	usedMemory = -1
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		switch k {
		case "used_memory":
			if usedMemory, err = strconv.ParseInt(v, 10, 64); err != nil {
				return 0, "", fmt.Errorf("redis info: used_memory %q: %w", v, err)
			}
		case "redis_version":
			version = v
		}
	}
	if usedMemory < 0 {
		return 0, "", errors.New("redis info: no used_memory")
	}
	return usedMemory, version, nil
}

// progress prints a line every ProgressEvery until the returned func is called.
func (p *preloader) progress(ctx context.Context, info goredis.UniversalClient, start time.Time) func() {
	if p.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(p.cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				n := p.orders.Load()
				el := now.Sub(start).Seconds()
				rate := float64(n) / el
				eta := "?"
				if rate > 0 {
					eta = fmt.Sprintf("%.0fs", float64(int64(p.cfg.Orders)-n)/rate)
				}
				mem := "?"
				if m, _, err := redisMemory(ctx, info); err == nil {
					mem = fmt.Sprintf("%.1f MiB", float64(m)/(1<<20))
				}
				p.logf("preload: %6.1fs  %d/%d orders (%.1f%%)  %.0f orders/s  used_memory %s  eta %s",
					el, n, p.cfg.Orders, 100*float64(n)/float64(p.cfg.Orders), rate, mem, eta)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// makeChains has a throw-away built-in CA sign preloadChains leaves for
// one name and as many for two, so that certificate records carry real
// chains of the size the gateway stores (Redis keeps every copy in full).
func (p *preloader) makeChains(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "acmegw-preload-ca")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ca, err := local.Open(dir, local.Options{})
	if err != nil {
		return err
	}
	rng := newRand()
	for n := range 2 {
		for range preloadChains {
			key, err := ecdsa.GenerateKey(elliptic.P256(), cryptorand.Reader)
			if err != nil {
				return err
			}
			names := preloadNames(rng, n+1)
			der, err := x509.CreateCertificateRequest(cryptorand.Reader, &x509.CertificateRequest{
				Subject: pkix.Name{CommonName: names[0]}, DNSNames: names}, key)
			if err != nil {
				return err
			}
			csr, err := x509.ParseCertificateRequest(der)
			if err != nil {
				return err
			}
			r, err := ca.Submit(ctx, issuer.Request{OrderID: "preload", CSR: csr, DNSNames: names})
			if err != nil {
				return fmt.Errorf("template certificate: %w", err)
			}
			p.chains[n] = append(p.chains[n], r.Chain)
		}
	}
	return nil
}

// createAccounts stores cfg.Accounts accounts with real P-256 keys.
func (p *preloader) createAccounts(ctx context.Context) error {
	p.accounts = make([]string, p.cfg.Accounts)
	var next atomic.Int64
	errs := make(chan error, p.cfg.Workers)
	var wg sync.WaitGroup
	for range p.cfg.Workers {
		wg.Go(func() {
			rng := newRand()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(p.accounts) || ctx.Err() != nil {
					return
				}
				a, err := preloadAccount(rng, p.now)
				if err != nil {
					errs <- err
					return
				}
				if err := p.retry(ctx, func() error { return p.store.CreateAccount(ctx, a) }); err != nil {
					errs <- fmt.Errorf("account %d: %w", i, err)
					return
				}
				p.accounts[i] = a.ID
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.samples.SampleAccounts = append([]string(nil), p.accounts[:min(3, len(p.accounts))]...)
	return nil
}

// writeOrders runs the workers until every order is written.
func (p *preloader) writeOrders(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	total := int64(p.cfg.Orders)
	var wg sync.WaitGroup
	for range p.cfg.Workers {
		wg.Go(func() {
			rng := newRand()
			for ctx.Err() == nil {
				from := p.next.Add(int64(p.cfg.Batch)) - int64(p.cfg.Batch)
				if from >= total {
					return
				}
				for i := from; i < min(from+int64(p.cfg.Batch), total) && ctx.Err() == nil; i++ {
					if err := p.writeOrder(ctx, rng, i); err != nil {
						cancel(fmt.Errorf("order %d: %w", i, err))
						return
					}
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// retry runs f until it succeeds, up to preloadMaxAttempts times, backing
// off between attempts (a loaded Redis may time a command out).
func (p *preloader) retry(ctx context.Context, f func() error) error {
	var err error
	for attempt := range preloadMaxAttempts {
		if attempt > 0 {
			p.retries.Add(1)
			select {
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err = f(); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// preload order kinds.
const (
	kindValid   = iota // finalized, with a certificate
	kindPending        // abandoned before validation
	kindInvalid        // its dns-01 validation failed
)

// writeOrder stores order number i with its authorizations, its
// certificate and its reuse indexes.
func (p *preloader) writeOrder(ctx context.Context, rng *rand.Rand, i int64) error {
	acct := p.accounts[i%int64(len(p.accounts))]
	kind := kindValid
	if r := rng.Float64(); r >= p.cfg.CertShare {
		kind = kindPending
		if r >= p.cfg.CertShare+(1-p.cfg.CertShare)/2 {
			kind = kindInvalid
		}
	}
	nameCount := 1
	if rng.Float64() < p.cfg.TwoNamesShare {
		nameCount = 2
	}
	names := preloadNames(rng, nameCount)
	age := time.Duration(rng.Int64N(int64(time.Duration(p.cfg.Days) * 24 * time.Hour)))
	created := p.now.Add(-age).Truncate(time.Second)

	// CreateOrder's outcome is unknown after an error, so a retry uses
	// fresh ids, as the gateway's clients would.
	var (
		o      *storage.Order
		authzs []*storage.Authorization
	)
	err := p.retry(ctx, func() error {
		o, authzs = preloadOrder(rng, acct, kind, names, created)
		return p.store.CreateOrder(ctx, o, authzs)
	})
	if err != nil {
		return err
	}
	p.orders.Add(1)
	p.authzs.Add(int64(len(authzs)))

	if kind == kindValid {
		validated := authzs[0].Challenges[1].Validated
		c := &storage.Certificate{
			Serial:    o.CertSerial,
			AccountID: acct,
			OrderID:   o.ID,
			Brand:     o.Brand,
			ChainPEM:  p.chains[nameCount-1][rng.IntN(preloadChains)],
			Names:     names,
			NotBefore: validated.Truncate(time.Second),
			NotAfter:  validated.Truncate(time.Second).Add(preloadCertValidity),
			Status:    storage.StatusValid,
		}
		err := p.retry(ctx, func() error {
			err := p.store.CreateCertificate(ctx, c)
			if errors.Is(err, storage.ErrExists) {
				return nil // an earlier attempt wrote it
			}
			return err
		})
		if err != nil {
			return err
		}
		p.certs.Add(1)
		// The authorization-reuse index lives as long as the authorization.
		for _, a := range authzs {
			if ttl := a.Expires.Sub(p.now); ttl > 0 {
				key := "authz|" + acct + "|" + a.Identifier.Type + ":" + a.Identifier.Value
				if err := p.retry(ctx, func() error { return p.store.SetOrderKey(ctx, key, a.ID, ttl) }); err != nil {
					return err
				}
				p.idxKey.Add(1)
			}
		}
		p.sample(&p.samples.SampleCertificates, c.Serial)
	} else if ttl := created.Add(preloadOrderReuseTTL).Sub(p.now); ttl > 0 {
		// The order-reuse index: the gateway ends it when a certificate is
		// downloaded, so only orders that never got one keep it.
		key := acct + ":" + hexRand(rng, 16)
		if err := p.retry(ctx, func() error { return p.store.SetOrderKey(ctx, key, o.ID, ttl) }); err != nil {
			return err
		}
		p.idxKey.Add(1)
	}
	p.sample(&p.samples.SampleOrders, o.ID)
	return nil
}

func (p *preloader) sample(list *[]string, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(*list) < 5 {
		*list = append(*list, id)
	}
}

// preloadOrder builds an order of the given kind and its authorizations,
// shaped as newOrder, the challenge and finalize handlers leave them.
func preloadOrder(rng *rand.Rand, acct string, kind int, names []string, created time.Time) (*storage.Order, []*storage.Authorization) {
	o := &storage.Order{
		ID:        randID(rng, 12),
		AccountID: acct,
		Status:    storage.StatusPending,
		Expires:   created.Add(preloadOrderLifetime),
		Brand:     "local",
		CreatedAt: created,
	}
	// The client answers within a few seconds; validation takes a moment.
	started := created.Add(500*time.Millisecond + time.Duration(rng.Int64N(int64(3*time.Second))))
	validated := started.Add(time.Millisecond + time.Duration(rng.Int64N(int64(200*time.Millisecond))))
	authzs := make([]*storage.Authorization, len(names))
	for i, n := range names {
		id := storage.Identifier{Type: "dns", Value: n}
		o.Identifiers = append(o.Identifiers, id)
		a := &storage.Authorization{
			ID:         randID(rng, 12),
			AccountID:  acct,
			Identifier: id,
			Status:     storage.StatusPending,
			Expires:    o.Expires,
		}
		for _, t := range []string{"http-01", "dns-01", "tls-alpn-01"} {
			a.Challenges = append(a.Challenges, storage.Challenge{
				ID: randID(rng, 8), Type: t, Token: randID(rng, 32), Status: storage.StatusPending,
			})
		}
		dns := &a.Challenges[1]
		switch kind {
		case kindValid:
			a.Status = storage.StatusValid
			a.Expires = validated.Add(preloadAuthzValidity)
			a.CAACheckedAt = validated
			dns.Status, dns.Started, dns.Validated = storage.StatusValid, started, validated
		case kindInvalid:
			a.Status = storage.StatusInvalid
			dns.Status, dns.Started = storage.StatusInvalid, started
			dns.Error = &storage.Problem{Type: "unauthorized", Detail: "No TXT record found at _acme-challenge." + n}
		}
		authzs[i] = a
		o.AuthzIDs = append(o.AuthzIDs, a.ID)
	}
	switch kind {
	case kindValid:
		o.Status = storage.StatusValid
		o.CertSerial = hexRand(rng, 16)
		o.CSRKeyHash = hexRand(rng, 32)
	case kindInvalid:
		o.Status = storage.StatusInvalid
		a := authzs[0]
		p := *a.Challenges[1].Error
		p.Identifier = &a.Identifier
		o.Error = &p
	}
	return o, authzs
}

// preloadAccount makes an account as newAccount stores it: a P-256 JWK,
// its RFC 7638 thumbprint and a contact.
func preloadAccount(rng *rand.Rand, now time.Time) (*storage.Account, error) {
	key, err := ecdh.P256().GenerateKey(cryptorand.Reader)
	if err != nil {
		return nil, err
	}
	pt := key.PublicKey().Bytes() // 0x04 || X || Y
	x := base64.RawURLEncoding.EncodeToString(pt[1:33])
	y := base64.RawURLEncoding.EncodeToString(pt[33:])
	tp := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	return &storage.Account{
		ID:          randID(rng, 12),
		KeyJWK:      []byte(`{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + y + `"}`),
		Thumbprint:  base64.RawURLEncoding.EncodeToString(tp[:]),
		Status:      storage.StatusValid,
		Contact:     []string{"mailto:hostmaster@" + preloadNames(rng, 1)[0]},
		TermsAgreed: true,
		CreatedAt:   now.Add(-time.Duration(rng.Int64N(int64(365 * 24 * time.Hour)))),
	}, nil
}

var preloadSuffixes = []string{"example.com", "example.net", "example.org", "shop.example", "corp.example"}

// preloadNames is n fresh dns names: a registered domain, then www. under it.
func preloadNames(rng *rand.Rand, n int) []string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 6+rng.IntN(9))
	for i := range b {
		b[i] = letters[rng.IntN(len(letters))]
	}
	base := string(b) + "." + preloadSuffixes[rng.IntN(len(preloadSuffixes))]
	names := []string{base}
	if n > 1 {
		names = append(names, "www."+base)
	}
	return names
}

// newRand is a fast generator seeded from crypto/rand, for ids that only
// need to be unique.
func newRand() *rand.Rand {
	var seed [32]byte
	_, _ = cryptorand.Read(seed[:])
	return rand.New(rand.NewChaCha8(seed))
}

// randID is n random bytes, base64url: the gateway's id format.
func randID(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// hexRand is n random bytes in hex, the first never zero, so the string has
// 2n digits like the built-in CA's serials.
func hexRand(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	b[0] |= 0x10
	return hex.EncodeToString(b)
}

func (r *preloadResult) writeText(w io.Writer) {
	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	fmt.Fprintf(w, "preload: %d orders (%d authorizations, %d certificates, %d reuse-index keys) over %d accounts\n",
		r.Orders, r.Authorizations, r.Certificates, r.IndexKeys, r.Accounts)
	fmt.Fprintf(w, "  elapsed:       accounts %.1fs, orders %.1fs (%.0f orders/s, %d workers, batches of %d, %d retries)\n",
		r.AccountSeconds, r.OrderSeconds, r.OrdersPerSecond, r.Workers, r.Batch, r.Retries)
	fmt.Fprintf(w, "  used_memory:   before %s, after the accounts %s, after %s (Redis %s)\n",
		mib(r.UsedMemoryBefore), mib(r.UsedMemoryAccounts), mib(r.UsedMemoryAfter), r.RedisVersion)
	fmt.Fprintf(w, "  keys:          before %d, after %d (%.2f per order)\n", r.KeysBefore, r.KeysAfter, r.KeysPerOrder)
	fmt.Fprintf(w, "  bytes/order:   %.0f (%.0f with the accounts)\n", r.BytesPerOrder, r.BytesPerOrderAll)
}
