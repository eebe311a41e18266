package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/acmegw/acmegw/acme"
	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/local"
	"github.com/acmegw/acmegw/storage"
	"github.com/acmegw/acmegw/storage/memory"
	"github.com/acmegw/acmegw/storage/redis"
	"github.com/acmegw/acmegw/validation"
)

func serve(args []string) error {
	cfg, err := loadConfig("serve", args)
	if err != nil {
		return err
	}
	rateLimits, err := cfg.RateLimits.acmeRateLimits()
	if err != nil {
		return err
	}
	logOut := newCoalescingWriter(os.Stderr)
	defer logOut.Close() // last: everything logged before it is written
	log, err := newLogger(cfg, logOut)
	if err != nil {
		return err
	}
	redis.SetLogger(log)
	tuneGC(os.DirFS("/"), log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	warnIfEvicting(ctx, store, log)
	defer store.Close()
	ca, err := local.Open(cfg.DataDir, local.Options{KeyType: cfg.CA.KeyType, Name: cfg.CA.Name, AlternateChain: cfg.CA.AlternateChain, CAAIdentities: cfg.CAAIdentities})
	if err != nil {
		return fmt.Errorf("built-in CA: %w", err)
	}
	// The commercial brands' delegated DCV zones: built with the brands,
	// served for the server's lifetime.
	deps, err := newBrandDeps(cfg, log)
	if err != nil {
		return err
	}
	defer deps.Close()
	router, err := newRouter(cfg, ca, store, deps)
	if err != nil {
		return err
	}
	if err := deps.Start(ctx); err != nil {
		return err
	}
	if err := applyEABConfig(ctx, store, cfg.EAB); err != nil {
		return err
	}
	validator := validation.New(validation.Config{
		Resolver:     cfg.DNSResolver,
		HTTPPort:     cfg.HTTP01Port,
		TLSALPNPort:  cfg.TLSALPN01Port,
		AllowPrivate: cfg.ValidationAllowPrivate,
		Timeout:      time.Duration(cfg.ValidationTimeout),
	})
	srv := acme.New(acmeConfig(cfg, store, validator, router, log, rateLimits))
	defer srv.Close()
	// The clock-skew gauge is served on acme's /metrics.
	stopClockCheck := startClockSkewCheck(ctx, store, log, srv.Registerer(), clockSkewInterval)
	defer stopClockCheck() // runs before store.Close: the check loop reads the store
	// Issuance jobs: polling brands, retries, and jobs of crashed instances.
	// They stop with ctx; srv.Close waits for them.
	go srv.RunJobs(ctx)

	tlsCert, err := listenerCertificate(cfg, ca)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	httpSrv := &http.Server{
		Handler:           srv,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.ServeTLS(ln, "", "") }()
	stopAdmin := serveAdmin(ctx, cfg.DataDir, store, log)
	defer stopAdmin()
	if cfg.DebugListen != "" {
		stopDebug, err := serveDebug(cfg.DebugListen, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	dirURL := cfg.BaseURL
	if dirURL == "" {
		dirURL = "https://" + displayHost(ln.Addr().String())
	}
	fmt.Printf("acmegw directory: %s/directory\n", strings.TrimSuffix(dirURL, "/"))
	fmt.Printf("root certificate to trust: %s\n", ca.RootPath())
	log.Info("serving", "listen", ln.Addr().String(), "storage", storeName(cfg), "profiles", router.Names())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func newLogger(cfg Config, out io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", cfg.LogLevel, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(out, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(out, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", cfg.LogFormat)
}

// warnIfEvicting warns when the Redis store may evict keys: a used-nonce
// mark evicted early lets that nonce be redeemed again, and an evicted
// order is lost. Redis services that refuse CONFIG are not checked.
func warnIfEvicting(ctx context.Context, store storage.Store, log *slog.Logger) {
	rs, ok := store.(*redis.Store)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	policy, err := rs.EvictionPolicy(ctx)
	if err != nil {
		log.Debug("could not read Redis's maxmemory-policy", "err", err)
		return
	}
	if policy != "noeviction" {
		log.Warn("Redis may evict keys under memory pressure; run it with maxmemory-policy noeviction, or an evicted used-nonce mark lets a nonce be replayed and an evicted order is lost",
			"maxmemory_policy", policy)
	}
}

func openStore(ctx context.Context, cfg Config) (storage.Store, error) {
	if cfg.Redis == "" {
		return memory.New(), nil
	}
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := redis.New(dialCtx, cfg.Redis)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	return s, nil
}

func storeName(cfg Config) string {
	if cfg.Redis == "" {
		return "memory"
	}
	return "redis"
}

func newRouter(cfg Config, ca *local.CA, store storage.Store, deps *brandDeps) (*issuer.Router, error) {
	brands := map[string]issuer.Issuer{}
	for name, b := range cfg.Brands {
		var brand issuer.Issuer
		var err error
		switch {
		case b.Type == "manual":
			brand, err = buildManualBrand(name, b, ca, store)
		case isCommercial(b.Type):
			brand, err = buildCommercialBrand(name, b, deps)
		default:
			brand, err = buildBrand(name, b, ca, cfg.DataDir)
		}
		if err != nil {
			return nil, err
		}
		brands[name] = brand
	}
	names := make([]string, 0, len(cfg.Profiles))
	for name := range cfg.Profiles {
		names = append(names, name)
	}
	sort.Strings(names)
	profiles := make([]issuer.Profile, 0, len(names))
	for _, name := range names {
		p := cfg.Profiles[name]
		profiles = append(profiles, issuer.Profile{Name: name, Description: p.Description, Brand: p.Brand, Validity: time.Duration(p.Validity), Deadline: time.Duration(p.Deadline),
			Rules: p.Rules.rules()})
	}
	return issuer.NewRouter(cfg.DefaultProfile, profiles, brands)
}

// listenerCertificate is the configured certificate, or one from the
// built-in CA for the local names clients use to reach a test instance.
func listenerCertificate(cfg Config, ca *local.CA) (tls.Certificate, error) {
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		c, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return c, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		return c, nil
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, _, err := net.SplitHostPort(cfg.Listen); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
		hosts = appendUnique(hosts, h)
	}
	if name, err := os.Hostname(); err == nil {
		hosts = appendUnique(hosts, name)
	}
	c, err := ca.ServerCertificate(hosts, 90*24*time.Hour)
	if err != nil {
		return c, fmt.Errorf("listener certificate: %w", err)
	}
	return c, nil
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// displayHost turns a wildcard listen address into one a client can dial.
func displayHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
