package acme_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmegw/acmegw/acme"
	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/storage"
	"github.com/acmegw/acmegw/storage/memory"
	"github.com/acmegw/acmegw/storage/redis"
)

// fakeBrand is a programmable asynchronous brand: its Submit and Poll
// answers come from the test's functions, and it signs with the env's
// built-in CA when told to.
type fakeBrand struct {
	e       *env
	submits atomic.Int64
	polls   atomic.Int64

	mu      sync.Mutex
	submit  func(n int64) (issuer.Result, error) // nil: sign at once
	poll    func(n int64) (issuer.Result, error) // nil: sign
	pending map[string]issuer.Request            // by ticket
}

func (f *fakeBrand) sign(ctx context.Context, req issuer.Request) (issuer.Result, error) {
	return f.e.ca.Submit(ctx, req)
}

func (f *fakeBrand) Submit(ctx context.Context, req issuer.Request) (issuer.Result, error) {
	n := f.submits.Add(1)
	f.mu.Lock()
	fn := f.submit
	f.mu.Unlock()
	if fn == nil {
		return f.sign(ctx, req)
	}
	res, err := fn(n)
	if err == nil && res.Ticket != "" {
		f.mu.Lock()
		f.pending[res.Ticket] = req
		f.mu.Unlock()
	}
	if err == nil && res.Ticket == "" && res.Chain == nil {
		return f.sign(ctx, req)
	}
	return res, err
}

func (f *fakeBrand) Poll(ctx context.Context, ticket string) (issuer.Result, error) {
	n := f.polls.Add(1)
	f.mu.Lock()
	fn := f.poll
	req, ok := f.pending[ticket]
	f.mu.Unlock()
	if !ok {
		return issuer.Result{}, fmt.Errorf("fake brand: unknown ticket %q", ticket)
	}
	if fn != nil {
		res, err := fn(n)
		if err != nil || res.Ticket != "" {
			return res, err
		}
	}
	return f.sign(ctx, req)
}

func (f *fakeBrand) Revoke(ctx context.Context, cert *x509.Certificate, reason int) error { return nil }

func (f *fakeBrand) Describe() issuer.Product { return f.e.ca.Describe() }

var _ issuer.Issuer = (*fakeBrand)(nil)

// jobEnv runs fn on the memory and the Redis store with a "fake" profile
// signed by a fakeBrand. deadline is the profile's Deadline (0: default).
func jobEnv(t *testing.T, deadline time.Duration, tweak func(*acme.Config), fn func(t *testing.T, e *env, fb *fakeBrand)) {
	t.Helper()
	for _, name := range []string{"memory", "redis"} {
		t.Run(name, func(t *testing.T) {
			var st storage.Store
			if name == "memory" {
				st = memory.New()
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				rs, err := redis.New(ctx, testredis.Start(t))
				if err != nil {
					t.Fatalf("redis store: %v", err)
				}
				st = rs.WithJobQueue(fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano()))
			}
			fb := &fakeBrand{pending: map[string]issuer.Request{}}
			opts := []envOption{withBrand("fake", fb,
				issuer.Profile{Name: "fake", Description: "a brand that takes its time", Brand: "fake", Deadline: deadline})}
			if tweak != nil {
				opts = append(opts, withConfig(tweak))
			}
			e := newEnv(t, st, opts...)
			fb.e = e
			fn(t, e, fb)
		})
	}
}

// readyFakeOrder creates an order for the fake profile and validates it.
func (a *acct) readyFakeOrder(t *testing.T, names ...string) (string, orderDoc) {
	t.Helper()
	r := a.post(t, a.e.dir.NewOrder, map[string]any{"identifiers": dnsIDs(names...), "profile": "fake"})
	var o orderDoc
	r.mustJSON(t, http.StatusCreated, &o)
	u := r.Header.Get("Location")
	a.solve(t, o)
	if o = a.order(t, u); o.Status != "ready" {
		t.Fatalf("order is %s, want ready", o.Status)
	}
	return u, o
}

// finalizeFake finalizes a fake-profile order for names and returns the
// response's order and Retry-After.
func (a *acct) finalizeFake(t *testing.T, o orderDoc, names ...string) (orderDoc, string) {
	t.Helper()
	r := a.finalize(t, o, makeCSR(t, newECKey(t), csrSpec{DNS: names}))
	var got orderDoc
	r.mustJSON(t, http.StatusOK, &got)
	return got, r.Header.Get("Retry-After")
}

// waitOrder polls the order until it leaves processing, checking that every
// processing answer carries a Retry-After.
func (a *acct) waitOrder(t *testing.T, u string, within time.Duration) orderDoc {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := a.post(t, u, nil)
		var o orderDoc
		r.mustJSON(t, http.StatusOK, &o)
		if o.Status != "processing" {
			return o
		}
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("processing order without Retry-After")
		}
		if time.Now().After(deadline) {
			t.Fatalf("order still processing after %s", within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runJobs starts the job worker; the env's Close waits for it.
func runJobs(t *testing.T, e *env) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go e.server.RunJobs(ctx)
}

func orderID(u string) string { return u[strings.LastIndex(u, "/")+1:] }

// TestJobTicketThenPoll: the brand accepts with a ticket, the finalize
// answer is processing with Retry-After, and the job queue polls the brand
// until it issues.
func TestJobTicketThenPoll(t *testing.T) {
	t.Parallel()
	jobEnv(t, 0, nil, func(t *testing.T, e *env, fb *fakeBrand) {
		fb.submit = func(int64) (issuer.Result, error) {
			return issuer.Result{Ticket: "T-1", RetryAfter: time.Second}, nil
		}
		fb.poll = func(n int64) (issuer.Result, error) {
			if n < 2 {
				return issuer.Result{Ticket: "T-1", RetryAfter: time.Second}, nil
			}
			return issuer.Result{}, nil // sign
		}
		a := e.newAccount(t)
		u, o := a.readyFakeOrder(t, "ticket.example.com")
		got, retry := a.finalizeFake(t, o, "ticket.example.com")
		if got.Status != "processing" || retry != "1" {
			t.Fatalf("finalize answered %s with Retry-After %q, want processing and 1", got.Status, retry)
		}
		job, err := e.store.GetJob(t.Context(), orderID(u))
		if err != nil || job.Ticket != "T-1" {
			t.Fatalf("job after finalize: %+v, %v", job, err)
		}
		runJobs(t, e)
		done := a.waitOrder(t, u, 15*time.Second)
		if done.Status != "valid" || done.Certificate == "" {
			t.Fatalf("order: %+v", done)
		}
		chain := a.download(t, done.Certificate)
		e.verifyChain(t, chain, "ticket.example.com")
		if s, p := fb.submits.Load(), fb.polls.Load(); s != 1 || p != 2 {
			t.Errorf("%d submits and %d polls, want 1 and 2", s, p)
		}
		if _, err := e.store.GetJob(t.Context(), orderID(u)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("job after issuance: %v, want it completed", err)
		}
	})
}

// TestJobPermanentRefusal: a permanent brand error makes the order invalid
// with the brand's problem, already in the finalize answer.
func TestJobPermanentRefusal(t *testing.T) {
	t.Parallel()
	jobEnv(t, 0, nil, func(t *testing.T, e *env, fb *fakeBrand) {
		fb.submit = func(int64) (issuer.Result, error) {
			return issuer.Result{}, fmt.Errorf("fake: %w", &issuer.Error{Type: "rejectedIdentifier", Detail: "the brand does not sign names under .bank", Permanent: true})
		}
		a := e.newAccount(t)
		u, o := a.readyFakeOrder(t, "refused.example.com")
		got, _ := a.finalizeFake(t, o, "refused.example.com")
		if got.Status != "invalid" || got.Error == nil || got.Error.Type != errNS+"rejectedIdentifier" ||
			!strings.Contains(got.Error.Detail, "does not sign names under .bank") {
			t.Fatalf("finalize answered %+v (error %+v)", got, got.Error)
		}
		if o := a.order(t, u); o.Status != "invalid" || o.Error == nil || o.Error.Type != errNS+"rejectedIdentifier" {
			t.Errorf("order: %+v", o)
		}
		if _, err := e.store.GetJob(t.Context(), orderID(u)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("job of a refused order: %v, want it completed", err)
		}
		if n := fb.submits.Load(); n != 1 {
			t.Errorf("%d submits, want 1", n)
		}
	})
}

// TestJobTransientRetry: an error that is not a permanent refusal is
// retried with backoff, counted and explained on the job meanwhile.
func TestJobTransientRetry(t *testing.T) {
	t.Parallel()
	jobEnv(t, 0, nil, func(t *testing.T, e *env, fb *fakeBrand) {
		fb.submit = func(n int64) (issuer.Result, error) {
			if n == 1 {
				return issuer.Result{}, errors.New("brand API: 503 service unavailable")
			}
			return issuer.Result{}, nil // sign
		}
		a := e.newAccount(t)
		u, o := a.readyFakeOrder(t, "retry.example.com")
		before := time.Now()
		got, _ := a.finalizeFake(t, o, "retry.example.com")
		if got.Status != "processing" {
			t.Fatalf("finalize after a transient failure answered %s", got.Status)
		}
		job, err := e.store.GetJob(t.Context(), orderID(u))
		if err != nil {
			t.Fatal(err)
		}
		// First retry after 1s·2^1.
		if wait := job.Due.Sub(before); job.Attempts != 1 || !strings.Contains(job.LastError, "503") || wait < 1500*time.Millisecond || wait > 5*time.Second {
			t.Errorf("job after one failure: attempts %d, last error %q, due in %s", job.Attempts, job.LastError, wait)
		}
		runJobs(t, e)
		if done := a.waitOrder(t, u, 15*time.Second); done.Status != "valid" {
			t.Fatalf("order: %+v", done)
		}
		if n := fb.submits.Load(); n != 2 {
			t.Errorf("%d submits, want 2", n)
		}
		if took := time.Since(before); took < 1500*time.Millisecond {
			t.Errorf("retried after %s, before the backoff", took)
		}
	})
}

// TestJobRetryAfterFromBrand: a transient *issuer.Error's RetryAfter
// replaces the backoff.
func TestJobRetryAfterFromBrand(t *testing.T) {
	t.Parallel()
	jobEnv(t, 0, nil, func(t *testing.T, e *env, fb *fakeBrand) {
		fb.submit = func(n int64) (issuer.Result, error) {
			return issuer.Result{}, &issuer.Error{Type: "rateLimited", Detail: "quota", RetryAfter: 7 * time.Minute}
		}
		a := e.newAccount(t)
		u, o := a.readyFakeOrder(t, "quota.example.com")
		a.finalizeFake(t, o, "quota.example.com")
		job, err := e.store.GetJob(t.Context(), orderID(u))
		if err != nil {
			t.Fatal(err)
		}
		if wait := time.Until(job.Due); wait < 6*time.Minute || wait > 7*time.Minute {
			t.Errorf("job due in %s, want the brand's 7m", wait)
		}
	})
}

// TestJobDeadline: a brand that never issues makes the order invalid at the
// profile's deadline, naming the last error.
func TestJobDeadline(t *testing.T) {
	t.Parallel()
	jobEnv(t, 2*time.Second, nil, func(t *testing.T, e *env, fb *fakeBrand) {
		fb.submit = func(int64) (issuer.Result, error) {
			return issuer.Result{Ticket: "T-slow", RetryAfter: time.Second}, nil
		}
		fb.poll = func(int64) (issuer.Result, error) {
			return issuer.Result{}, errors.New("brand API: connection refused")
		}
		a := e.newAccount(t)
		u, o := a.readyFakeOrder(t, "late.example.com")
		got, _ := a.finalizeFake(t, o, "late.example.com")
		if got.Status != "processing" {
			t.Fatalf("finalize answered %s", got.Status)
		}
		runJobs(t, e)
		done := a.waitOrder(t, u, 15*time.Second)
		if done.Status != "invalid" || done.Error == nil || !strings.Contains(done.Error.Detail, "brand fake did not issue by") ||
			!strings.Contains(done.Error.Detail, "connection refused") {
			t.Fatalf("order after the deadline: %+v (error %+v)", done, done.Error)
		}
		if _, err := e.store.GetJob(t.Context(), orderID(u)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("job past its deadline: %v, want it completed", err)
		}
	})
}

// TestJobInline: a brand that answers within FinalizeWait is answered in
// the finalize response; a slower one finishes in the background even
// without RunJobs.
func TestJobInline(t *testing.T) {
	t.Parallel()
	jobEnv(t, 0, func(c *acme.Config) { c.FinalizeWait = 500 * time.Millisecond }, func(t *testing.T, e *env, fb *fakeBrand) {
		var delay atomic.Int64
		fb.submit = func(int64) (issuer.Result, error) {
			time.Sleep(time.Duration(delay.Load()))
			return issuer.Result{}, nil // sign
		}
		a := e.newAccount(t)
		delay.Store(int64(100 * time.Millisecond))
		_, o := a.readyFakeOrder(t, "quick.example.com")
		if got, _ := a.finalizeFake(t, o, "quick.example.com"); got.Status != "valid" || got.Certificate == "" {
			t.Fatalf("finalize with a quick brand answered %+v", got)
		}

		delay.Store(int64(1500 * time.Millisecond))
		u, o := a.readyFakeOrder(t, "slow.example.com")
		got, retry := a.finalizeFake(t, o, "slow.example.com")
		if got.Status != "processing" || retry != "1" {
			t.Fatalf("finalize with a slow brand answered %s, Retry-After %q", got.Status, retry)
		}
		if done := a.waitOrder(t, u, 10*time.Second); done.Status != "valid" {
			t.Fatalf("order: %+v", done)
		}
		if n := fb.submits.Load(); n != 2 {
			t.Errorf("%d submits, want 2", n)
		}
	})
}

// TestJobOrphan covers an instance that died between enqueueing a job and
// moving its order to processing: the worker ends the job and leaves the
// order alone, and finalize still works.
func TestJobOrphan(t *testing.T) {
	t.Parallel()
	jobEnv(t, 0, nil, func(t *testing.T, e *env, fb *fakeBrand) {
		a := e.newAccount(t)
		u, o := a.readyFakeOrder(t, "orphan.example.com")
		now := time.Now()
		job := &storage.Job{ID: orderID(u), OrderID: orderID(u), Due: now, Deadline: now.Add(time.Hour), CreatedAt: now}
		if err := e.store.EnqueueJob(t.Context(), job); err != nil {
			t.Fatal(err)
		}
		runJobs(t, e)
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := e.store.GetJob(t.Context(), job.ID)
			if errors.Is(err, storage.ErrNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("orphaned job still queued: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got := a.order(t, u); got.Status != "ready" {
			t.Fatalf("order is %s, want ready", got.Status)
		}
		if n := fb.submits.Load(); n != 0 {
			t.Errorf("%d submits for an orphaned job", n)
		}
		if got, _ := a.finalizeFake(t, o, "orphan.example.com"); got.Status != "valid" {
			t.Errorf("finalize after the orphan: %+v", got)
		}
	})
}

// TestJobRetryAfter: a processing order asks for 1 s at first, then for the
// time until its job is next due, capped at an hour.
func TestJobRetryAfter(t *testing.T) {
	t.Parallel()
	jobEnv(t, 30*24*time.Hour, nil, func(t *testing.T, e *env, fb *fakeBrand) {
		fb.submit = func(int64) (issuer.Result, error) {
			return issuer.Result{Ticket: "T-review", RetryAfter: 20 * time.Minute}, nil
		}
		a := e.newAccount(t)
		u, o := a.readyFakeOrder(t, "review.example.com")
		if _, retry := a.finalizeFake(t, o, "review.example.com"); retry != "1" {
			t.Errorf("fresh processing order: Retry-After %q, want 1", retry)
		}
		// A day into the review, the next poll is 20 minutes out.
		job, err := e.store.GetJob(t.Context(), orderID(u))
		if err != nil {
			t.Fatal(err)
		}
		job.CreatedAt = job.CreatedAt.Add(-24 * time.Hour)
		if err := e.store.UpdateJob(t.Context(), job); err != nil {
			t.Fatal(err)
		}
		r := a.post(t, u, nil)
		secs, _ := strconv.Atoi(r.Header.Get("Retry-After"))
		if secs < 19*60 || secs > 20*60 {
			t.Errorf("Retry-After %q a day into a review, want about 1200", r.Header.Get("Retry-After"))
		}
		job, _ = e.store.GetJob(t.Context(), orderID(u))
		job.Due = time.Now().Add(3 * 24 * time.Hour)
		if err := e.store.UpdateJob(t.Context(), job); err != nil {
			t.Fatal(err)
		}
		if got := a.post(t, u, nil).Header.Get("Retry-After"); got != "3600" {
			t.Errorf("Retry-After %q for a job due in 3 days, want the 3600 cap", got)
		}
	})
}

// TestJobMetrics: the queue's gauges and the job step counter are exported.
func TestJobMetrics(t *testing.T) {
	t.Parallel()
	jobEnv(t, 0, nil, func(t *testing.T, e *env, fb *fakeBrand) {
		fb.submit = func(int64) (issuer.Result, error) {
			return issuer.Result{Ticket: "T-m", RetryAfter: time.Hour}, nil
		}
		a := e.newAccount(t)
		_, o := a.readyFakeOrder(t, "metrics.example.com")
		a.finalizeFake(t, o, "metrics.example.com")
		r := e.get(t, e.srv.URL+"/metrics")
		body := string(r.Body)
		for _, want := range []string{
			"acmegw_jobs_queued 1",
			"acmegw_jobs_oldest_age_seconds ",
			`acmegw_job_runs_total{brand="fake",result="pending"} 1`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	})
}
