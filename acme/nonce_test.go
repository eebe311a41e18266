package acme

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmegw/acmegw/storage"
	"github.com/acmegw/acmegw/storage/memory"
)

// countingStore counts the nonce redemptions that reach the store and can
// stand in another nonce secret or a failing one.
type countingStore struct {
	storage.Store
	redeems atomic.Int32
	secrets atomic.Int32 // NonceSecret calls

	mu        sync.Mutex
	secret    []byte // replaces the store's own when set
	secretErr error
	block     chan struct{} // NonceSecret waits for it to close, when set,
	entered   chan struct{} // after a send on entered
}

func (c *countingStore) NonceSecret(ctx context.Context) ([]byte, error) {
	c.secrets.Add(1)
	c.mu.Lock()
	block, entered := c.block, c.entered
	c.mu.Unlock()
	if block != nil {
		entered <- struct{}{}
		<-block
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.secretErr != nil {
		return nil, c.secretErr
	}
	if c.secret != nil {
		return append([]byte(nil), c.secret...), nil
	}
	return c.Store.NonceSecret(ctx)
}

func (c *countingStore) RedeemNonce(ctx context.Context, nonce string, expires time.Time) (bool, error) {
	c.redeems.Add(1)
	return c.Store.RedeemNonce(ctx, nonce, expires)
}

func (c *countingStore) RedeemNonceGetAccount(ctx context.Context, nonce string, expires time.Time, id string, also *storage.Prefetch) (bool, *storage.Account, error) {
	c.redeems.Add(1)
	return c.Store.RedeemNonceGetAccount(ctx, nonce, expires, id, also)
}

func newNonceServer(t *testing.T, st storage.Store, ttl time.Duration) *Server {
	t.Helper()
	s := New(Config{Store: st, Logger: slog.New(slog.DiscardHandler), NonceTTL: ttl})
	t.Cleanup(s.Close)
	return s
}

func nonceRequest() *http.Request {
	return httptest.NewRequest(http.MethodPost, "https://acme.test/acme/new-order", nil)
}

// redeemTest opens and redeems nonce as verifyPost does, reporting the
// problem type ("" for success).
func redeemTest(s *Server, nonce string) string {
	r := nonceRequest()
	ref, p := s.openNonce(r, nonce)
	if p == nil {
		p = s.redeemNonce(r, nonce, ref)
	}
	if p != nil {
		return strings.TrimPrefix(p.Type, errorNS)
	}
	return ""
}

func issueTest(t *testing.T, s *Server) string {
	t.Helper()
	n, p := s.issueNonce(nonceRequest())
	if p != nil {
		t.Fatalf("issueNonce: %v", p)
	}
	return n
}

// TestNonceOnce checks a nonce's form, that it redeems once, and that the
// nonces one server hands out differ.
func TestNonceOnce(t *testing.T) {
	t.Parallel()
	s := newNonceServer(t, memory.New(), 0)
	seen := map[string]bool{}
	for range 100 {
		n := issueTest(t, s)
		if len(n) != 48 || strings.Trim(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" || seen[n] {
			t.Fatalf("nonce %q: not a fresh 48-character base64url string", n)
		}
		seen[n] = true
	}
	n := issueTest(t, s)
	if got := redeemTest(s, n); got != "" {
		t.Fatalf("fresh nonce: %s", got)
	}
	if got := redeemTest(s, n); got != "badNonce" {
		t.Fatalf("reused nonce: %q, want badNonce", got)
	}
}

// TestNonceRefusedInProcess checks that nonces this gateway did not issue,
// altered ones and expired ones are refused without a store round trip.
func TestNonceRefusedInProcess(t *testing.T) {
	t.Parallel()
	st := &countingStore{Store: memory.New()}
	s := newNonceServer(t, st, 50*time.Millisecond)
	good := issueTest(t, s)
	other := issueTest(t, newNonceServer(t, memory.New(), 0)) // another secret

	cases := map[string]string{
		"empty":          "",
		"garbage":        "bm90LWEtbm9uY2U",
		"other secret":   other,
		"truncated":      good[:len(good)-1],
		"extended":       good + "A",
		"padded":         good + "==",
		"standard b64":   strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+",
		"with space":     good[:10] + " " + good[11:],
		"case changed":   strings.ToUpper(good),
		"swapped halves": good[24:] + good[:24],
	}
	for i := range good {
		b := []byte(good)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		cases["changed at "+string(rune('0'+i/10))+string(rune('0'+i%10))] = string(b)
	}
	for name, n := range cases {
		if n == good {
			continue
		}
		if got := redeemTest(s, n); got != "badNonce" {
			t.Errorf("%s nonce %q: %q, want badNonce", name, n, got)
		}
	}
	time.Sleep(60 * time.Millisecond)
	if got := redeemTest(s, good); got != "badNonce" {
		t.Errorf("expired nonce: %q, want badNonce", got)
	}
	if c := st.redeems.Load(); c != 0 {
		t.Errorf("%d refused nonces reached the store", c)
	}
	if got := redeemTest(s, issueTest(t, s)); got != "" || st.redeems.Load() != 1 {
		t.Errorf("fresh nonce: %q after %d store redemptions, want success after 1", got, st.redeems.Load())
	}
}

// TestNonceAcrossInstances checks that two servers sharing a store accept
// each other's nonces, once in all.
func TestNonceAcrossInstances(t *testing.T) {
	t.Parallel()
	st := memory.New()
	a, b := newNonceServer(t, st, 0), newNonceServer(t, st, 0)
	n := issueTest(t, a)
	if got := redeemTest(b, n); got != "" {
		t.Fatalf("A's nonce on B: %q", got)
	}
	if got := redeemTest(a, n); got != "badNonce" {
		t.Fatalf("A's nonce back on A after B redeemed it: %q, want badNonce", got)
	}
}

// TestNonceSecretChange checks that a server notices within
// nonceSecretRecheck that the store's secret changed (as after a data loss,
// which also lost the marks of used nonces) and refuses nonces made with the
// old one, and that a store down at the first nonce is a 503 to retry.
func TestNonceSecretChange(t *testing.T) {
	t.Parallel()
	st := &countingStore{Store: memory.New()}
	s := newNonceServer(t, st, 0)
	old := issueTest(t, s)

	st.mu.Lock()
	st.secret = []byte(strings.Repeat("another secret; ", 3))
	st.mu.Unlock()
	// Within nonceSecretRecheck the server keeps its secret...
	if got := redeemTest(s, old); got != "" {
		t.Fatalf("nonce right after the secret changed: %q", got)
	}
	old2 := issueTest(t, s)
	// ...and after it, asks the store again.
	s.nonces.key.Load().checked.Add(-int64(2 * nonceSecretRecheck))
	if got := redeemTest(s, old2); got != "badNonce" {
		t.Fatalf("nonce under the old secret: %q, want badNonce", got)
	}
	if got := redeemTest(s, issueTest(t, s)); got != "" {
		t.Fatalf("nonce under the new secret: %q", got)
	}

	// A store that cannot say which secret is current fails redemption.
	st.mu.Lock()
	st.secretErr = errors.New("store down")
	st.mu.Unlock()
	n := issueTest(t, s) // issuing needs no store
	s.nonces.key.Load().checked.Add(-int64(2 * nonceSecretRecheck))
	if got := redeemTest(s, n); got != "serverInternal" {
		t.Fatalf("redeeming with the store down: %q, want serverInternal", got)
	}
	fresh := newNonceServer(t, st, 0)
	if _, p := fresh.issueNonce(nonceRequest()); p == nil || p.Status != http.StatusServiceUnavailable {
		t.Fatalf("first nonce with the store down: %v, want a 503", p)
	}
}

// TestNonceSecretLoadedOnce checks that concurrent first requests share one
// store lookup's secret.
func TestNonceSecretLoadedOnce(t *testing.T) {
	t.Parallel()
	s := newNonceServer(t, memory.New(), 0)
	var wg sync.WaitGroup
	nonces := make([]string, 16)
	for i := range nonces {
		wg.Go(func() { nonces[i], _ = s.issueNonce(nonceRequest()) })
	}
	wg.Wait()
	for _, n := range nonces {
		if got := redeemTest(s, n); got != "" {
			t.Fatalf("nonce %q from a concurrent first request: %q", n, got)
		}
	}
}

// TestNonceSecretLookupNotQueued checks that while one request asks a slow
// store for the secret, others with a key go on instead of queueing behind
// it, and that the first lookup, which has no key yet, does wait.
func TestNonceSecretLookupNotQueued(t *testing.T) {
	t.Parallel()
	st := &countingStore{Store: memory.New()}
	s := newNonceServer(t, st, 0)
	n := issueTest(t, s)

	block, entered := make(chan struct{}), make(chan struct{})
	st.mu.Lock()
	st.block, st.entered = block, entered
	st.mu.Unlock()
	s.nonces.key.Load().checked.Add(-int64(2 * nonceSecretRecheck))
	slow := make(chan string)
	m := issueTest(t, s)
	go func() { slow <- redeemTest(s, m) }()
	<-entered // the slow lookup holds the lock
	done := make(chan string)
	go func() { done <- redeemTest(s, n) }()
	select {
	case got := <-done:
		if got != "" {
			t.Errorf("nonce redeemed during a slow lookup: %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a redemption queued behind a slow secret lookup")
	}
	close(block)
	if got := <-slow; got != "" {
		t.Errorf("nonce redeemed by the slow lookup: %q", got)
	}
}

// TestNonceSecretStartupOutage checks that with the store down before any
// secret was loaded, concurrent requests do not each wait out a lookup in
// turn: one lookup fails, the others get its error from memory (a 503) for
// a second, and a request whose client gives up stops waiting.
func TestNonceSecretStartupOutage(t *testing.T) {
	t.Parallel()
	st := &countingStore{Store: memory.New()}
	block, entered := make(chan struct{}), make(chan struct{}, 1)
	st.mu.Lock()
	st.block, st.entered, st.secretErr = block, entered, errors.New("store down")
	st.mu.Unlock()
	s := newNonceServer(t, st, 0)

	first := make(chan *Problem)
	go func() { _, p := s.issueNonce(nonceRequest()); first <- p }()
	<-entered // the first lookup holds the lock

	// A request whose client gives up while it waits returns.
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan *Problem)
	go func() { _, p := s.issueNonce(nonceRequest().WithContext(ctx)); gaveUp <- p }()
	cancel()
	select {
	case p := <-gaveUp:
		if p == nil {
			t.Error("a request that gave up got a nonce")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a request kept waiting after its context ended")
	}

	// The waiters get the first lookup's failure without a lookup of their own.
	var wg sync.WaitGroup
	problems := make([]*Problem, 8)
	for i := range problems {
		wg.Go(func() { _, problems[i] = s.issueNonce(nonceRequest()) })
	}
	close(block)
	if p := <-first; p == nil || p.Status != http.StatusServiceUnavailable {
		t.Fatalf("first request with the store down: %+v, want a 503", p)
	}
	wg.Wait()
	for i, p := range problems {
		if p == nil || p.Status != http.StatusServiceUnavailable {
			t.Errorf("waiter %d: %+v, want a 503", i, p)
		}
	}
	if n := st.secrets.Load(); n != 1 {
		t.Errorf("%d secret lookups, want the first one only", n)
	}
}
