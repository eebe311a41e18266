package storagetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// The job cases claim "the next due job", which is a question about the
// whole queue: they need a store whose job queue holds only what the test
// enqueued (a fresh store, or for Redis a queue of its own, see
// redis.Store.WithJobQueue). They pass explicit instants to ClaimJob, so
// leases "run out" without sleeping.

// jobBase is the suite's clock for jobs: whole milliseconds, since Redis
// scores due times in milliseconds.
var jobBase = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func newJob(t testing.TB, due time.Time) *storage.Job {
	id := newID(t, "job")
	return &storage.Job{
		ID:        id,
		OrderID:   id,
		CSR:       []byte{0x30, 0x82, 0x01, 0x0a, 0xff, 0x00},
		Due:       due,
		Deadline:  due.Add(24 * time.Hour),
		CreatedAt: due.Add(-time.Second),
	}
}

// claim claims at now with lease and fails the test on anything but a job.
func claim(t *testing.T, s storage.Store, now time.Time, lease time.Duration) *storage.Job {
	t.Helper()
	j, err := s.ClaimJob(t.Context(), now, lease)
	if err != nil {
		t.Fatalf("ClaimJob(%s): %v", now.Format(time.RFC3339), err)
	}
	return j
}

func noneDue(t *testing.T, s storage.Store, now time.Time, lease time.Duration) {
	t.Helper()
	j, err := s.ClaimJob(t.Context(), now, lease)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("ClaimJob(%s) = %+v, %v; want ErrNotFound", now.Format(time.RFC3339), j, err)
	}
}

func testJobEnqueue(t *testing.T, s storage.Store) {
	ctx := t.Context()
	j := newJob(t, jobBase)
	j.Ticket = "ticket-1"
	j.Attempts = 2
	j.LastError = "brand said: try later"
	wantErr(t, "EnqueueJob", s.EnqueueJob(ctx, j), nil)
	if j.Version != 1 {
		t.Errorf("EnqueueJob set version %d, want 1", j.Version)
	}
	got, err := s.GetJob(ctx, j.ID)
	wantErr(t, "GetJob", err, nil)
	sameRecord(t, "job", got, j)

	// The store keeps its own copy.
	got.CSR[0] = 0
	j.CSR[1] = 0
	again, _ := s.GetJob(ctx, j.ID)
	if again.CSR[0] != 0x30 || again.CSR[1] != 0x82 {
		t.Errorf("stored CSR changed through a caller's copy: % x", again.CSR)
	}

	dup := newJob(t, jobBase)
	dup.ID = j.ID
	wantErr(t, "EnqueueJob(same id)", s.EnqueueJob(ctx, dup), storage.ErrExists)
	again, _ = s.GetJob(ctx, j.ID)
	if again.Version != 1 || again.Ticket != "ticket-1" {
		t.Errorf("a refused duplicate changed the job: %+v", again)
	}

	_, err = s.GetJob(ctx, newID(t, "job"))
	wantErr(t, "GetJob(missing)", err, storage.ErrNotFound)
	missing := newJob(t, jobBase)
	missing.Version = 1
	wantErr(t, "UpdateJob(missing)", s.UpdateJob(ctx, missing), storage.ErrNotFound)
	wantErr(t, "CompleteJob(missing)", s.CompleteJob(ctx, missing), storage.ErrNotFound)

	// Update is a compare-and-swap and keeps every field.
	upd := *again
	upd.Ticket, upd.Attempts, upd.LastError = "ticket-2", 3, "still waiting"
	upd.Due = jobBase.Add(time.Hour)
	wantErr(t, "UpdateJob", s.UpdateJob(ctx, &upd), nil)
	if upd.Version != 2 {
		t.Errorf("UpdateJob set version %d, want 2", upd.Version)
	}
	got, _ = s.GetJob(ctx, j.ID)
	sameRecord(t, "updated job", got, &upd)
	wantErr(t, "UpdateJob(stale)", s.UpdateJob(ctx, again), storage.ErrConflict)
	wantErr(t, "CompleteJob(stale)", s.CompleteJob(ctx, again), storage.ErrConflict)
	wantErr(t, "CompleteJob", s.CompleteJob(ctx, got), nil)
	_, err = s.GetJob(ctx, j.ID)
	wantErr(t, "GetJob(completed)", err, storage.ErrNotFound)
	// A completed job's id may be used again.
	wantErr(t, "EnqueueJob(after completion)", s.EnqueueJob(ctx, newJobWithID(t, j.ID)), nil)
}

func newJobWithID(t testing.TB, id string) *storage.Job {
	j := newJob(t, jobBase)
	j.ID, j.OrderID = id, id
	return j
}

func testJobClaimOrder(t *testing.T, s storage.Store) {
	ctx := t.Context()
	noneDue(t, s, jobBase, time.Minute)
	dues := []time.Duration{2 * time.Second, 0, time.Hour, time.Second}
	jobs := make([]*storage.Job, len(dues))
	for i, d := range dues {
		jobs[i] = newJob(t, jobBase.Add(d))
		wantErr(t, "EnqueueJob", s.EnqueueJob(ctx, jobs[i]), nil)
	}
	now := jobBase.Add(5 * time.Second)
	lease := 2 * time.Hour // outlasts the test's clock: claimed jobs stay claimed
	for _, want := range []*storage.Job{jobs[1], jobs[3], jobs[0]} {
		got := claim(t, s, now, lease)
		if got.ID != want.ID {
			t.Fatalf("claimed %s (due %s), want %s (due %s)", got.ID, got.Due, want.ID, want.Due)
		}
		if got.Version != 2 || !got.Due.Equal(now.Add(lease)) {
			t.Errorf("claimed job: version %d due %s; want 2 and %s", got.Version, got.Due, now.Add(lease))
		}
		if got.Ticket != want.Ticket || got.OrderID != want.OrderID || string(got.CSR) != string(want.CSR) ||
			!got.Deadline.Equal(want.Deadline) || !got.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("claimed job lost fields: %+v, enqueued %+v", got, want)
		}
		stored, _ := s.GetJob(ctx, want.ID)
		sameRecord(t, "claimed job as stored", stored, got)
	}
	// The job due in an hour is not due yet.
	noneDue(t, s, now, lease)
	got := claim(t, s, jobBase.Add(time.Hour), lease)
	if got.ID != jobs[2].ID {
		t.Fatalf("claimed %s, want the job due in an hour", got.ID)
	}
}

// testJobLease covers a worker that dies holding a job: the job is not
// claimable while the lease runs, then another worker takes it over, and
// the first worker's writes are refused.
func testJobLease(t *testing.T, s storage.Store) {
	ctx := t.Context()
	j := newJob(t, jobBase)
	wantErr(t, "EnqueueJob", s.EnqueueJob(ctx, j), nil)
	lease := time.Minute
	first := claim(t, s, jobBase, lease)
	noneDue(t, s, jobBase.Add(30*time.Second), lease)
	noneDue(t, s, jobBase.Add(lease-time.Second), lease)

	second := claim(t, s, jobBase.Add(lease+time.Second), lease)
	if second.ID != j.ID || second.Version != first.Version+1 {
		t.Fatalf("takeover claimed %s at version %d, want %s at %d", second.ID, second.Version, j.ID, first.Version+1)
	}
	first.Ticket = "from the dead worker"
	wantErr(t, "UpdateJob by the old holder", s.UpdateJob(ctx, first), storage.ErrConflict)
	wantErr(t, "CompleteJob by the old holder", s.CompleteJob(ctx, first), storage.ErrConflict)

	// The new holder reschedules it (a brand ticket to poll later)...
	second.Ticket = "T-42"
	second.Attempts++
	second.Due = jobBase.Add(10 * time.Minute)
	wantErr(t, "UpdateJob by the new holder", s.UpdateJob(ctx, second), nil)
	noneDue(t, s, jobBase.Add(5*time.Minute), lease)
	third := claim(t, s, jobBase.Add(10*time.Minute), lease)
	if third.Ticket != "T-42" || third.Attempts != 1 {
		t.Errorf("rescheduled job: %+v", third)
	}
	wantErr(t, "CompleteJob by a stale holder", s.CompleteJob(ctx, second), storage.ErrConflict)
	// ...and whoever holds it last completes it: it is gone for good.
	wantErr(t, "CompleteJob", s.CompleteJob(ctx, third), nil)
	noneDue(t, s, jobBase.Add(24*time.Hour), lease)
	wantErr(t, "UpdateJob after completion", s.UpdateJob(ctx, third), storage.ErrNotFound)
}

// testJobConcurrentClaim has 20 workers claim 10 due jobs at once: each job
// goes to exactly one of them.
func testJobConcurrentClaim(t *testing.T, s storage.Store) {
	ctx := t.Context()
	const jobs, workers = 10, 20
	want := map[string]bool{}
	for i := range jobs {
		j := newJob(t, jobBase.Add(time.Duration(i%3)*time.Millisecond))
		wantErr(t, "EnqueueJob", s.EnqueueJob(ctx, j), nil)
		want[j.ID] = true
	}
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			<-start
			for {
				j, err := s.ClaimJob(ctx, jobBase.Add(time.Second), time.Hour)
				if errors.Is(err, storage.ErrNotFound) {
					return
				}
				if err != nil {
					errs[w] = err
					return
				}
				mu.Lock()
				claimed[j.ID]++
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", w, err)
		}
	}
	for id, n := range claimed {
		if !want[id] {
			t.Errorf("claimed %s, which was never enqueued", id)
		}
		if n != 1 {
			t.Errorf("job %s claimed %d times, want once", id, n)
		}
	}
	if len(claimed) != jobs {
		t.Errorf("%d of %d jobs claimed", len(claimed), jobs)
	}
}

func testJobStats(t *testing.T, s storage.Store) {
	ctx := t.Context()
	stats := func() storage.JobStats {
		t.Helper()
		st, err := s.JobStats(ctx)
		wantErr(t, "JobStats", err, nil)
		return st
	}
	if st := stats(); st.Queued != 0 || !st.OldestCreated.IsZero() {
		t.Fatalf("empty queue: %+v", st)
	}
	var jobs []*storage.Job
	for _, age := range []time.Duration{time.Hour, 3 * time.Hour, 2 * time.Hour} {
		j := newJob(t, jobBase)
		j.CreatedAt = jobBase.Add(-age)
		wantErr(t, "EnqueueJob", s.EnqueueJob(ctx, j), nil)
		jobs = append(jobs, j)
	}
	check := func(what string, queued int, oldest time.Time) {
		t.Helper()
		st := stats()
		if st.Queued != queued || !st.OldestCreated.Equal(oldest) {
			t.Errorf("%s: %d queued, oldest %s; want %d and %s", what, st.Queued, st.OldestCreated, queued, oldest)
		}
	}
	check("three jobs", 3, jobs[1].CreatedAt)
	// Claiming moves Due, not the queue's size or age.
	claim(t, s, jobBase, time.Minute)
	check("after a claim", 3, jobs[1].CreatedAt)
	oldest, _ := s.GetJob(ctx, jobs[1].ID)
	wantErr(t, "CompleteJob", s.CompleteJob(ctx, oldest), nil)
	check("oldest completed", 2, jobs[2].CreatedAt)
}

// testJobFinish: FinishJob is UpdateOrder and CompleteJob, each answered on
// its own, both tried whatever the other's outcome.
func testJobFinish(t *testing.T, s storage.Store) {
	ctx := t.Context()
	setup := func() (*storage.Order, *storage.Job) {
		o, authzs := newOrder(t, newID(t, "acct"), "a.example")
		o.Status = storage.StatusProcessing
		wantErr(t, "CreateOrder", s.CreateOrder(ctx, o, authzs), nil)
		j := newJobWithID(t, o.ID)
		wantErr(t, "EnqueueJob", s.EnqueueJob(ctx, j), nil)
		return o, j
	}
	jobGone := func(what string, id string, gone bool) {
		t.Helper()
		_, err := s.GetJob(ctx, id)
		if gone && !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: GetJob = %v, want the job gone", what, err)
		}
		if !gone && err != nil {
			t.Errorf("%s: GetJob = %v, want the job kept", what, err)
		}
	}

	// spent reports whether FinishJob spent key's one event (a check of
	// cost 0 is refused then).
	oneEvent := storage.RateLimit{Count: 1, Period: time.Hour}
	spendOf := func(key string) []storage.RateSpend {
		return []storage.RateSpend{{Key: key, Limit: oneEvent, Cost: 1, BestEffort: true}}
	}
	spent := func(what, key string) {
		t.Helper()
		d, err := s.SpendRateLimit(ctx, key, oneEvent, 0)
		wantErr(t, what+": SpendRateLimit check", err, nil)
		if d.Allowed {
			t.Errorf("%s: FinishJob did not spend its rate limit", what)
		}
	}

	// Both succeed, and the spends are made.
	o, j := setup()
	o.Status, o.CertSerial = storage.StatusValid, "0a"
	issuedKey := newID(t, "rl-issued")
	oerr, jerr := s.FinishJob(ctx, o, j, spendOf(issuedKey))
	wantErr(t, "FinishJob order", oerr, nil)
	wantErr(t, "FinishJob job", jerr, nil)
	if o.Version != 2 {
		t.Errorf("order version %d after FinishJob, want 2", o.Version)
	}
	got, err := s.GetOrder(ctx, o.ID)
	wantErr(t, "GetOrder", err, nil)
	sameRecord(t, "finished order", got, o)
	jobGone("finished", j.ID, true)
	spent("finished", issuedKey)
	st, err := s.JobStats(ctx)
	wantErr(t, "JobStats", err, nil)
	if st.Queued != 0 {
		t.Errorf("%d jobs queued after FinishJob, want 0", st.Queued)
	}

	// A stale order: the job is completed all the same.
	o, j = setup()
	stale := *o
	o.Status = storage.StatusInvalid
	wantErr(t, "UpdateOrder", s.UpdateOrder(ctx, o), nil)
	stale.Status = storage.StatusValid
	staleKey := newID(t, "rl-issued")
	oerr, jerr = s.FinishJob(ctx, &stale, j, spendOf(staleKey))
	wantErr(t, "FinishJob(stale order) order", oerr, storage.ErrConflict)
	spent("stale order", staleKey) // the certificate exists all the same
	wantErr(t, "FinishJob(stale order) job", jerr, nil)
	if stale.Version != 1 {
		t.Errorf("stale order's version moved to %d by a failed FinishJob", stale.Version)
	}
	jobGone("stale order", j.ID, true)

	// A stale job: the order moves all the same.
	o, j = setup()
	staleJob := *j
	wantErr(t, "UpdateJob", s.UpdateJob(ctx, j), nil)
	o.Status = storage.StatusValid
	oerr, jerr = s.FinishJob(ctx, o, &staleJob, nil)
	wantErr(t, "FinishJob(stale job) order", oerr, nil)
	wantErr(t, "FinishJob(stale job) job", jerr, storage.ErrConflict)
	jobGone("stale job", j.ID, false)

	// Neither exists.
	missing, _ := newOrder(t, newID(t, "acct"))
	missing.Version = 1
	mj := newJob(t, jobBase)
	mj.Version = 1
	oerr, jerr = s.FinishJob(ctx, missing, mj, nil)
	wantErr(t, "FinishJob(missing) order", oerr, storage.ErrNotFound)
	wantErr(t, "FinishJob(missing) job", jerr, storage.ErrNotFound)
}
