// Package acme is the RFC 8555 front end: it checks JWS signatures and nonces,
// keeps the ACME resources in a storage.Store, hands challenges to the
// validation authority and finalized orders to the issuer router, and renders
// every failure as a problem document.
package acme

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/storage"
	"github.com/acmegw/acmegw/validation"
)

// Paths of the ACME resources, relative to the server's base URL.
const (
	directoryPath  = "/directory"
	newNoncePath   = "/acme/new-nonce"
	newAccountPath = "/acme/new-account"
	newOrderPath   = "/acme/new-order"
	revokeCertPath = "/acme/revoke-cert"
	keyChangePath  = "/acme/key-change"
	accountPath    = "/acme/acct/"
	orderPath      = "/acme/order/"
	authzPath      = "/acme/authz/"
	challengePath  = "/acme/chall/"
	certPath       = "/acme/cert/"
	termsPath      = "/terms"
)

// Validator checks challenges and CAA against the network; validation.Validator implements it.
type Validator interface {
	Validate(ctx context.Context, ch validation.Challenge) error
	CheckCAA(ctx context.Context, req validation.CAARequest) error
	RecheckCAA(ctx context.Context, now time.Time, maxAge time.Duration, checks []validation.CAACheck) error
}

// Config is what the front end needs from the rest of the gateway.
type Config struct {
	Store     storage.Store
	Validator Validator
	Router    *issuer.Router
	Logger    *slog.Logger

	// BaseURL is the external URL prefix ("https://acme.example"); empty
	// derives it from each request's Host, which is what tests and a single
	// instance want.
	BaseURL string
	// TermsOfService is the URL advertised in the directory; empty serves a
	// plain page at /terms.
	TermsOfService string
	Website        string
	CAAIdentities  []string
	// ExternalAccountRequired is advertised in the directory meta.
	ExternalAccountRequired bool
	// RateLimits configures the rate limits (see ratelimit.go); the zero
	// value enforces DefaultRateLimits.
	RateLimits RateLimits

	// ValidationWait is how long a challenge POST waits for a validation to
	// finish before it answers "processing"; zero means 3 seconds.
	ValidationWait time.Duration
	// NonceTTL is how long an issued nonce stays redeemable; zero means 1 hour.
	NonceTTL time.Duration
	// OrderLifetime is how long a pending order and its authorizations live; zero means 7 days.
	OrderLifetime time.Duration
	// AuthzValidity is how long a valid authorization stays valid; zero means 30 days.
	AuthzValidity time.Duration
	// MaxBodyBytes bounds a request body; zero means 64 KiB.
	MaxBodyBytes int64
	// MaxIdentifiers bounds the identifiers of one order; zero means 100.
	MaxIdentifiers int
	// CAARecheckAge is how old a passing CAA check may be at finalize before
	// it is repeated; zero means validation.DefaultCAARecheckAge.
	CAARecheckAge time.Duration

	// Issuance jobs (jobs.go). FinalizeWait is how long a finalize request
	// waits for the brand before it answers "processing"; zero means 5 s.
	FinalizeWait time.Duration
	// BrandTimeout bounds one Submit or Poll call; zero means 90 s.
	BrandTimeout time.Duration
	// JobLease is how long a claimed job is its worker's before another
	// instance may take it over; zero means 2 minutes. It is lengthened to
	// at least BrandTimeout plus 10 s, so a live worker is never taken over.
	JobLease time.Duration
	// JobWorkers bounds the jobs RunJobs runs at once; zero means 4.
	JobWorkers int
	// ReviewPoll is how often the issuance job of an order held for manual
	// review (its profile's review words) looks for the operator's
	// decision; zero means 1 minute.
	ReviewPoll time.Duration
}

// Server serves the ACME API.
type Server struct {
	cfg     Config
	store   storage.Store
	log     *slog.Logger
	router  *mux.Router
	metrics *metrics

	// validations tracks background validations so Close can wait for them.
	validations sync.WaitGroup
	baseCtx     context.Context
	cancel      context.CancelFunc

	// jobs tracks issuance job goroutines and their metrics (jobs.go).
	jobs jobState

	// nonces holds the nonce secret (nonce.go); keys caches parsed account keys (keycache.go).
	nonces nonceState
	keys   keyCache
}

// New returns a Server for cfg; cfg.Store, cfg.Validator and cfg.Router are required.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ValidationWait == 0 {
		cfg.ValidationWait = 3 * time.Second
	}
	if cfg.NonceTTL == 0 {
		cfg.NonceTTL = time.Hour
	}
	if cfg.OrderLifetime == 0 {
		cfg.OrderLifetime = 7 * 24 * time.Hour
	}
	if cfg.AuthzValidity == 0 {
		cfg.AuthzValidity = 30 * 24 * time.Hour
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.MaxIdentifiers == 0 {
		cfg.MaxIdentifiers = 100
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, store: cfg.Store, log: cfg.Logger, baseCtx: ctx, cancel: cancel, metrics: newMetrics()}
	s.initJobs()
	s.router = s.routes()
	return s
}

// Close stops background validations and issuance jobs (RunJobs included)
// and waits for them.
func (s *Server) Close() {
	s.cancel()
	s.validations.Wait()
	s.closeJobs()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	growStack()
	rid := newID(8)
	rec := &requestLog{base: s.log, attrs: []any{"request_id", rid}, metrics: s.metrics}
	r = r.WithContext(context.WithValue(r.Context(), logKey{}, rec))
	w.Header().Set("X-Request-Id", rid)
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if v := recover(); v != nil {
			rec.get().Error("panic", "panic", v)
			if !sw.wrote {
				writeProblem(sw, r, serverInternal("internal error (request %s)", rid))
			}
		}
		elapsed := time.Since(start)
		s.metrics.observeRequest(rec.endpoint, r.Method, sw.status, elapsed)
		rec.get().Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"duration_ms", float64(elapsed.Microseconds())/1000)
	}()
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(sw, r.Body, s.cfg.MaxBodyBytes)
	}
	s.router.ServeHTTP(sw, r)
}

// growStack makes the goroutine's stack big enough for a request (or an
// issuance job step) in one step, while it is nearly empty and cheap to
// copy. Each request runs on a fresh goroutine (HTTP/2 starts one per
// stream) whose small stack would otherwise be grown, and copied, several
// times over as the request goes deeper (ECDSA, JSON, the store client):
// that copying was ~4% of the server's CPU under load.
//
//go:noinline
func growStack() {
	var frame [24 << 10]byte
	stackSink(frame[:])
}

// stackSink keeps growStack's frame from being optimised away.
//
//go:noinline
func stackSink(b []byte) { b[len(b)-1] = 1 }

func (s *Server) routes() *mux.Router {
	m := mux.NewRouter()
	m.Use(routeLabel)
	m.HandleFunc("/healthz", s.handleHealthz).Methods(http.MethodGet, http.MethodHead)
	m.HandleFunc("/readyz", s.handleReadyz).Methods(http.MethodGet, http.MethodHead)
	m.Handle("/metrics", s.metrics.handler()).Methods(http.MethodGet)
	m.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.addNonceIfPost(w, r)
		writeProblem(w, r, notFound("no ACME resource at %s", r.URL.Path))
	})
	m.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.addNonceIfPost(w, r)
		writeProblem(w, r, methodNotAllowed())
	})
	m.HandleFunc(directoryPath, s.handleDirectory).Methods(http.MethodGet, http.MethodPost)
	m.HandleFunc("/dir", s.handleDirectory).Methods(http.MethodGet, http.MethodPost)
	m.HandleFunc(termsPath, s.handleTerms).Methods(http.MethodGet)
	m.HandleFunc(renewalInfoPath+"{id}", s.handleRenewalInfo).Methods(http.MethodGet)
	m.HandleFunc(newNoncePath, s.handleNewNonce).Methods(http.MethodGet, http.MethodHead)
	m.Handle(newAccountPath, s.post(s.handleNewAccount, jwsEmbeddedKey, readsNothing)).Methods(http.MethodPost)
	m.Handle(newOrderPath, s.post(s.handleNewOrder, jwsAccount, readsNothing)).Methods(http.MethodPost)
	m.Handle(revokeCertPath, s.post(s.handleRevoke, jwsEither, readsNothing)).Methods(http.MethodPost)
	m.Handle(keyChangePath, s.post(s.handleKeyChange, jwsAccount, readsNothing)).Methods(http.MethodPost)
	m.Handle(accountPath+"{id}", s.post(s.handleAccount, jwsAccount, readsNothing)).Methods(http.MethodPost)
	m.Handle(accountPath+"{id}/orders", s.post(s.handleOrderList, jwsAccount, readsNothing)).Methods(http.MethodPost)
	m.Handle(orderPath+"{id}", s.post(s.handleOrder, jwsAccount, readsOrder)).Methods(http.MethodPost)
	m.Handle(orderPath+"{id}/finalize", s.post(s.handleFinalize, jwsAccount, readsOrder)).Methods(http.MethodPost)
	m.Handle(authzPath+"{id}", s.post(s.handleAuthorization, jwsAccount, readsAuthz)).Methods(http.MethodPost)
	m.Handle(challengePath+"{authz}/{id}", s.post(s.handleChallenge, jwsAccount, readsChallengeAuthz)).Methods(http.MethodPost)
	m.Handle(certPath+"{serial}", s.post(s.handleCertificate, jwsAccount, readsCertificate)).Methods(http.MethodPost)
	m.Handle(certPath+"{serial}/{alt}", s.post(s.handleCertificate, jwsAccount, readsCertificate)).Methods(http.MethodPost)
	return m
}

// baseURL is the prefix of every URL the server hands out.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.BaseURL != "" {
		return strings.TrimSuffix(s.cfg.BaseURL, "/")
	}
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	return scheme + "://" + r.Host
}

func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, r, serverInternal("encoding response: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func addLink(w http.ResponseWriter, url, rel string) {
	w.Header().Add("Link", "<"+url+">;rel=\""+rel+"\"")
}

func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type logKey struct{}

// requestLog carries a request's logger, enriched with the account and order as they become known.
type requestLog struct {
	base     *slog.Logger
	attrs    []any        // request id, account, order... as key-value pairs
	logger   *slog.Logger // base.With(attrs...), built on first use
	endpoint string       // the matched route template, for metrics
	metrics  *metrics
}

func logFrom(r *http.Request) *slog.Logger {
	if rl, ok := r.Context().Value(logKey{}).(*requestLog); ok {
		return rl.get()
	}
	return slog.Default()
}

func logWith(r *http.Request, args ...any) {
	if rl, ok := r.Context().Value(logKey{}).(*requestLog); ok {
		rl.attrs = append(rl.attrs, args...)
		rl.logger = nil
	}
}

// get returns the request's logger with every attribute added so far. It is
// built only when something is logged: slog's With formats its attributes
// at once, which every request would otherwise pay for each one it adds.
func (rl *requestLog) get() *slog.Logger {
	if rl.logger == nil {
		rl.logger = rl.base.With(rl.attrs...)
	}
	return rl.logger
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status = code
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}
