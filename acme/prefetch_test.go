package acme_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/storage"
	"github.com/acmegw/acmegw/storage/memory"
	"github.com/acmegw/acmegw/storage/redis"
)

// readCountingStore counts the reads a handler makes on its own, as
// opposed to those RedeemNonceGetAccount makes with the account.
type readCountingStore struct {
	storage.Store
	orders, authzs, certs atomic.Int64
}

func (c *readCountingStore) GetOrder(ctx context.Context, id string) (*storage.Order, error) {
	c.orders.Add(1)
	return c.Store.GetOrder(ctx, id)
}

func (c *readCountingStore) GetAuthorization(ctx context.Context, id string) (*storage.Authorization, error) {
	c.authzs.Add(1)
	return c.Store.GetAuthorization(ctx, id)
}

func (c *readCountingStore) GetCertificate(ctx context.Context, serial string) (*storage.Certificate, error) {
	c.certs.Add(1)
	return c.Store.GetCertificate(ctx, serial)
}

// TestPrefetchedReads checks that the order, authorization or certificate
// a request's URL names is read with its account (no read of its own), on
// both stores, and that the record still answers only to its account.
func TestPrefetchedReads(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, st storage.Store) {
		cs := &readCountingStore{Store: st}
		e := newEnv(t, cs)
		a := e.newAccount(t)
		got := e.issueAndCount(t, a, cs)
		if got.order != 0 || got.authz != 0 || got.cert != 0 {
			t.Errorf("handlers read the record their URL names themselves: %+v; want none (prefetched)", got)
		}

		// Another account gets 404 for each, exactly as without prefetching.
		b := e.newAccount(t)
		for _, url := range []string{got.orderURL, got.authzURL, got.certURL} {
			b.post(t, url, nil).wantProblem(t, http.StatusNotFound, "malformed", "for this account")
		}
	}
	t.Run("memory", func(t *testing.T) { run(t, memory.New()) })
	t.Run("redis", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := redis.New(ctx, testredis.Start(t))
		if err != nil {
			t.Fatalf("redis store: %v", err)
		}
		run(t, st.WithJobQueue(fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())))
	})
}

type prefetchCounts struct {
	orderURL, authzURL, certURL string
	order, authz, cert          int64
}

// issueAndCount issues a certificate and then fetches its order, its
// authorization and the certificate once more, counting the handler-side
// reads of those three POST-as-GETs.
func (e *env) issueAndCount(t *testing.T, a *acct, cs *readCountingStore) prefetchCounts {
	t.Helper()
	is := a.issue(t, dnsIDs("prefetch.example")...)
	o := a.order(t, is.orderURL)
	out := prefetchCounts{orderURL: is.orderURL, authzURL: o.Authorizations[0], certURL: is.certURL}
	o0, a0, c0 := cs.orders.Load(), cs.authzs.Load(), cs.certs.Load()
	a.order(t, is.orderURL) // a valid order reads no authorization either
	out.order = cs.orders.Load() - o0
	a.authz(t, out.authzURL)
	out.authz = cs.authzs.Load() - a0
	a.download(t, is.certURL)
	out.cert = cs.certs.Load() - c0
	return out
}
