package bench

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Endpoints whose latency the bench reports, in the order of an issuance.
const (
	epDirectory  = "directory"
	epNewNonce   = "newNonce"
	epNewAccount = "newAccount"
	epNewOrder   = "newOrder"
	epAuthz      = "authz"
	epChallenge  = "challenge"
	epFinalize   = "finalize"
	epOrder      = "order poll"
	epCert       = "cert download"
)

var endpointOrder = []string{epDirectory, epNewNonce, epNewAccount, epNewOrder, epAuthz, epChallenge, epFinalize, epOrder, epCert}

const maxBody = 1 << 20

// problemError is a failure of one issuance, keyed by its problem type.
type problemError struct {
	Kind   string // ACME problem type without the urn prefix, or a bench category
	Where  string // endpoint
	Detail string
}

func (e *problemError) Error() string { return e.Where + ": " + e.Kind + ": " + e.Detail }

func fail(kind, where, format string, args ...any) *problemError {
	return &problemError{Kind: kind, Where: where, Detail: fmt.Sprintf(format, args...)}
}

// errorKind is the key under which err is counted.
func errorKind(err error) (kind, detail string) {
	var pe *problemError
	if errors.As(err, &pe) {
		return pe.Kind, pe.Where + ": " + pe.Detail
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout", err.Error()
	}
	return "other", err.Error()
}

type directory struct {
	NewNonce   string `json:"newNonce"`
	NewAccount string `json:"newAccount"`
	NewOrder   string `json:"newOrder"`
}

type problemDoc struct {
	Type   string `json:"type"`
	Detail string `json:"detail"`
}

type orderDoc struct {
	Status         string      `json:"status"`
	Authorizations []string    `json:"authorizations"`
	Finalize       string      `json:"finalize"`
	Certificate    string      `json:"certificate"`
	Error          *problemDoc `json:"error"`
}

type challengeDoc struct {
	Type   string      `json:"type"`
	URL    string      `json:"url"`
	Status string      `json:"status"`
	Token  string      `json:"token"`
	Error  *problemDoc `json:"error"`
}

type authzDoc struct {
	Status     string `json:"status"`
	Identifier struct {
		Value string `json:"value"`
	} `json:"identifier"`
	Wildcard   bool           `json:"wildcard"`
	Challenges []challengeDoc `json:"challenges"`
}

// client is one ACME client: its own account key, account, connection and
// nonce. It is used by one goroutine.
type client struct {
	cfg     *Config
	http    *http.Client
	rec     *recorder
	dir     directory
	key     *ecdsa.PrivateKey // account key, ES256
	jwk     []byte            // the account JWK, also its thumbprint input
	thumb   string
	kid     string
	nonce   string
	certKey crypto.Signer
}

func newClient(cfg *Config, hc *http.Client, rec *recorder) (*client, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	pub, err := key.PublicKey.ECDH()
	if err != nil {
		return nil, err
	}
	raw := pub.Bytes() // 0x04 || X || Y
	b64 := base64.RawURLEncoding.EncodeToString
	// Members in lexicographic order: this is also the RFC 7638 thumbprint input.
	jwk := []byte(`{"crv":"P-256","kty":"EC","x":"` + b64(raw[1:33]) + `","y":"` + b64(raw[33:]) + `"}`)
	sum := sha256.Sum256(jwk)
	certKey, err := newCertKey(cfg.KeyType)
	if err != nil {
		return nil, err
	}
	return &client{cfg: cfg, http: hc, rec: rec, key: key, jwk: jwk, thumb: b64(sum[:]), certKey: certKey}, nil
}

// newCertKey is the client's certificate key. One per client, reused for
// its issuances: the server's work does not depend on it, and generating
// RSA keys would eat the CPU the server under test needs.
func newCertKey(keyType string) (crypto.Signer, error) {
	switch keyType {
	case "", "ec256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ec384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "rsa2048":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "rsa3072":
		return rsa.GenerateKey(rand.Reader, 3072)
	}
	return nil, fmt.Errorf("key type %q: want ec256, ec384, rsa2048 or rsa3072", keyType)
}

// setup fetches the directory and a nonce and creates the account.
func (c *client) setup(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.Directory, nil)
	if err != nil {
		return err
	}
	resp, body, err := c.do(req, epDirectory)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fail("http-"+strconv.Itoa(resp.StatusCode), epDirectory, "GET directory: %.200s", body)
	}
	if err := json.Unmarshal(body, &c.dir); err != nil || c.dir.NewNonce == "" || c.dir.NewAccount == "" || c.dir.NewOrder == "" {
		return fail("malformedResponse", epDirectory, "directory: %v %.200s", err, body)
	}
	if err := c.fetchNonce(ctx); err != nil {
		return err
	}
	resp, body, err = c.post(ctx, epNewAccount, c.dir.NewAccount, []byte(`{"termsOfServiceAgreed":true}`))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fail("http-"+strconv.Itoa(resp.StatusCode), epNewAccount, "%.200s", body)
	}
	c.kid = resp.Header.Get("Location")
	if c.kid == "" {
		return fail("malformedResponse", epNewAccount, "no Location header")
	}
	return nil
}

func (c *client) fetchNonce(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, c.dir.NewNonce, nil)
	if err != nil {
		return err
	}
	resp, _, err := c.do(req, epNewNonce)
	if err != nil {
		return err
	}
	c.nonce = resp.Header.Get("Replay-Nonce")
	if c.nonce == "" {
		return fail("malformedResponse", epNewNonce, "HEAD newNonce: status %d without Replay-Nonce", resp.StatusCode)
	}
	return nil
}

// do sends req, reads the whole body and records the round trip's latency.
func (c *client) do(req *http.Request, endpoint string) (*http.Response, []byte, error) {
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fail("transport", endpoint, "%v", err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	c.rec.latency(endpoint, time.Since(start))
	if err != nil {
		return nil, nil, fail("transport", endpoint, "reading body: %v", err)
	}
	if n := resp.Header.Get("Replay-Nonce"); n != "" {
		c.nonce = n
	}
	return resp, body, nil
}

// post sends a JWS-signed POST (payload nil: POST-as-GET), retrying once on
// badNonce as real clients do. A problem document comes back as an error.
func (c *client) post(ctx context.Context, endpoint, url string, payload []byte) (*http.Response, []byte, error) {
	for attempt := 0; ; attempt++ {
		if c.nonce == "" {
			if err := c.fetchNonce(ctx); err != nil {
				return nil, nil, err
			}
		}
		body, err := c.sign(url, payload)
		if err != nil {
			return nil, nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Content-Type", "application/jose+json")
		if endpoint == epCert {
			req.Header.Set("Accept", "application/pem-certificate-chain")
		}
		resp, respBody, err := c.do(req, endpoint)
		if err != nil {
			c.nonce = "" // the nonce may or may not have been used
			return nil, nil, err
		}
		if resp.StatusCode < 400 {
			return resp, respBody, nil
		}
		var p problemDoc
		_ = json.Unmarshal(respBody, &p)
		kind := strings.TrimPrefix(p.Type, "urn:ietf:params:acme:error:")
		if kind == "" {
			kind = "http-" + strconv.Itoa(resp.StatusCode)
		}
		if kind == "badNonce" && attempt == 0 {
			c.rec.retry("badNonce")
			continue
		}
		return nil, nil, fail(kind, endpoint, "HTTP %d: %s", resp.StatusCode, p.Detail)
	}
}

// sign builds the flattened JWS (RFC 7515 §7.2.2) of payload for url.
func (c *client) sign(url string, payload []byte) ([]byte, error) {
	var hdr []byte
	hdr = append(hdr, `{"alg":"ES256",`...)
	if c.kid != "" {
		hdr = append(hdr, `"kid":`...)
		hdr = strconv.AppendQuote(hdr, c.kid)
	} else {
		hdr = append(hdr, `"jwk":`...)
		hdr = append(hdr, c.jwk...)
	}
	hdr = append(hdr, `,"nonce":`...)
	hdr = strconv.AppendQuote(hdr, c.nonce)
	hdr = append(hdr, `,"url":`...)
	hdr = strconv.AppendQuote(hdr, url)
	hdr = append(hdr, '}')
	c.nonce = ""

	enc := base64.RawURLEncoding
	signingInput := make([]byte, 0, enc.EncodedLen(len(hdr))+1+enc.EncodedLen(len(payload)))
	signingInput = enc.AppendEncode(signingInput, hdr)
	protectedLen := len(signingInput)
	signingInput = append(signingInput, '.')
	signingInput = enc.AppendEncode(signingInput, payload)
	digest := sha256.Sum256(signingInput)
	r, s, err := ecdsa.Sign(rand.Reader, c.key, digest[:])
	if err != nil {
		return nil, err
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])

	out := make([]byte, 0, len(signingInput)+160)
	out = append(out, `{"protected":"`...)
	out = append(out, signingInput[:protectedLen]...)
	out = append(out, `","payload":"`...)
	out = append(out, signingInput[protectedLen+1:]...)
	out = append(out, `","signature":"`...)
	out = enc.AppendEncode(out, sig[:])
	out = append(out, `"}`...)
	return out, nil
}

// issue runs one full issuance for names: newOrder, dns-01 for each
// authorization, finalize, order polling and certificate download.
func (c *client) issue(ctx context.Context, names []string) error {
	var ids strings.Builder
	ids.WriteString(`{"identifiers":[`)
	for i, n := range names {
		if i > 0 {
			ids.WriteByte(',')
		}
		ids.WriteString(`{"type":"dns","value":`)
		ids.WriteString(strconv.Quote(n))
		ids.WriteByte('}')
	}
	ids.WriteString(`]}`)
	resp, body, err := c.post(ctx, epNewOrder, c.dir.NewOrder, []byte(ids.String()))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return fail("http-"+strconv.Itoa(resp.StatusCode), epNewOrder, "want 201, got %d", resp.StatusCode)
	}
	orderURL := resp.Header.Get("Location")
	var order orderDoc
	if err := json.Unmarshal(body, &order); err != nil || orderURL == "" || order.Finalize == "" {
		return fail("malformedResponse", epNewOrder, "order: %v, Location %q", err, orderURL)
	}

	var published [][2]string
	defer func() {
		for _, p := range published {
			c.cfg.TXT.RemoveTXT(p[0], p[1])
		}
	}()
	for _, authzURL := range order.Authorizations {
		if err := c.authorize(ctx, authzURL, &published); err != nil {
			return err
		}
	}

	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, c.certKey)
	if err != nil {
		return err
	}
	payload := []byte(`{"csr":"` + base64.RawURLEncoding.EncodeToString(csr) + `"}`)
	resp, body, err = c.post(ctx, epFinalize, order.Finalize, payload)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, &order); err != nil {
		return fail("malformedResponse", epFinalize, "order: %v", err)
	}
	// Poll the order until it is valid: at once, then as Retry-After says.
	ra := resp.Header.Get("Retry-After")
	for first := true; order.Status != "valid"; first = false {
		switch order.Status {
		case "processing", "ready", "pending":
		case "invalid":
			kind, detail := "orderInvalid", ""
			if order.Error != nil {
				kind, detail = strings.TrimPrefix(order.Error.Type, "urn:ietf:params:acme:error:"), order.Error.Detail
			}
			return fail(kind, epOrder, "order invalid: %s", detail)
		default:
			return fail("malformedResponse", epOrder, "order status %q", order.Status)
		}
		if !first {
			if err := c.wait(ctx, ra); err != nil {
				return fail("timeout", epOrder, "order still %s: %v", order.Status, err)
			}
		}
		resp, body, err = c.post(ctx, epOrder, orderURL, nil)
		if err != nil {
			return err
		}
		order = orderDoc{}
		if err := json.Unmarshal(body, &order); err != nil {
			return fail("malformedResponse", epOrder, "order: %v", err)
		}
		ra = resp.Header.Get("Retry-After")
	}
	if order.Certificate == "" {
		return fail("malformedResponse", epOrder, "valid order without certificate URL")
	}
	_, body, err = c.post(ctx, epCert, order.Certificate, nil)
	if err != nil {
		return err
	}
	return checkChain(body, names)
}

// authorize answers the dns-01 challenge of one authorization and waits
// until the authorization is valid.
func (c *client) authorize(ctx context.Context, authzURL string, published *[][2]string) error {
	_, body, err := c.post(ctx, epAuthz, authzURL, nil)
	if err != nil {
		return err
	}
	var a authzDoc
	if err := json.Unmarshal(body, &a); err != nil {
		return fail("malformedResponse", epAuthz, "authorization: %v", err)
	}
	if a.Status == "valid" {
		return nil // reused; unique names should prevent this
	}
	var ch *challengeDoc
	for i := range a.Challenges {
		if a.Challenges[i].Type == "dns-01" {
			ch = &a.Challenges[i]
		}
	}
	if ch == nil {
		return fail("noChallenge", epAuthz, "no dns-01 challenge for %s", a.Identifier.Value)
	}
	name, value := challengeName(a.Identifier.Value), txtValue(ch.Token+"."+c.thumb)
	c.cfg.TXT.AddTXT(name, value)
	*published = append(*published, [2]string{name, value})

	resp, body, err := c.post(ctx, epChallenge, ch.URL, []byte("{}"))
	if err != nil {
		return err
	}
	var got challengeDoc
	if err := json.Unmarshal(body, &got); err != nil {
		return fail("malformedResponse", epChallenge, "challenge: %v", err)
	}
	switch got.Status {
	case "valid":
		return nil // validated in the same request: no polling
	case "invalid":
		return challengeFailed(epChallenge, got.Error)
	}
	// Poll the authorization: at once, then as Retry-After says.
	ra := resp.Header.Get("Retry-After")
	for first := true; ; first = false {
		if !first {
			if err := c.wait(ctx, ra); err != nil {
				return fail("timeout", epAuthz, "authorization still %s: %v", a.Status, err)
			}
		}
		resp, body, err = c.post(ctx, epAuthz, authzURL, nil)
		if err != nil {
			return err
		}
		a = authzDoc{}
		if err := json.Unmarshal(body, &a); err != nil {
			return fail("malformedResponse", epAuthz, "authorization: %v", err)
		}
		switch a.Status {
		case "valid":
			return nil
		case "pending":
		default:
			for _, ch := range a.Challenges {
				if ch.Error != nil {
					return challengeFailed(epAuthz, ch.Error)
				}
			}
			return fail("authz-"+a.Status, epAuthz, "authorization %s", a.Status)
		}
		ra = resp.Header.Get("Retry-After")
	}
}

func challengeFailed(where string, p *problemDoc) error {
	if p == nil {
		return fail("challengeInvalid", where, "challenge invalid without error")
	}
	return fail(strings.TrimPrefix(p.Type, "urn:ietf:params:acme:error:"), where, "challenge invalid: %s", p.Detail)
}

// wait sleeps before the next poll: Retry-After (seconds or an HTTP date)
// capped at MaxRetryAfter, or PollInterval without one. It fails once the
// issuance has waited PollTimeout in total.
func (c *client) wait(ctx context.Context, retryAfter string) error {
	d := c.cfg.PollInterval
	if ra, ok := parseRetryAfter(retryAfter, time.Now()); ok {
		d = ra
	}
	d = min(d, c.cfg.MaxRetryAfter)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return context.DeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// parseRetryAfter reads a Retry-After value (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func txtValue(keyAuthorization string) string {
	sum := sha256.Sum256([]byte(keyAuthorization))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// checkChain makes sure the download is a PEM chain whose leaf names names.
func checkChain(body []byte, names []string) error {
	block, _ := pem.Decode(body)
	if block == nil || block.Type != "CERTIFICATE" {
		return fail("malformedResponse", epCert, "not a PEM certificate chain: %.80q", body)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fail("malformedResponse", epCert, "leaf: %v", err)
	}
	if len(leaf.DNSNames) != len(names) {
		return fail("wrongCertificate", epCert, "leaf names %v, want %v", leaf.DNSNames, names)
	}
	for _, n := range names {
		if err := leaf.VerifyHostname(n); err != nil {
			return fail("wrongCertificate", epCert, "%v", err)
		}
	}
	return nil
}
