package acme_test

// The harness runs the ACME front end in-process behind httptest's TLS
// server, with the built-in CA in a temporary directory, a programmable DNS
// server for dns-01, a small HTTP responder for http-01, and either the
// memory or the Redis store. Its client is deliberately raw: it builds every
// JWS itself (with go-jose for well-formed requests, by hand for broken
// ones), so tests can send exactly the mistakes real clients and attackers
// make.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmegw/acmegw/acme"
	"github.com/acmegw/acmegw/internal/testlog"
	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/local"
	"github.com/acmegw/acmegw/storage"
	"github.com/acmegw/acmegw/storage/memory"
	"github.com/acmegw/acmegw/storage/redis"
	"github.com/acmegw/acmegw/validation"
	"github.com/acmegw/acmegw/validation/validationtest"
)

// errNS prefixes every ACME problem type.
const errNS = "urn:ietf:params:acme:error:"

// forEachStore runs fn once against a fresh gateway on the memory store and
// once on the Redis store (a private redis-server, or ACMEGW_TEST_REDIS_URL).
func forEachStore(t *testing.T, fn func(t *testing.T, e *env), opts ...envOption) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		fn(t, newEnv(t, memory.New(), opts...))
	})
	t.Run("redis", func(t *testing.T) {
		url := testredis.Start(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := redis.New(ctx, url)
		if err != nil {
			t.Fatalf("redis store: %v", err)
		}
		// A job queue of its own: RunJobs must not pick up (or be robbed
		// of) the jobs of other tests sharing the Redis.
		fn(t, newEnv(t, st.WithJobQueue(fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())), opts...))
	})
}

// env is one in-process gateway and everything it talks to.
type env struct {
	srv    *httptest.Server
	server *acme.Server
	store  storage.Store
	dns    *validationtest.DNSServer
	ca     *local.CA
	brand  *countingIssuer
	// validator counts and can hold validations.
	validator *hookValidator
	http      *http.Client
	dir       directoryDoc
	// logs is what the server logged.
	logs *testlog.Buffer

	// httpTokens maps an http-01 token to its key authorization.
	httpTokens sync.Map
}

// countingIssuer counts Submit calls, so tests can prove a single issuance.
type countingIssuer struct {
	issuer.Issuer
	submits atomic.Int64
}

func (c *countingIssuer) Submit(ctx context.Context, req issuer.Request) (issuer.Result, error) {
	c.submits.Add(1)
	return c.Issuer.Submit(ctx, req)
}

// envSetup is what options can change about a gateway before it starts.
type envSetup struct {
	caOpts local.Options
	tweak  func(*acme.Config)
	// profiles and brands are offered besides "default" and "shortlived" on "local".
	profiles []issuer.Profile
	brands   map[string]issuer.Issuer
}

type envOption func(*envSetup)

// withConfig adjusts the front end's configuration.
func withConfig(f func(*acme.Config)) envOption {
	return func(s *envSetup) { s.tweak = f }
}

// withBrand adds a brand and profiles that use it.
func withBrand(name string, brand issuer.Issuer, profiles ...issuer.Profile) envOption {
	return func(s *envSetup) {
		if s.brands == nil {
			s.brands = map[string]issuer.Issuer{}
		}
		s.brands[name] = brand
		s.profiles = append(s.profiles, profiles...)
	}
}

// withCA sets the built-in CA's options.
func withCA(o local.Options) envOption {
	return func(s *envSetup) { s.caOpts = o }
}

// hookValidator is the real validator with a count of validations and the
// power to hold one until the test releases it.
type hookValidator struct {
	*validation.Validator
	calls atomic.Int64

	mu    sync.Mutex
	holds map[string]chan struct{} // by identifier + " " + challenge type
}

// hold makes validations of typ for identifier wait until release is called.
func (h *hookValidator) hold(identifier, typ string) (release func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan struct{})
	h.holds[identifier+" "+typ] = ch
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func (h *hookValidator) Validate(ctx context.Context, c validation.Challenge) error {
	h.calls.Add(1)
	h.mu.Lock()
	ch := h.holds[c.Identifier+" "+c.Type]
	h.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return h.Validator.Validate(ctx, c)
}

func newEnv(t *testing.T, store storage.Store, opts ...envOption) *env {
	t.Helper()
	var setup envSetup
	for _, o := range opts {
		o(&setup)
	}
	logs := new(testlog.Buffer)
	// Cleanups run last-in first-out: this one runs after the servers stopped.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	t.Cleanup(func() { _ = store.Close() })
	e := &env{store: store, dns: validationtest.NewDNSServer(t), logs: logs}

	h01 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, "/.well-known/acme-challenge/")
		v, found := e.httpTokens.Load(token)
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, v.(string))
	}))
	t.Cleanup(h01.Close)
	h01Port := h01.Listener.Addr().(*net.TCPAddr).Port

	ca, err := local.Open(t.TempDir(), setup.caOpts)
	if err != nil {
		t.Fatalf("local CA: %v", err)
	}
	e.ca = ca
	e.brand = &countingIssuer{Issuer: ca}
	brands := map[string]issuer.Issuer{"local": e.brand}
	for name, b := range setup.brands {
		brands[name] = b
	}
	router, err := issuer.NewRouter("default", append([]issuer.Profile{
		{Name: "default", Description: "built-in CA, 90 days", Brand: "local"},
		{Name: "shortlived", Description: "built-in CA, 160 hours", Brand: "local", Validity: 160 * time.Hour},
	}, setup.profiles...), brands)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	e.validator = &hookValidator{holds: map[string]chan struct{}{}, Validator: validation.New(validation.Config{
		Resolver:     e.dns.Addr(),
		HTTPPort:     h01Port,
		TLSALPNPort:  h01Port, // no test answers tls-alpn-01
		AllowPrivate: true,
		Timeout:      5 * time.Second,
	})}
	cfg := acme.Config{
		Store:     store,
		Validator: e.validator,
		Router:    router,
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		// The battery sends many refused requests per account and order on
		// purpose; rate limits have their own tests (ratelimit_test.go).
		RateLimits: acme.RateLimits{Disabled: true},
	}
	if setup.tweak != nil {
		setup.tweak(&cfg)
	}
	e.server = acme.New(cfg)
	t.Cleanup(e.server.Close)
	e.srv = httptest.NewUnstartedServer(e.server)
	// Handshakes cut short by Close are noise; keep them with the server log.
	e.srv.Config.ErrorLog = stdlog.New(logs, "http: ", 0)
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	e.http = e.srv.Client()
	e.http.Timeout = 30 * time.Second

	r := e.get(t, e.srv.URL+"/directory")
	r.mustJSON(t, http.StatusOK, &e.dir)
	if e.dir.NewNonce == "" || e.dir.NewAccount == "" || e.dir.NewOrder == "" {
		t.Fatalf("directory lacks resources: %s", r.Body)
	}
	return e
}

// Documents as the server renders them.

type directoryDoc struct {
	NewNonce   string `json:"newNonce"`
	NewAccount string `json:"newAccount"`
	NewOrder   string `json:"newOrder"`
	RevokeCert string `json:"revokeCert"`
	KeyChange  string `json:"keyChange"`
	Meta       struct {
		TermsOfService          string            `json:"termsOfService"`
		ExternalAccountRequired bool              `json:"externalAccountRequired"`
		Profiles                map[string]string `json:"profiles"`
	} `json:"meta"`
}

type ident struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

func dnsIDs(names ...string) []ident {
	out := make([]ident, len(names))
	for i, n := range names {
		out[i] = ident{"dns", n}
	}
	return out
}

type problemDoc struct {
	Type        string       `json:"type"`
	Detail      string       `json:"detail"`
	Status      int          `json:"status"`
	Identifier  *ident       `json:"identifier"`
	Subproblems []problemDoc `json:"subproblems"`
}

type accountDoc struct {
	Status               string   `json:"status"`
	Contact              []string `json:"contact"`
	TermsOfServiceAgreed bool     `json:"termsOfServiceAgreed"`
	Orders               string   `json:"orders"`
}

type orderDoc struct {
	Status         string      `json:"status"`
	Expires        string      `json:"expires"`
	Identifiers    []ident     `json:"identifiers"`
	NotBefore      string      `json:"notBefore"`
	NotAfter       string      `json:"notAfter"`
	Profile        string      `json:"profile"`
	Authorizations []string    `json:"authorizations"`
	Finalize       string      `json:"finalize"`
	Certificate    string      `json:"certificate"`
	Error          *problemDoc `json:"error"`
}

type authzDoc struct {
	Identifier ident          `json:"identifier"`
	Status     string         `json:"status"`
	Expires    string         `json:"expires"`
	Challenges []challengeDoc `json:"challenges"`
	Wildcard   bool           `json:"wildcard"`
}

func (a authzDoc) challenge(typ string) (challengeDoc, bool) {
	for _, c := range a.Challenges {
		if c.Type == typ {
			return c, true
		}
	}
	return challengeDoc{}, false
}

func (a authzDoc) challengeTypes() []string {
	var out []string
	for _, c := range a.Challenges {
		out = append(out, c.Type)
	}
	return out
}

type challengeDoc struct {
	Type      string      `json:"type"`
	URL       string      `json:"url"`
	Status    string      `json:"status"`
	Token     string      `json:"token"`
	Validated string      `json:"validated"`
	Error     *problemDoc `json:"error"`
}

// HTTP layer.

type resp struct {
	Method string
	URL    string
	Status int
	Header http.Header
	Body   []byte
}

func (r *resp) String() string {
	return fmt.Sprintf("%s %s → %d %s", r.Method, r.URL, r.Status, r.Body)
}

// do sends one request; it reports errors instead of failing the test, so
// goroutines can use it.
func (e *env) do(method, url string, body []byte) (*resp, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/jose+json")
	}
	res, err := e.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &resp{Method: method, URL: url, Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

func (e *env) get(t testing.TB, url string) *resp {
	t.Helper()
	r, err := e.do(http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return r
}

// postRaw posts body as is and checks the one thing every POST response must
// have, success or error: a Replay-Nonce.
func (e *env) postRaw(t testing.TB, url string, body []byte) *resp {
	t.Helper()
	r, err := e.do(http.MethodPost, url, body)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	checkNonceHeader(t, r)
	return r
}

func checkNonceHeader(t testing.TB, r *resp) {
	t.Helper()
	if r.Header.Get("Replay-Nonce") == "" {
		t.Errorf("%s: response has no Replay-Nonce header", r)
	}
}

// nonce fetches a fresh nonce with HEAD newNonce.
func (e *env) nonce(t testing.TB) string {
	t.Helper()
	r, err := e.do(http.MethodHead, e.dir.NewNonce, nil)
	if err != nil {
		t.Fatalf("HEAD newNonce: %v", err)
	}
	n := r.Header.Get("Replay-Nonce")
	if r.Status != http.StatusOK || n == "" {
		t.Fatalf("HEAD newNonce: status %d, nonce %q", r.Status, n)
	}
	return n
}

// mustJSON checks the status and JSON media type and decodes the body into v.
func (r *resp) mustJSON(t testing.TB, status int, v any) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: want status %d", r, status)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q, want application/json", r, ct)
	}
	if v != nil {
		if err := json.Unmarshal(r.Body, v); err != nil {
			t.Fatalf("%s: decoding: %v", r, err)
		}
	}
}

// wantProblem checks that r is a problem document with the given status and
// type (short name, e.g. "malformed"), whose detail mentions every one of
// hints (case-insensitively), and returns it.
func (r *resp) wantProblem(t testing.TB, status int, typ string, hints ...string) problemDoc {
	t.Helper()
	var p problemDoc
	if r.Status != status {
		t.Errorf("%s: want status %d", r, status)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", r, ct)
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Errorf("%s: problem does not decode: %v", r, err)
		return p
	}
	if p.Type != errNS+typ {
		t.Errorf("%s: problem type %q, want %q", r, p.Type, errNS+typ)
	}
	if p.Status != r.Status {
		t.Errorf("%s: problem status %d differs from the HTTP status", r, p.Status)
	}
	if len(strings.TrimSpace(p.Detail)) < 10 {
		t.Errorf("%s: problem detail %q is too thin to act on", r, p.Detail)
	}
	for _, h := range hints {
		if !strings.Contains(strings.ToLower(p.Detail), strings.ToLower(h)) {
			t.Errorf("%s: problem detail %q does not mention %q", r, p.Detail, h)
		}
	}
	return p
}

// links returns the targets of the Link header lines with relation rel.
func links(h http.Header, rel string) []string {
	var out []string
	for _, l := range h.Values("Link") {
		target, params, ok := strings.Cut(l, ";")
		if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
			continue
		}
		if strings.TrimSpace(params) == `rel="`+rel+`"` {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(target, "<"), ">"))
		}
	}
	return out
}

// JWS construction.

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	return b
}

// payloadBytes turns a test's payload into bytes: nil is POST-as-GET (an
// empty payload), strings and byte slices are sent as they are, anything else
// is JSON-encoded.
func payloadBytes(t testing.TB, v any) []byte {
	t.Helper()
	switch p := v.(type) {
	case nil:
		return []byte{}
	case string:
		return []byte(p)
	case []byte:
		return p
	}
	return mustJSON(t, v)
}

func algOf(key crypto.Signer) jose.SignatureAlgorithm {
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		return jose.RS256
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P384():
			return jose.ES384
		case elliptic.P521():
			return jose.ES512
		}
		return jose.ES256
	case ed25519.PublicKey:
		return jose.EdDSA
	}
	panic(fmt.Sprintf("no JWS algorithm for %T", key))
}

// signJWS is the well-behaved path: go-jose signs payload with key, with an
// embedded "jwk" when kid is empty, else with "kid"; nonce "" omits the nonce.
func signJWS(t testing.TB, key crypto.Signer, kid, nonce, url string, payload []byte) []byte {
	t.Helper()
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"url": url}}
	if nonce != "" {
		opts.ExtraHeaders[jose.HeaderKey("nonce")] = nonce
	}
	if kid != "" {
		opts.ExtraHeaders[jose.HeaderKey("kid")] = kid
	} else {
		opts.EmbedJWK = true
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: algOf(key), Key: key}, opts)
	if err != nil {
		t.Fatalf("jose signer: %v", err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatalf("jose sign: %v", err)
	}
	return []byte(obj.FullSerialize())
}

func jwkOf(t testing.TB, pub crypto.PublicKey) json.RawMessage {
	t.Helper()
	b, err := (&jose.JSONWebKey{Key: pub}).MarshalJSON()
	if err != nil {
		t.Fatalf("jwk: %v", err)
	}
	return b
}

// rawSign signs the JWS signing input as alg with key, byte for byte as RFC
// 7518 says, whether or not alg fits the key; key may be a []byte HMAC secret.
func rawSign(t testing.TB, key any, alg string, input []byte) []byte {
	t.Helper()
	switch k := key.(type) {
	case []byte:
		m := hmac.New(sha256.New, k)
		m.Write(input)
		return m.Sum(nil)
	case *rsa.PrivateKey:
		h := sha256.Sum256(input)
		sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
		if err != nil {
			t.Fatalf("rsa sign: %v", err)
		}
		return sig
	case *ecdsa.PrivateKey:
		var digest []byte
		switch k.Curve {
		case elliptic.P384():
			h := sha512.Sum384(input)
			digest = h[:]
		default:
			h := sha256.Sum256(input)
			digest = h[:]
		}
		r, s, err := ecdsa.Sign(rand.Reader, k, digest)
		if err != nil {
			t.Fatalf("ecdsa sign: %v", err)
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		sig := make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
		return sig
	case ed25519.PrivateKey:
		return ed25519.Sign(k, input)
	}
	t.Fatalf("rawSign: unsupported key %T", key)
	return nil
}

// craft builds a flattened JWS from any protected header (a map, or a
// string used verbatim before base64url), signed by rawSign with key (nil:
// an empty signature).
func craft(t testing.TB, protected any, payload []byte, key any) []byte {
	t.Helper()
	var ph []byte
	alg := ""
	switch p := protected.(type) {
	case string:
		ph = []byte(p)
	case map[string]any:
		ph = mustJSON(t, p)
		alg, _ = p["alg"].(string)
	default:
		t.Fatalf("craft: protected header %T", protected)
	}
	prot := b64(ph)
	pay := b64(payload)
	sig := ""
	if key != nil {
		sig = b64(rawSign(t, key, alg, []byte(prot+"."+pay)))
	}
	return mustJSON(t, map[string]string{"protected": prot, "payload": pay, "signature": sig})
}

// Keys and CSRs, generated per test run.

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newKeyOf(t testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newEd25519Key(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newRSAKey(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func thumbprint(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return b64(tp)
}

// csrSpec describes a CSR; the zero CN leaves the subject empty.
type csrSpec struct {
	CN     string
	DNS    []string
	IPs    []net.IP
	Emails []string
}

func makeCSR(t testing.TB, key crypto.Signer, spec csrSpec) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: spec.CN},
		DNSNames:       spec.DNS,
		IPAddresses:    spec.IPs,
		EmailAddresses: spec.Emails,
	}, key)
	if err != nil {
		t.Fatalf("CSR: %v", err)
	}
	return der
}

// Accounts and flows.

// acct is an ACME account: its key and, once registered, its URL ("kid").
type acct struct {
	e   *env
	key crypto.Signer
	url string
}

// newAccount registers a fresh P-256 account.
func (e *env) newAccount(t testing.TB) *acct {
	t.Helper()
	return e.newAccountWithKey(t, newECKey(t))
}

func (e *env) newAccountWithKey(t testing.TB, key crypto.Signer) *acct {
	t.Helper()
	a := &acct{e: e, key: key}
	r := a.postJWK(t, e.dir.NewAccount, map[string]any{"termsOfServiceAgreed": true})
	var doc accountDoc
	r.mustJSON(t, http.StatusCreated, &doc)
	a.url = r.Header.Get("Location")
	if !strings.HasPrefix(a.url, e.srv.URL+"/") {
		t.Fatalf("newAccount Location %q", a.url)
	}
	if doc.Status != "valid" || doc.Orders != a.url+"/orders" {
		t.Fatalf("new account %s", r.Body)
	}
	return a
}

// post sends payload signed with the account's "kid" and a fresh nonce.
func (a *acct) post(t testing.TB, url string, payload any) *resp {
	t.Helper()
	return a.e.postRaw(t, url, signJWS(t, a.key, a.url, a.e.nonce(t), url, payloadBytes(t, payload)))
}

// postJWK sends payload signed with the account key embedded as "jwk".
func (a *acct) postJWK(t testing.TB, url string, payload any) *resp {
	t.Helper()
	return a.e.postRaw(t, url, signJWS(t, a.key, "", a.e.nonce(t), url, payloadBytes(t, payload)))
}

func (a *acct) keyAuth(t testing.TB, token string) string {
	t.Helper()
	return token + "." + thumbprint(t, a.key.Public())
}

// newOrder creates an order and checks the 201 + Location answer.
func (a *acct) newOrder(t testing.TB, ids ...ident) (string, orderDoc) {
	t.Helper()
	r := a.post(t, a.e.dir.NewOrder, map[string]any{"identifiers": ids})
	var o orderDoc
	r.mustJSON(t, http.StatusCreated, &o)
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, a.e.srv.URL+"/acme/order/") {
		t.Fatalf("newOrder Location %q", loc)
	}
	return loc, o
}

func (a *acct) order(t testing.TB, url string) orderDoc {
	t.Helper()
	var o orderDoc
	r := a.post(t, url, nil)
	r.mustJSON(t, http.StatusOK, &o)
	if loc := r.Header.Get("Location"); loc != url {
		t.Errorf("order Location %q, want %q", loc, url)
	}
	return o
}

func (a *acct) authz(t testing.TB, url string) authzDoc {
	t.Helper()
	var az authzDoc
	a.post(t, url, nil).mustJSON(t, http.StatusOK, &az)
	return az
}

// orders lists the account's orders.
func (a *acct) orders(t testing.TB) []string {
	t.Helper()
	var l struct {
		Orders []string `json:"orders"`
	}
	a.post(t, a.url+"/orders", nil).mustJSON(t, http.StatusOK, &l)
	return l.Orders
}

// publishDNS01 puts the TXT record that answers the dns-01 challenge of az.
func (a *acct) publishDNS01(t testing.TB, az authzDoc) challengeDoc {
	t.Helper()
	ch, ok := az.challenge("dns-01")
	if !ok {
		t.Fatalf("authorization for %s has no dns-01 challenge", az.Identifier.Value)
	}
	a.e.dns.AddTXT(validation.DNS01Name(az.Identifier.Value), validation.DNS01TXTValue(a.keyAuth(t, ch.Token)))
	return ch
}

// solve answers every pending authorization of o (dns-01 for names,
// http-01 for IP addresses) and checks each is valid at once.
func (a *acct) solve(t testing.TB, o orderDoc) {
	t.Helper()
	for _, u := range o.Authorizations {
		az := a.authz(t, u)
		if az.Status == "valid" {
			continue
		}
		var ch challengeDoc
		if az.Identifier.Type == "ip" {
			c, ok := az.challenge("http-01")
			if !ok {
				t.Fatalf("ip authorization without http-01: %+v", az)
			}
			a.e.httpTokens.Store(c.Token, a.keyAuth(t, c.Token))
			ch = c
		} else {
			ch = a.publishDNS01(t, az)
		}
		var got challengeDoc
		a.post(t, ch.URL, struct{}{}).mustJSON(t, http.StatusOK, &got)
		if got.Status != "valid" {
			t.Fatalf("challenge %s for %s: %+v", ch.Type, az.Identifier.Value, got)
		}
	}
}

// readyOrder creates an order for ids and validates it until it is ready.
func (a *acct) readyOrder(t testing.TB, ids ...ident) (string, orderDoc) {
	t.Helper()
	u, o := a.newOrder(t, ids...)
	a.solve(t, o)
	o = a.order(t, u)
	if o.Status != "ready" {
		t.Fatalf("order %s is %s after validation, want ready", u, o.Status)
	}
	return u, o
}

// finalize posts a CSR to the order's finalize URL.
func (a *acct) finalize(t testing.TB, o orderDoc, csrDER []byte) *resp {
	t.Helper()
	return a.post(t, o.Finalize, map[string]string{"csr": b64(csrDER)})
}

// issued is a certificate obtained through the whole flow.
type issued struct {
	orderURL string
	certURL  string
	key      crypto.Signer
	chain    []*x509.Certificate
	der      []byte
}

// issue runs newOrder, dns-01/http-01, finalize and download for ids.
func (a *acct) issue(t testing.TB, ids ...ident) issued {
	t.Helper()
	u, o := a.readyOrder(t, ids...)
	key := newECKey(t)
	spec := csrSpec{}
	for _, id := range ids {
		if id.Type == "ip" {
			spec.IPs = append(spec.IPs, net.ParseIP(id.Value))
		} else {
			spec.DNS = append(spec.DNS, id.Value)
		}
	}
	r := a.finalize(t, o, makeCSR(t, key, spec))
	r.mustJSON(t, http.StatusOK, &o)
	if o.Status != "valid" || o.Certificate == "" {
		t.Fatalf("finalize: %s", r)
	}
	chain := a.download(t, o.Certificate)
	return issued{orderURL: u, certURL: o.Certificate, key: key, chain: chain, der: chain[0].Raw}
}

// download fetches a certificate chain and checks its media type and links.
func (a *acct) download(t testing.TB, url string) []*x509.Certificate {
	t.Helper()
	r := a.post(t, url, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("%s: want 200", r)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/pem-certificate-chain" {
		t.Errorf("certificate Content-Type %q, want application/pem-certificate-chain", ct)
	}
	if up := links(r.Header, "up"); len(up) != 0 {
		t.Errorf("certificate response has rel=\"up\" links %q; Caddy would append the chain twice", up)
	}
	return parseChain(t, r.Body)
}

func parseChain(t testing.TB, data []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			t.Fatalf("chain has a %q block", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("chain: %v", err)
		}
		out = append(out, c)
	}
	if len(bytes.TrimSpace(data)) != 0 || len(out) < 2 {
		t.Fatalf("chain: %d certificates, trailing %q", len(out), data)
	}
	return out
}

// verifyChain checks that chain leads from its leaf to the CA's root.
func (e *env) verifyChain(t testing.TB, chain []*x509.Certificate, name string) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(e.ca.Root())
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter}); err != nil {
		t.Errorf("chain does not verify to the CA root for %q: %v", name, err)
	}
}

// sameStrings reports a mismatch of two string lists, order included.
func sameStrings(t testing.TB, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}
