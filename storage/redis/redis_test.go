package redis_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/storage"
	"github.com/acmegw/acmegw/storage/redis"
	"github.com/acmegw/acmegw/storage/storagetest"
)

func open(t testing.TB, url string) *redis.Store {
	t.Helper()
	s, err := redis.New(t.Context(), url)
	if err != nil {
		t.Fatalf("redis.New(%s): %v", url, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openPrivate starts a redis-server of the test's own, opens the store on
// it (with query, if not empty, as URL options) and returns a plain client
// too, to look at what the store wrote.
func openPrivate(tb testing.TB, query string) (*redis.Store, *goredis.Client) {
	tb.Helper()
	srv := testredis.StartServer(tb)
	url := srv.URL()
	if query != "" {
		url += "?" + query
	}
	s := open(tb, url)
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	tb.Cleanup(func() { _ = raw.Close() })
	return s, raw
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		// A queue of its own per subtest: the job cases ask for "the next
		// due job", which a Redis shared with other tests would answer
		// with theirs.
		return open(t, testredis.Start(t)).WithJobQueue(t.Name() + "-" + time.Now().Format("150405.000000000"))
	})
}

// TestConformanceWithoutAutoPipeline runs the suite with each command on
// its own pooled round trip (autopipeline=false), the other way the store
// can talk to Redis.
func TestConformanceWithoutAutoPipeline(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return open(t, testredis.WithOption(t, testredis.Start(t), "autopipeline", "false")).WithJobQueue(t.Name() + "-" + time.Now().Format("150405.000000000"))
	})
}

// TestSharedAcrossInstances checks that two stores on one Redis, standing in
// for two acmegw instances, see each other's writes and share nonces.
func TestSharedAcrossInstances(t *testing.T) {
	url := testredis.Start(t)
	a, b := open(t, url), open(t, url)
	ctx := t.Context()
	acct := &storage.Account{ID: "shared-" + t.Name() + time.Now().Format(time.RFC3339Nano), Thumbprint: "tp-" + time.Now().Format(time.RFC3339Nano), Status: storage.StatusValid}
	if err := a.CreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	got, err := b.GetAccountByThumbprint(ctx, acct.Thumbprint)
	if err != nil || got.ID != acct.ID {
		t.Fatalf("other instance: %v, %v", got, err)
	}
	sa, err := a.NonceSecret(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sb, err := b.NonceSecret(ctx); err != nil || !bytes.Equal(sa, sb) {
		t.Fatalf("the other instance's nonce secret: %x, %v; want %x", sb, err, sa)
	}
	exp := time.Now().Add(time.Minute)
	if ok, err := b.RedeemNonce(ctx, acct.ID, exp); err != nil || !ok {
		t.Fatalf("nonce on the other instance: %v, %v", ok, err)
	}
	if ok, _, _ := a.RedeemNonceGetAccount(ctx, acct.ID, exp, acct.ID, nil); ok {
		t.Fatal("nonce redeemed twice across instances")
	}
}

// TestStaleThumbprintIndex simulates an instance that died after a key
// rollover but before dropping the old index entry: the entry must read as
// not found and must not block a new account with that key.
func TestStaleThumbprintIndex(t *testing.T) {
	url := testredis.Start(t)
	s := open(t, url)
	ctx := t.Context()
	suffix := time.Now().Format("150405.000000000")
	acct := &storage.Account{ID: "stale-" + suffix, Thumbprint: "tp-new-" + suffix, Status: storage.StatusValid}
	if err := s.CreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	raw := goredis.NewClient(opt)
	defer raw.Close()
	old := "tp-old-" + suffix
	if err := raw.Set(ctx, "acmegw:{thumb:"+old+"}", acct.ID, 0).Err(); err != nil {
		t.Fatal(err)
	}

	if _, err := s.GetAccountByThumbprint(ctx, old); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("lookup through stale index: %v, want ErrNotFound", err)
	}
	other := &storage.Account{ID: "other-" + suffix, Thumbprint: old, Status: storage.StatusValid}
	if err := s.CreateAccount(ctx, other); err != nil {
		t.Fatalf("CreateAccount over a stale index entry: %v", err)
	}
	got, err := s.GetAccountByThumbprint(ctx, old)
	if err != nil || got.ID != other.ID {
		t.Fatalf("lookup after repair: %v, %v", got, err)
	}
}

// TestOutage checks that a store reports a dead Redis through Ping and its
// calls, and recovers without being reopened once Redis is back.
func TestOutage(t *testing.T) {
	srv := testredis.StartServer(t)
	s := open(t, srv.URL())
	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded with Redis down")
	}
	if _, err := s.RedeemNonce(ctx, "n", time.Now().Add(time.Minute)); err == nil {
		t.Fatal("RedeemNonce succeeded with Redis down")
	}
	if _, _, err := s.RedeemNonceGetAccount(ctx, "n", time.Now().Add(time.Minute), "a", nil); err == nil {
		t.Fatal("RedeemNonceGetAccount succeeded with Redis down")
	}
	if _, err := s.NonceSecret(ctx); err == nil {
		t.Fatal("NonceSecret succeeded with Redis down")
	}
	srv.Restart()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after restart: %v", err)
	}
	if _, err := s.RedeemNonce(ctx, "n", time.Now().Add(time.Minute)); err != nil {
		t.Fatalf("RedeemNonce after restart: %v", err)
	}
}

func TestNewUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if _, err := redis.New(ctx, "redis://127.0.0.1:1/0"); err == nil {
		t.Fatal("New succeeded against a closed port")
	}
	if _, err := redis.New(ctx, "http://example.com"); err == nil {
		t.Fatal("New accepted a non-Redis URL")
	}
}

func BenchmarkNonce(b *testing.B) {
	s := open(b, testredis.Start(b))
	storagetest.BenchNonce(b, s)
}

// BenchmarkNonceWithoutAutoPipeline is BenchmarkNonce with each command on
// its own pooled round trip, for comparison.
func BenchmarkNonceWithoutAutoPipeline(b *testing.B) {
	s := open(b, testredis.WithOption(b, testredis.Start(b), "autopipeline", "false"))
	storagetest.BenchNonce(b, s)
}

// TestCASRecordNotEndingInVersion checks the compare-and-swap on a record
// whose JSON does not end with its version (written by hand, or by a
// future field order): the script falls back to decoding it whole.
func TestCASRecordNotEndingInVersion(t *testing.T) {
	url := testredis.Start(t)
	s := open(t, url)
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	raw := goredis.NewClient(opt)
	defer raw.Close()
	ctx := t.Context()
	const rec = `{"version":3,"id":"hand","accountID":"acct","status":"pending","identifiers":[],"authzIDs":[],"expires":"2030-01-01T00:00:00Z","createdAt":"2026-01-01T00:00:00Z"}`
	if err := raw.Set(ctx, "acmegw:{order:hand}", rec, 0).Err(); err != nil {
		t.Fatal(err)
	}
	o, err := s.GetOrder(ctx, "hand")
	if err != nil || o.Version != 3 {
		t.Fatalf("GetOrder = %+v, %v", o, err)
	}
	stale := *o
	stale.Version = 2
	if err := s.UpdateOrder(ctx, &stale); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("update from version 2: %v, want ErrConflict", err)
	}
	o.Status = storage.StatusInvalid
	if err := s.UpdateOrder(ctx, o); err != nil || o.Version != 4 {
		t.Fatalf("update from version 3: %v (version %d)", err, o.Version)
	}
	// Written by the store, the record ends with its version again.
	got, err := raw.Get(ctx, "acmegw:{order:hand}").Result()
	if err != nil || !bytes.HasSuffix([]byte(got), []byte(`"version":4}`)) {
		t.Fatalf("stored record %q, %v", got, err)
	}
	if err := s.UpdateOrder(ctx, o); err != nil || o.Version != 5 {
		t.Fatalf("second update: %v (version %d)", err, o.Version)
	}
}

// TestConformanceCluster runs the conformance suite against a real Redis
// Cluster of three masters: every multi-key script and transaction must
// keep its keys in one slot (hash tags), and pipelines across slots must
// still answer as on one node.
func TestConformanceCluster(t *testing.T) {
	url := testredis.StartCluster(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return open(t, url).WithJobQueue(t.Name() + "-" + time.Now().Format("150405.000000000"))
	})
}

// TestEvictionPolicy checks that the store reports the server's
// maxmemory-policy, which serve warns about unless it is noeviction.
func TestEvictionPolicy(t *testing.T) {
	url := testredis.StartServer(t).URL()
	s := open(t, url)
	if p, err := s.EvictionPolicy(t.Context()); err != nil || p != "noeviction" {
		t.Fatalf("EvictionPolicy = %q, %v; want noeviction (redis-server's default)", p, err)
	}
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	raw := goredis.NewClient(opt)
	defer raw.Close()
	if err := raw.ConfigSet(t.Context(), "maxmemory-policy", "volatile-ttl").Err(); err != nil {
		t.Fatal(err)
	}
	if p, err := s.EvictionPolicy(t.Context()); err != nil || p != "volatile-ttl" {
		t.Fatalf("EvictionPolicy = %q, %v; want volatile-ttl", p, err)
	}
}

// TestCreateOrderBesidePool creates orders from many goroutines while the
// store's only pooled connection is held elsewhere: order creation must
// travel in the automatic pipeline like every other command, not wait for a
// pooled connection (a MULTI transaction did, and thousands of concurrent
// newOrders ran the pool dry: "connection pool timeout").
func TestCreateOrderBesidePool(t *testing.T) {
	// A server of its own: one node (the script path), and the test's own
	// pool and pipeline settings whatever ACMEGW_TEST_REDIS_URL says.
	s, raw := openPrivate(t, "autopipeline=true&pool_size=1&pool_timeout=200ms")
	ctx := t.Context()
	// Blocking commands are never pipelined: BLPOP holds a pooled
	// connection for its whole timeout.
	held := make(chan error, 1)
	go func() { held <- s.HoldPooledConnection(ctx, 3*time.Second) }()
	for deadline := time.Now().Add(2 * time.Second); ; {
		list, err := raw.ClientList(ctx).Result()
		if err != nil {
			t.Fatalf("CLIENT LIST: %v", err)
		}
		if strings.Contains(list, "cmd=blpop") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pooled connection is not blocked in BLPOP:\n%s", list)
		}
		time.Sleep(10 * time.Millisecond)
	}
	run := fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Go(func() {
			o := &storage.Order{ID: fmt.Sprintf("%s-%d", run, i), AccountID: "acct-" + run, Status: storage.StatusPending,
				Expires: time.Now().Add(time.Hour), CreatedAt: time.Now()}
			errs <- s.CreateOrder(ctx, o, nil)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("CreateOrder while the pool is busy: %v", err)
		}
	}
	if err := <-held; err != nil {
		t.Fatalf("holding the pooled connection: %v", err)
	}
}
