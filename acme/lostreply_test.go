package acme_test

import (
	"context"
	"errors"
	"net/http"
	"path"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmegw/acmegw/storage"
	"github.com/acmegw/acmegw/storage/memory"
)

// errLostReply is what a store client reports when the connection drops
// between sending a command and reading its reply.
var errLostReply = errors.New("read tcp: connection reset by peer")

// lostReplyStore fails one armed write the way a Redis restart or failover
// can: either before the write (apply false) or after it ran (apply true),
// so the caller cannot tell which.
type lostReplyStore struct {
	storage.Store
	apply bool
	// order: the next UpdateOrder to processing; authz: the next
	// UpdateAuthorization that starts a validation; job: the next EnqueueJob.
	order, authz, job atomic.Bool
	// outage: how many of the next result writes (an order becoming
	// valid, an authorization decided) fail outright, as during an outage.
	outage atomic.Int32
}

// down reports whether a result write is to fail now.
func (s *lostReplyStore) down() bool {
	for {
		n := s.outage.Load()
		if n <= 0 {
			return false
		}
		if s.outage.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

func (s *lostReplyStore) UpdateOrder(ctx context.Context, o *storage.Order) error {
	if o.Status == storage.StatusProcessing && s.order.CompareAndSwap(true, false) {
		return s.lose(func() error { v := o.Version; err := s.Store.UpdateOrder(ctx, o); o.Version = v; return err })
	}
	if o.Status == storage.StatusValid && s.down() {
		return errLostReply
	}
	return s.Store.UpdateOrder(ctx, o)
}

// FinishJob fails the order's move to valid like UpdateOrder does, while
// the job's completion pipelined with it goes through: the worst case, a
// job gone and its order still processing.
func (s *lostReplyStore) FinishJob(ctx context.Context, o *storage.Order, j *storage.Job, spends []storage.RateSpend) (error, error) {
	if o.Status == storage.StatusValid && s.down() {
		if len(spends) > 0 {
			_, _ = s.Store.SpendRateLimits(ctx, spends)
		}
		return errLostReply, s.Store.CompleteJob(ctx, j)
	}
	return s.Store.FinishJob(ctx, o, j, spends)
}

func (s *lostReplyStore) UpdateAuthorization(ctx context.Context, a *storage.Authorization) error {
	starts := false
	for _, c := range a.Challenges {
		starts = starts || c.Status == storage.StatusProcessing
	}
	if starts && a.Status == storage.StatusPending && s.authz.CompareAndSwap(true, false) {
		return s.lose(func() error { v := a.Version; err := s.Store.UpdateAuthorization(ctx, a); a.Version = v; return err })
	}
	if a.Status != storage.StatusPending && s.down() {
		return errLostReply
	}
	return s.Store.UpdateAuthorization(ctx, a)
}

func (s *lostReplyStore) EnqueueJob(ctx context.Context, j *storage.Job) error {
	if s.job.CompareAndSwap(true, false) {
		return s.lose(func() error { err := s.Store.EnqueueJob(ctx, j); j.Version = 0; return err })
	}
	return s.Store.EnqueueJob(ctx, j)
}

func (s *lostReplyStore) lose(write func() error) error {
	if s.apply {
		if err := write(); err != nil {
			return err
		}
	}
	return errLostReply
}

// TestLostReplyFinalize: a finalize whose move of the order to processing
// fails with an unknown outcome answers 503, and the order is settled as
// soon as the store answers, not when the job's lease (minutes) runs out:
// issued if the write happened, finalizable again at once if it did not.
func TestLostReplyFinalize(t *testing.T) {
	t.Parallel()
	for _, applied := range []bool{true, false} {
		name := map[bool]string{true: "applied", false: "lost"}[applied]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := &lostReplyStore{Store: memory.New(), apply: applied}
			e := newEnv(t, st)
			a := e.newAccount(t)
			u, o := a.readyOrder(t, dnsIDs(name+".lost.example.com")...)
			csr := makeCSR(t, newECKey(t), csrSpec{DNS: []string{name + ".lost.example.com"}})
			st.order.Store(true)
			a.finalize(t, o, csr).wantProblem(t, http.StatusServiceUnavailable, "serverInternal")

			deadline := time.Now().Add(5 * time.Second)
			if applied {
				// No client action: the job issues in the background.
				for o = a.order(t, u); o.Status != "valid"; o = a.order(t, u) {
					if time.Now().After(deadline) {
						t.Fatalf("order is %s 5s after a finalize whose write happened; want valid", o.Status)
					}
					time.Sleep(20 * time.Millisecond)
				}
			} else {
				// The job is gone once settled; the client's retry of the
				// same finalize then goes through.
				for {
					_, err := e.store.GetJob(context.Background(), path.Base(u))
					if errors.Is(err, storage.ErrNotFound) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("job of an order that did not move still there after 5s (%v)", err)
					}
					time.Sleep(20 * time.Millisecond)
				}
				if got := a.order(t, u); got.Status != "ready" {
					t.Fatalf("order is %s, want still ready", got.Status)
				}
				a.finalize(t, o, csr).mustJSON(t, http.StatusOK, &o)
			}
			if o.Status != "valid" || o.Certificate == "" {
				t.Fatalf("order %+v, want valid with a certificate", o)
			}
			if n := e.brand.submits.Load(); n != 1 {
				t.Errorf("%d issuances, want 1", n)
			}
		})
	}
}

// TestLostReplyEnqueue: a finalize whose job was stored but whose reply was
// lost answers 503; the orphan job is dropped as soon as the store answers,
// so the client's retry is not refused as "already being finalized" until
// the job's lease (minutes) runs out.
func TestLostReplyEnqueue(t *testing.T) {
	t.Parallel()
	st := &lostReplyStore{Store: memory.New(), apply: true}
	e := newEnv(t, st)
	a := e.newAccount(t)
	u, o := a.readyOrder(t, dnsIDs("enqueue.lost.example.com")...)
	csr := makeCSR(t, newECKey(t), csrSpec{DNS: []string{"enqueue.lost.example.com"}})
	st.job.Store(true)
	a.finalize(t, o, csr).wantProblem(t, http.StatusServiceUnavailable, "serverInternal")
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := e.store.GetJob(context.Background(), path.Base(u))
		if errors.Is(err, storage.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan job still there after 5s (%v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.finalize(t, o, csr).mustJSON(t, http.StatusOK, &o)
	if o.Status != "valid" || e.brand.submits.Load() != 1 {
		t.Fatalf("order %+v after %d issuances, want valid after 1", o, e.brand.submits.Load())
	}
}

// TestLostReplyValidationStart: a challenge POST whose move of the challenge
// to processing fails after the write ran answers 503, and the validation
// still finishes, instead of leaving the challenge processing for the
// minute after which a stale validation is redone.
func TestLostReplyValidationStart(t *testing.T) {
	t.Parallel()
	st := &lostReplyStore{Store: memory.New(), apply: true}
	e := newEnv(t, st)
	a := e.newAccount(t)
	_, o := a.newOrder(t, dnsIDs("start.lost.example.com")...)
	az := a.authz(t, o.Authorizations[0])
	ch := a.publishDNS01(t, az)
	st.authz.Store(true)
	a.post(t, ch.URL, struct{}{}).wantProblem(t, http.StatusServiceUnavailable, "serverInternal")
	deadline := time.Now().Add(5 * time.Second)
	for az = a.authz(t, o.Authorizations[0]); az.Status != "valid"; az = a.authz(t, o.Authorizations[0]) {
		if time.Now().After(deadline) {
			t.Fatalf("authorization is %s 5s after its validation started; want valid: %+v", az.Status, az)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStoreOutageAfterWork: when the store fails for a moment just as a
// validation or an issuance is to be recorded, the write is retried once it
// answers, instead of the challenge or order staying processing until the
// stale-validation minute or the job's lease has passed.
func TestStoreOutageAfterWork(t *testing.T) {
	t.Parallel()
	st := &lostReplyStore{Store: memory.New()}
	e := newEnv(t, st)
	a := e.newAccount(t)
	u, o := a.newOrder(t, dnsIDs("outage.lost.example.com")...)
	az := a.authz(t, o.Authorizations[0])
	ch := a.publishDNS01(t, az)
	st.outage.Store(3)
	var got challengeDoc
	a.post(t, ch.URL, struct{}{}).mustJSON(t, http.StatusOK, &got)
	deadline := time.Now().Add(5 * time.Second)
	for az = a.authz(t, o.Authorizations[0]); az.Status != "valid"; az = a.authz(t, o.Authorizations[0]) {
		if time.Now().After(deadline) {
			t.Fatalf("authorization is %s 5s after a brief outage; want valid", az.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}

	st.outage.Store(3)
	a.finalize(t, a.order(t, u), makeCSR(t, newECKey(t), csrSpec{DNS: []string{"outage.lost.example.com"}})).mustJSON(t, http.StatusOK, &o)
	for o.Status != "valid" {
		if time.Now().After(deadline) {
			t.Fatalf("order is %s 5s after a brief outage; want valid", o.Status)
		}
		time.Sleep(20 * time.Millisecond)
		o = a.order(t, u)
	}
	if n := e.brand.submits.Load(); n != 1 {
		t.Errorf("%d issuances, want 1", n)
	}
	// The job that went with the failed write was queued again, and
	// completed once the order moved.
	if _, err := e.store.GetJob(context.Background(), path.Base(u)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("job of the valid order: %v, want it completed", err)
	}
}
