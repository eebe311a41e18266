package memory

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// jobQueue keeps the issuance jobs: a map by id plus two indexed min-heaps
// over the same entries, one by Due (ClaimJob takes its top) and one by
// CreatedAt (JobStats reads its top), so no call scans the queue. Its zero
// value is ready to use; it has a lock of its own.
type jobQueue struct {
	mu      sync.Mutex
	byID    map[string]*jobEntry
	due     jobHeap
	created jobHeap
}

// jobEntry is one stored job and its positions in the two heaps.
type jobEntry struct {
	job *storage.Job
	pos [2]int // index in due (0) and in created (1)
}

// jobHeap is a min-heap of entries by Due (which 0) or CreatedAt (which 1)
// that records each entry's position, so changed entries can be fixed and
// removed in O(log n).
type jobHeap struct {
	which   int
	entries []*jobEntry
}

func (h *jobHeap) key(e *jobEntry) time.Time {
	if h.which == 0 {
		return e.job.Due
	}
	return e.job.CreatedAt
}

func (h *jobHeap) Len() int { return len(h.entries) }
func (h *jobHeap) Less(i, j int) bool {
	a, b := h.key(h.entries[i]), h.key(h.entries[j])
	if a.Equal(b) {
		return h.entries[i].job.ID < h.entries[j].job.ID
	}
	return a.Before(b)
}
func (h *jobHeap) Swap(i, j int) {
	h.entries[i], h.entries[j] = h.entries[j], h.entries[i]
	h.entries[i].pos[h.which] = i
	h.entries[j].pos[h.which] = j
}
func (h *jobHeap) Push(x any) {
	e := x.(*jobEntry)
	e.pos[h.which] = len(h.entries)
	h.entries = append(h.entries, e)
}
func (h *jobHeap) Pop() any {
	n := len(h.entries) - 1
	e := h.entries[n]
	h.entries[n] = nil
	h.entries = h.entries[:n]
	return e
}

func (q *jobQueue) initLocked() {
	if q.byID == nil {
		q.byID = make(map[string]*jobEntry)
		q.due.which, q.created.which = 0, 1
	}
}

func cloneJob(j *storage.Job) *storage.Job {
	c := *j
	c.CSR = cloneBytes(j.CSR)
	return &c
}

// EnqueueJob stores a copy of j at version 1 and sets j.Version to 1;
// ErrExists if a job with its ID is queued.
func (s *Store) EnqueueJob(ctx context.Context, j *storage.Job) error {
	if j == nil || j.ID == "" {
		return errors.New("memory: enqueue job: id is required")
	}
	c := cloneJob(j)
	c.Version = 1
	q := &s.jobs
	q.mu.Lock()
	defer q.mu.Unlock()
	q.initLocked()
	if _, ok := q.byID[j.ID]; ok {
		return fmt.Errorf("memory: enqueue job %q: %w", j.ID, storage.ErrExists)
	}
	e := &jobEntry{job: c}
	q.byID[j.ID] = e
	heap.Push(&q.due, e)
	heap.Push(&q.created, e)
	j.Version = 1
	return nil
}

// ClaimJob leases the job with the earliest Due at or before now (the top
// of the due heap): its Due moves to now+lease and its version goes up.
func (s *Store) ClaimJob(ctx context.Context, now time.Time, lease time.Duration) (*storage.Job, error) {
	if lease <= 0 {
		return nil, fmt.Errorf("memory: claim job: lease %v is not positive", lease)
	}
	q := &s.jobs
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.due.entries) == 0 || q.due.entries[0].job.Due.After(now) {
		return nil, fmt.Errorf("memory: claim job: none due: %w", storage.ErrNotFound)
	}
	e := q.due.entries[0]
	e.job.Due = now.Add(lease)
	e.job.Version++
	heap.Fix(&q.due, 0)
	return cloneJob(e.job), nil
}

// GetJob returns a copy of the job with the given id.
func (s *Store) GetJob(ctx context.Context, id string) (*storage.Job, error) {
	q := &s.jobs
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.byID[id]
	if !ok {
		return nil, fmt.Errorf("memory: job %q: %w", id, storage.ErrNotFound)
	}
	return cloneJob(e.job), nil
}

// UpdateJob replaces the job if j.Version is the stored version, then sets
// j.Version to the new version.
func (s *Store) UpdateJob(ctx context.Context, j *storage.Job) error {
	if j == nil {
		return errors.New("memory: update job: nil job")
	}
	q := &s.jobs
	q.mu.Lock()
	defer q.mu.Unlock()
	e, err := q.currentLocked("update", j)
	if err != nil {
		return err
	}
	c := cloneJob(j)
	c.Version = e.job.Version + 1
	e.job = c
	heap.Fix(&q.due, e.pos[0])
	heap.Fix(&q.created, e.pos[1])
	j.Version = c.Version
	return nil
}

// CompleteJob removes the job if j.Version is the stored version.
func (s *Store) CompleteJob(ctx context.Context, j *storage.Job) error {
	if j == nil {
		return errors.New("memory: complete job: nil job")
	}
	q := &s.jobs
	q.mu.Lock()
	defer q.mu.Unlock()
	e, err := q.currentLocked("complete", j)
	if err != nil {
		return err
	}
	heap.Remove(&q.due, e.pos[0])
	heap.Remove(&q.created, e.pos[1])
	delete(q.byID, j.ID)
	return nil
}

// currentLocked returns the stored entry of j if it is at j's version.
func (q *jobQueue) currentLocked(op string, j *storage.Job) (*jobEntry, error) {
	e, ok := q.byID[j.ID]
	if !ok {
		return nil, fmt.Errorf("memory: %s job %q: %w", op, j.ID, storage.ErrNotFound)
	}
	if e.job.Version != j.Version {
		return nil, fmt.Errorf("memory: %s job %q at version %d (stored %d): %w", op, j.ID, j.Version, e.job.Version, storage.ErrConflict)
	}
	return e, nil
}

// JobStats counts the queue and reads the oldest job off the created heap.
func (s *Store) JobStats(ctx context.Context) (storage.JobStats, error) {
	q := &s.jobs
	q.mu.Lock()
	defer q.mu.Unlock()
	st := storage.JobStats{Queued: len(q.byID)}
	if len(q.created.entries) > 0 {
		st.OldestCreated = q.created.entries[0].job.CreatedAt
	}
	return st, nil
}

// FinishJob is UpdateOrder of o, then CompleteJob of j, each reported on
// its own as the contract says (the job is completed even when the order
// update fails, as in a store that pipelines the two).
func (s *Store) FinishJob(ctx context.Context, o *storage.Order, j *storage.Job, spends []storage.RateSpend) (orderErr, jobErr error) {
	if o == nil || j == nil {
		return errors.New("memory: finish job: nil order"), errors.New("memory: finish job: nil job")
	}
	orderErr, jobErr = s.UpdateOrder(ctx, o), s.CompleteJob(ctx, j)
	if len(spends) > 0 {
		_, _ = s.SpendRateLimits(ctx, spends)
	}
	return orderErr, jobErr
}
