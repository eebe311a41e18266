package main

// Several acmegw instances on one Redis, as DESIGN.md ("Scale") promises:
// any instance accepts any nonce, serves any order and may run any job.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/crypto/acme"

	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/storage"
	"github.com/acmegw/acmegw/validation/validationtest"
)

// roundRobin stands in for a load balancer: every request for the host the
// client knows (from the directory URL) goes to the next instance in turn,
// with the Host header kept, so that the URLs each instance hands out still
// name that host. One client's consecutive requests thus land on different
// instances: a nonce issued by one is redeemed at the next, an order made at
// one is finalized at another.
type roundRobin struct {
	host    string   // the host:port the client talks to
	targets []string // host:port of every instance
	next    atomic.Uint64
	served  []atomic.Int64 // requests sent to each target
	base    http.RoundTripper

	// Error answers, which x/crypto/acme would otherwise hide by
	// retrying (badNonce, 5xx): a nonce from one instance refused by
	// another would show here.
	mu     sync.Mutex
	errors []string
}

// Errors returns the error answers seen so far and forgets them.
func (rr *roundRobin) Errors() []string {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	e := rr.errors
	rr.errors = nil
	return e
}

func newRoundRobin(t testing.TB, pool *x509.CertPool, host string, gws ...*gateway) *roundRobin {
	rr := &roundRobin{
		host:   host,
		served: make([]atomic.Int64, len(gws)),
		base: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool},
			MaxIdleConnsPerHost: 64,
		},
	}
	for _, gw := range gws {
		u, err := url.Parse(gw.DirURL)
		if err != nil {
			t.Fatal(err)
		}
		rr.targets = append(rr.targets, u.Host)
	}
	return rr
}

func (rr *roundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != rr.host {
		return rr.base.RoundTrip(req)
	}
	i := int((rr.next.Add(1) - 1) % uint64(len(rr.targets)))
	rr.served[i].Add(1)
	out := req.Clone(req.Context())
	out.URL.Host = rr.targets[i]
	out.Host = rr.host
	resp, err := rr.base.RoundTrip(out)
	if err == nil && resp.StatusCode >= 400 {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		rr.mu.Lock()
		rr.errors = append(rr.errors, fmt.Sprintf("%s %s at instance %d: %d %s", req.Method, req.URL.Path, i, resp.StatusCode, body))
		rr.mu.Unlock()
	}
	return resp, err
}

// Client is an HTTP client that spreads requests over the instances.
func (rr *roundRobin) Client() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: rr}
}

// newXAccount registers a fresh ECDSA account; safe to call from goroutines.
func newXAccount(ctx context.Context, dirURL string, hc *http.Client) (*acme.Client, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	c := &acme.Client{Key: key, DirectoryURL: dirURL, HTTPClient: hc}
	if _, err := c.Register(ctx, &acme.Account{}, acme.AcceptTOS); err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	return c, nil
}

// xIssued is one certificate obtained through x/crypto/acme.
type xIssued struct {
	names    []string
	orderURL string
	certURL  string
	chain    []*x509.Certificate
	key      crypto.Signer
	client   *acme.Client // the account that obtained it
}

// xReadyOrder creates an order for names and answers its dns-01 challenges
// in dns until the order is ready; safe to call from goroutines.
func xReadyOrder(ctx context.Context, c *acme.Client, dns *validationtest.DNSServer, names ...string) (*acme.Order, error) {
	order, err := c.AuthorizeOrder(ctx, acme.DomainIDs(names...))
	if err != nil {
		return nil, fmt.Errorf("new order: %w", err)
	}
	return xCompleteOrder(ctx, c, dns, order)
}

// xCompleteOrder answers the dns-01 challenges of order's pending
// authorizations and waits until the order is ready.
func xCompleteOrder(ctx context.Context, c *acme.Client, dns *validationtest.DNSServer, order *acme.Order) (*acme.Order, error) {
	for _, u := range order.AuthzURLs {
		authz, err := c.GetAuthorization(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("authorization: %w", err)
		}
		if authz.Status == acme.StatusValid {
			continue
		}
		var chal *acme.Challenge
		for _, ch := range authz.Challenges {
			if ch.Type == "dns-01" {
				chal = ch
			}
		}
		if chal == nil {
			return nil, fmt.Errorf("no dns-01 challenge for %s", authz.Identifier.Value)
		}
		rec, err := c.DNS01ChallengeRecord(chal.Token)
		if err != nil {
			return nil, err
		}
		dns.AddTXT("_acme-challenge."+authz.Identifier.Value+".", rec)
		if _, err := c.Accept(ctx, chal); err != nil {
			return nil, fmt.Errorf("accept %s: %w", authz.Identifier.Value, err)
		}
		if _, err := c.WaitAuthorization(ctx, u); err != nil {
			return nil, fmt.Errorf("authorization %s: %w", authz.Identifier.Value, err)
		}
	}
	ready, err := c.WaitOrder(ctx, order.URI)
	if err != nil {
		return nil, fmt.Errorf("wait order: %w", err)
	}
	ready.URI = order.URI
	return ready, nil
}

// xFinalize finalizes a ready order with a fresh P-256 key (or key, if
// given) and downloads the chain.
func xFinalize(ctx context.Context, c *acme.Client, order *acme.Order, key crypto.Signer, names ...string) (*xIssued, error) {
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		key = k
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, key)
	if err != nil {
		return nil, err
	}
	der, certURL, err := c.CreateOrderCert(ctx, order.FinalizeURL, csr, true)
	if err != nil {
		return nil, fmt.Errorf("finalize: %w", err)
	}
	ic := &xIssued{names: names, orderURL: order.URI, certURL: certURL, key: key, client: c}
	for _, b := range der {
		cert, err := x509.ParseCertificate(b)
		if err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
		ic.chain = append(ic.chain, cert)
	}
	if len(ic.chain) == 0 {
		return nil, errors.New("empty chain")
	}
	return ic, nil
}

// xIssue obtains a certificate for names with dns-01; safe to call from goroutines.
func xIssue(ctx context.Context, c *acme.Client, dns *validationtest.DNSServer, names ...string) (*xIssued, error) {
	order, err := xReadyOrder(ctx, c, dns, names...)
	if err != nil {
		return nil, err
	}
	return xFinalize(ctx, c, order, nil, names...)
}

// verify checks the chain up to pool for every name, and that the leaf
// carries the key it was requested with.
func (ic *xIssued) verify(pool *x509.CertPool) error {
	leaf := ic.chain[0]
	inter := x509.NewCertPool()
	for _, c := range ic.chain[1:] {
		inter.AddCert(c)
	}
	for _, n := range ic.names {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: n}); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	if pub, ok := ic.key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(leaf.PublicKey) {
		return fmt.Errorf("leaf %x does not carry the CSR's key", leaf.SerialNumber)
	}
	return nil
}

func (ic *xIssued) serial() string { return serialHexOf(ic.chain[0]) }

// certsByOrder reads every certificate record straight from Redis (test
// code may SCAN; the server never does) and groups the serials by order.
func certsByOrder(t *testing.T, redisURL string) map[string][]string {
	t.Helper()
	opt, err := goredis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rc := goredis.NewClient(opt)
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	byOrder := map[string][]string{}
	it := rc.Scan(ctx, 0, "acmegw:{cert:*}", 1000).Iterator()
	for it.Next(ctx) {
		raw, err := rc.Get(ctx, it.Val()).Bytes()
		if err != nil {
			t.Fatalf("GET %s: %v", it.Val(), err)
		}
		var c storage.Certificate
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatalf("%s: %v", it.Val(), err)
		}
		byOrder[c.OrderID] = append(byOrder[c.OrderID], c.Serial)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return byOrder
}

// TestScaleSharedRedis runs three acmegw processes on one redis-server, one
// data dir (one CA) and one DNS server, and drives them through a
// round-robin client: 24 concurrent accounts issue 3 certificates each, then
// 20 concurrent finalizes race for one order.
func TestScaleSharedRedis(t *testing.T) {
	const clients, perClient, racers = 24, 3, 20

	rs := testredis.StartServer(t)
	dns := validationtest.NewDNSServer(t)
	dataDir := t.TempDir()
	// One after the other: the first creates the CA in dataDir, the
	// others load it.
	var gws []*gateway
	for range 3 {
		gws = append(gws, startGateway(t, gatewayOptions{RedisURL: rs.URL(), DataDir: dataDir, DNS: dns}))
	}
	pool := gws[0].RootPool(t)
	dirURL, err := url.Parse(gws[0].DirURL)
	if err != nil {
		t.Fatal(err)
	}
	rr := newRoundRobin(t, pool, dirURL.Host, gws...)
	hc := rr.Client()

	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	start := time.Now()
	var (
		mu     sync.Mutex
		certs  []*xIssued
		errs   []error
		wg     sync.WaitGroup
		failed atomic.Bool
	)
	for g := range clients {
		wg.Go(func() {
			c, err := newXAccount(ctx, gws[0].DirURL, hc)
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("client %d: %w", g, err))
				mu.Unlock()
				failed.Store(true)
				return
			}
			for i := range perClient {
				if failed.Load() {
					return
				}
				name := fmt.Sprintf("c%02d-%d.scale.test", g, i)
				ic, err := xIssue(ctx, c, dns, name, "www."+name)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("client %d issuance %d: %w", g, i, err))
					failed.Store(true)
				} else {
					certs = append(certs, ic)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	for _, e := range rr.Errors() {
		t.Errorf("error answer: %s", e)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d certificates by %d concurrent clients in %v; requests per instance: %d %d %d",
		len(certs), clients, time.Since(start).Round(time.Millisecond), rr.served[0].Load(), rr.served[1].Load(), rr.served[2].Load())
	if len(certs) != clients*perClient {
		t.Fatalf("%d certificates, want %d", len(certs), clients*perClient)
	}

	// Every certificate is valid, every order, certificate URL and serial
	// distinct, and each order, read back by its account through the
	// round robin, is valid and names the certificate its client got.
	orders, certURLs, serials := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, ic := range certs {
		if err := ic.verify(pool); err != nil {
			t.Errorf("certificate for %v: %v", ic.names, err)
		}
		if orders[ic.orderURL] || certURLs[ic.certURL] || serials[ic.serial()] {
			t.Errorf("order %s, certificate %s or serial %s seen twice", ic.orderURL, ic.certURL, ic.serial())
		}
		orders[ic.orderURL], certURLs[ic.certURL], serials[ic.serial()] = true, true, true
	}
	for _, ic := range certs {
		wg.Go(func() {
			err := func() error {
				o, err := ic.client.GetOrder(ctx, ic.orderURL)
				if err != nil {
					return err
				}
				if o.Status != acme.StatusValid || o.CertURL != ic.certURL {
					return fmt.Errorf("status %s, certificate %s; want valid with %s", o.Status, o.CertURL, ic.certURL)
				}
				der, err := ic.client.FetchCert(ctx, o.CertURL, false)
				if err != nil {
					return err
				}
				leaf, err := x509.ParseCertificate(der[0])
				if err != nil {
					return err
				}
				if serialHexOf(leaf) != ic.serial() {
					return fmt.Errorf("certificate URL serves serial %s, the client got %s", serialHexOf(leaf), ic.serial())
				}
				return nil
			}()
			if err != nil {
				t.Errorf("order %s read back: %v", ic.orderURL, err)
			}
		})
	}
	wg.Wait()
	for _, e := range rr.Errors() {
		t.Errorf("error answer reading orders back: %s", e)
	}
	// The store is the stronger witness: exactly one certificate record
	// per order, the one the client got, and no others.
	byOrder := certsByOrder(t, rs.URL())
	total := 0
	for _, s := range byOrder {
		total += len(s)
	}
	for _, ic := range certs {
		id := path.Base(ic.orderURL)
		if got := byOrder[id]; len(got) != 1 || got[0] != ic.serial() {
			t.Errorf("order %s has certificates %v in the store, want exactly [%s]", id, got, ic.serial())
		}
	}
	if total != len(certs) {
		t.Errorf("%d certificates in the store for %d issuances", total, len(certs))
	}
	// Every instance did every kind of work, on orders and nonces the
	// others made.
	for i, gw := range gws {
		if n := rr.served[i].Load(); n < int64(clients*perClient) {
			t.Errorf("instance %d served only %d requests", i, n)
		}
		var counts []string
		for _, msg := range []string{`msg="order created"`, `msg="validation finished"`, `order_status=valid`} {
			n := strings.Count(gw.Log(), msg)
			if n == 0 {
				t.Errorf("instance %d logged no %q", i, msg)
			}
			counts = append(counts, fmt.Sprintf("%s %d", msg, n))
		}
		t.Logf("instance %d: %s", i, strings.Join(counts, ", "))
	}
	createdAt := map[string]int{}
	for i, gw := range gws {
		for _, m := range createdLogRE.FindAllStringSubmatch(gw.Log(), -1) {
			createdAt[m[1]] = i
		}
	}
	elsewhere, finalized := 0, 0
	for i, gw := range gws {
		for _, m := range finalizedLogRE.FindAllStringSubmatch(gw.Log(), -1) {
			if c, ok := createdAt[m[1]]; ok {
				finalized++
				if c != i {
					elsewhere++
				}
			}
		}
	}
	t.Logf("%d of %d orders finalized at another instance than the one that created them", elsewhere, finalized)
	if finalized != len(certs) || elsewhere == 0 {
		t.Errorf("%d finalizations logged (want %d), %d of them away from the creating instance", finalized, len(certs), elsewhere)
	}

	t.Run("RacingFinalizes", func(t *testing.T) {
		c, err := newXAccount(ctx, gws[0].DirURL, hc)
		if err != nil {
			t.Fatal(err)
		}
		names := []string{"race.scale.test"}
		order, err := xReadyOrder(ctx, c, dns, names...)
		if err != nil {
			t.Fatal(err)
		}
		// Half the racers finalize with one shared key (a client retrying
		// with the same CSR), the others each with a key of their own.
		shared, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		var (
			wins   []*xIssued
			losses []error
			wg     sync.WaitGroup
			gate   = make(chan struct{})
		)
		for i := range racers {
			wg.Go(func() {
				var key crypto.Signer
				if i%2 == 0 {
					key = shared
				}
				<-gate
				ic, err := xFinalize(ctx, c, order, key, names...)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					losses = append(losses, err)
				} else {
					wins = append(wins, ic)
				}
			})
		}
		close(gate)
		wg.Wait()
		for _, e := range rr.Errors() {
			if !strings.Contains(e, "/finalize at") || !strings.Contains(e, "orderNotReady") {
				t.Errorf("error answer other than a lost race: %s", e)
			}
		}

		for _, err := range losses {
			var ae *acme.Error
			if !errors.As(err, &ae) || ae.ProblemType != "urn:ietf:params:acme:error:orderNotReady" {
				t.Errorf("a losing finalize failed with %v, want orderNotReady", err)
			}
		}
		if len(wins) == 0 {
			t.Fatalf("no finalize succeeded; %d failed", len(losses))
		}
		winners := map[string]bool{}
		for _, ic := range wins {
			if err := ic.verify(pool); err != nil {
				t.Error(err)
			}
			winners[ic.serial()] = true
		}
		got := sortedSerials(certsByOrder(t, rs.URL())[path.Base(order.URI)])
		t.Logf("%d racing finalizes: %d answered with the certificate, %d orderNotReady; store holds %v", racers, len(wins), len(losses), got)
		if len(winners) != 1 || len(got) != 1 || !winners[got[0]] {
			t.Fatalf("finalizes saw serials %v, store holds %v for the order; want one certificate", winners, got)
		}
	})
}

// createdLogRE and finalizedLogRE pick the order id out of acmegw's
// "order created" records and out of the request records of finalizes that
// ended with the order valid.
var (
	createdLogRE   = regexp.MustCompile(`msg="order created" .*?\border=(\S+)`)
	finalizedLogRE = regexp.MustCompile(`msg=request .*?\border=(\S+) order_status=valid\b`)
)

func sortedSerials(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}
