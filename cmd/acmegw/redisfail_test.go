package main

// Redis failures seen from the outside: an outage under load, and a restart
// of a Redis that persists its data.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/acmegw/acmegw/internal/testredis"
)

// promptly bounds every request made while Redis is down: a store outage
// must be answered, not waited out.
const promptly = 5 * time.Second

// outageProbe is one request made while Redis is down and what it must get.
type outageProbe struct {
	name       string
	method     string
	path       string
	body       []byte
	wantStatus int
	// problem: the response must be a serverInternal problem document
	// with a Retry-After.
	problem bool
}

// run sends the probe and checks the answer, and says how long it took.
func (p outageProbe) run(hc *http.Client, base string) (time.Duration, error) {
	start := time.Now()
	err := p.check(hc, base)
	return time.Since(start), err
}

func (p outageProbe) check(hc *http.Client, base string) error {
	req, err := http.NewRequest(p.method, base+p.path, bytes.NewReader(p.body))
	if err != nil {
		return err
	}
	if p.body != nil {
		req.Header.Set("Content-Type", "application/jose+json")
	}
	start := time.Now()
	resp, err := hc.Do(req)
	elapsed := time.Since(start)
	if err != nil {
		return fmt.Errorf("%s: %v after %v", p.name, err, elapsed)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if elapsed > promptly {
		return fmt.Errorf("%s: answered after %v, want within %v", p.name, elapsed, promptly)
	}
	if resp.StatusCode != p.wantStatus {
		return fmt.Errorf("%s: status %d, want %d: %s", p.name, resp.StatusCode, p.wantStatus, body)
	}
	if !p.problem {
		return nil
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra <= 0 {
		return fmt.Errorf("%s: Retry-After %q, want a positive number of seconds", p.name, resp.Header.Get("Retry-After"))
	}
	if p.method == http.MethodHead {
		return nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		return fmt.Errorf("%s: Content-Type %q", p.name, ct)
	}
	var prob struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(body, &prob); err != nil {
		return fmt.Errorf("%s: %v: %s", p.name, err, body)
	}
	if prob.Type != "urn:ietf:params:acme:error:serverInternal" || prob.Status != http.StatusServiceUnavailable {
		return fmt.Errorf("%s: problem %s", p.name, body)
	}
	return nil
}

// waitReady polls /readyz until it says 200.
func waitReady(t *testing.T, hc *http.Client, base string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		resp, err := hc.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		if time.Since(start) > within {
			t.Fatalf("/readyz not 200 within %v of the restart (last: %v)", within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisFailOutage stops Redis for 3 s while clients issue certificates.
// Meanwhile every request that needs the store is answered promptly with
// 503 serverInternal and Retry-After, /readyz says 503, /healthz stays 200
// and the process lives on; once Redis is back, /readyz recovers, the
// clients that were waiting carry on (x/crypto/acme honours Retry-After) and
// new issuances succeed.
func TestRedisFailOutage(t *testing.T) {
	const loaders = 4

	// Persistent, so the loaders' accounts and orders are still there
	// when Redis comes back.
	rs := testredis.StartServer(t, testredis.AppendOnly())
	gw := startGateway(t, gatewayOptions{RedisURL: rs.URL()})
	pool := gw.RootPool(t)
	hc := gw.HTTPClient(t)
	hc.Timeout = 2 * promptly
	base := gw.BaseURL()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	// A probe account, and an order of its, for store-backed POSTs during
	// the outage; its client does not retry, so each call is one answer.
	probe, err := newXAccount(ctx, gw.DirURL, hc)
	if err != nil {
		t.Fatal(err)
	}
	probe.RetryBackoff = func(int, *http.Request, *http.Response) time.Duration { return -1 }
	probeOrder, err := probe.AuthorizeOrder(ctx, acme.DomainIDs("probe.outage.test"))
	if err != nil {
		t.Fatal(err)
	}

	// Load: each loader issues certificates back to back until told to stop.
	type loadResult struct {
		ok       int
		okAfter  int // issuances begun after Redis came back
		errs     []error
		lastDone time.Time
	}
	var (
		mu      sync.Mutex
		upAt    time.Time // zero while Redis is down or not yet stopped
		results = make([]loadResult, loaders)
		wg      sync.WaitGroup
		stop    = make(chan struct{})
	)
	for l := range loaders {
		c, err := newXAccount(ctx, gw.DirURL, hc)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				begun, up := time.Now(), upAt
				mu.Unlock()
				name := fmt.Sprintf("l%d-%d.outage.test", l, i)
				ic, err := xIssue(ctx, c, gw.DNS, name)
				if err == nil {
					err = ic.verify(pool)
				}
				mu.Lock()
				r := &results[l]
				if err != nil {
					r.errs = append(r.errs, fmt.Errorf("loader %d, %s: %w", l, name, err))
				} else {
					r.ok++
					r.lastDone = time.Now()
					if !up.IsZero() && begun.After(up) {
						r.okAfter++
					}
				}
				mu.Unlock()
				if ctx.Err() != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	time.Sleep(500 * time.Millisecond)

	probes := []outageProbe{
		// Nonces are stateless: handing one out needs no store (redeeming
		// one does, which the GetOrder probe below shows), and a request
		// refused before its nonce is redeemed is answered as usual.
		{name: "GET newNonce", method: http.MethodGet, path: "/acme/new-nonce", wantStatus: 204},
		{name: "HEAD newNonce", method: http.MethodHead, path: "/acme/new-nonce", wantStatus: 200},
		{name: "POST newOrder", method: http.MethodPost, path: "/acme/new-order", body: []byte(`{"protected":"","payload":"","signature":""}`), wantStatus: 400},
		{name: "GET readyz", method: http.MethodGet, path: "/readyz", wantStatus: 503},
		{name: "GET healthz", method: http.MethodGet, path: "/healthz", wantStatus: 200},
		{name: "GET directory", method: http.MethodGet, path: "/directory", wantStatus: 200},
	}

	downAt := time.Now()
	rs.Stop()
	rounds, slowest := 0, time.Duration(0)
	for time.Since(downAt) < 3*time.Second {
		rounds++
		for _, p := range probes {
			d, err := p.run(hc, base)
			slowest = max(slowest, d)
			if err != nil {
				t.Errorf("Redis down for %v: %v", time.Since(downAt).Round(time.Millisecond), err)
			}
		}
		// A real client's POST-as-GET of its order: x/crypto/acme sees
		// the 503 problem with its Retry-After.
		start := time.Now()
		_, err := probe.GetOrder(ctx, probeOrder.URI)
		slowest = max(slowest, time.Since(start))
		var ae *acme.Error
		switch {
		case time.Since(start) > promptly:
			t.Errorf("GetOrder with Redis down took %v", time.Since(start))
		case !errors.As(err, &ae) || ae.StatusCode != 503:
			t.Errorf("GetOrder with Redis down: %v, want a 503 problem", err)
		case ae.Header.Get("Retry-After") == "":
			t.Errorf("GetOrder with Redis down: 503 without Retry-After")
		}
		if t.Failed() {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case <-gw.done:
		t.Fatalf("acmegw exited while Redis was down:\n%s", gw.Log())
	default:
	}

	rs.Restart()
	mu.Lock()
	upAt = time.Now()
	mu.Unlock()
	t.Logf("Redis down for %v: %d rounds of %d probes, slowest answer %v", upAt.Sub(downAt).Round(time.Millisecond), rounds, len(probes)+1, slowest.Round(time.Millisecond))
	t.Logf("/readyz 200 again %v after the restart", waitReady(t, hc, base, 5*time.Second).Round(time.Millisecond))

	// New work succeeds at once: a fresh account and certificate, and the
	// probe's order, made before the outage, is still served.
	fresh, err := newXAccount(ctx, gw.DirURL, hc)
	if err != nil {
		t.Fatalf("new account after the restart: %v", err)
	}
	ic, err := xIssue(ctx, fresh, gw.DNS, "fresh.outage.test")
	if err != nil {
		t.Fatalf("issuance after the restart: %v", err)
	}
	if err := ic.verify(pool); err != nil {
		t.Fatal(err)
	}
	t.Logf("new issuance done %v after the restart", time.Since(upAt).Round(time.Millisecond))
	if o, err := probe.GetOrder(ctx, probeOrder.URI); err != nil || o.Status != acme.StatusPending {
		t.Fatalf("order from before the outage: %v, %v", o, err)
	}

	// The loaders, which sat out the outage on Retry-After, each complete
	// an issuance begun after the restart.
	deadline := time.Now().Add(25 * time.Second)
	for {
		mu.Lock()
		done := 0
		for _, r := range results {
			if r.okAfter > 0 {
				done++
			}
		}
		mu.Unlock()
		if done == loaders {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("only %d of %d loaders completed an issuance after the restart", done, loaders)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopLoad()

	total := 0
	for l, r := range results {
		total += r.ok
		t.Logf("loader %d: %d certificates (%d begun after the restart), %d errors", l, r.ok, r.okAfter, len(r.errs))
		for _, err := range r.errs {
			// A finalize whose job write lost its reply leaves a job that
			// acmegw drops as soon as Redis answers; a client retry that
			// comes first is refused once. Anything else is a failure.
			var ae *acme.Error
			if errors.As(err, &ae) && ae.ProblemType == "urn:ietf:params:acme:error:orderNotReady" && strings.Contains(ae.Detail, "already being finalized") {
				t.Logf("tolerated: %v", err)
				continue
			}
			t.Errorf("%v", err)
		}
	}
	if total == 0 {
		t.Error("the loaders issued nothing")
	}
	if strings.Contains(gw.Log(), "panic") {
		t.Errorf("acmegw log mentions a panic:\n%s", gw.Log())
	}
}

// TestRedisFailPersistence restarts a Redis that keeps an append-only file
// and checks that what acmegw stored survives: an account, a ready order
// (finalized after the restart) and a pending one (validated and finalized
// after the restart), and the nonces handed out before.
func TestRedisFailPersistence(t *testing.T) {
	rs := testredis.StartServer(t, testredis.AppendOnly())
	gw := startGateway(t, gatewayOptions{RedisURL: rs.URL()})
	pool := gw.RootPool(t)
	hc := gw.HTTPClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := newXAccount(ctx, gw.DirURL, hc)
	if err != nil {
		t.Fatal(err)
	}
	// A nonce handed out before the restart must be redeemable after it,
	// so this client must not retry a badNonce.
	c.RetryBackoff = func(int, *http.Request, *http.Response) time.Duration { return -1 }
	ready, err := xReadyOrder(ctx, c, gw.DNS, "ready.persist.test")
	if err != nil {
		t.Fatal(err)
	}
	pending, err := c.AuthorizeOrder(ctx, acme.DomainIDs("pending.persist.test"))
	if err != nil {
		t.Fatal(err)
	}

	rs.Stop()
	rs.Restart()
	t.Logf("/readyz 200 again %v after the restart", waitReady(t, hc, gw.BaseURL(), 5*time.Second).Round(time.Millisecond))

	ic, err := xFinalize(ctx, c, ready, nil, "ready.persist.test")
	if err != nil {
		t.Fatalf("finalizing the order made before the restart: %v", err)
	}
	if err := ic.verify(pool); err != nil {
		t.Fatal(err)
	}
	if ic.orderURL != ready.URI {
		t.Fatalf("certificate for order %s, want %s", ic.orderURL, ready.URI)
	}
	o, err := c.GetOrder(ctx, pending.URI)
	if err != nil || o.Status != acme.StatusPending {
		t.Fatalf("pending order after the restart: %+v, %v", o, err)
	}
	again, err := xCompleteOrder(ctx, c, gw.DNS, o)
	if err != nil {
		t.Fatalf("validating the order made before the restart: %v", err)
	}
	again.URI = pending.URI
	ic, err = xFinalize(ctx, c, again, nil, "pending.persist.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := ic.verify(pool); err != nil {
		t.Fatal(err)
	}
}
