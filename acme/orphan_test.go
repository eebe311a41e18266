package acme_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/storage"
	"github.com/acmegw/acmegw/storage/memory"
)

// TestOrphanedProcessingOrder: an order processing for longer than a job
// lease whose job is gone (its instance died between losing the order's
// move and re-queueing the job) becomes invalid on the next poll, with a
// problem that tells the client to start over; one whose job still exists
// keeps processing however old it is.
func TestOrphanedProcessingOrder(t *testing.T) {
	t.Parallel()
	jobEnv(t, 0, nil, func(t *testing.T, e *env, fb *fakeBrand) {
		// The brand takes its time: the finalize answer is processing,
		// and the job stays queued (no worker runs in this test).
		fb.submit = func(int64) (issuer.Result, error) {
			return issuer.Result{Ticket: "T-1", RetryAfter: time.Hour}, nil
		}
		a := e.newAccount(t)
		ctx := t.Context()
		finalizedLongAgo := func(names ...string) string {
			t.Helper()
			u, o := a.readyFakeOrder(t, names...)
			if got, _ := a.finalizeFake(t, o, names...); got.Status != "processing" {
				t.Fatalf("finalize answered %s, want processing", got.Status)
			}
			stored, err := e.store.GetOrder(ctx, orderID(u))
			if err != nil || stored.FinalizedAt.IsZero() {
				t.Fatalf("finalized order %+v, %v: want FinalizedAt set", stored, err)
			}
			stored.FinalizedAt = time.Now().Add(-time.Hour)
			if err := e.store.UpdateOrder(ctx, stored); err != nil {
				t.Fatal(err)
			}
			return u
		}

		kept := finalizedLongAgo("slow.example.com")
		if got := a.order(t, kept); got.Status != "processing" {
			t.Errorf("an old processing order with its job is %s, want still processing", got.Status)
		}

		lost := finalizedLongAgo("lost.example.com")
		j, err := e.store.GetJob(ctx, orderID(lost))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.store.CompleteJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		got := a.order(t, lost)
		if got.Status != "invalid" || got.Error == nil || !strings.HasSuffix(got.Error.Type, ":serverInternal") ||
			!strings.Contains(got.Error.Detail, "create a new order") {
			t.Fatalf("orphaned order: %s %+v; want invalid with a serverInternal problem saying to start over", got.Status, got.Error)
		}
		stored, err := e.store.GetOrder(ctx, orderID(lost))
		if err != nil || stored.Status != "invalid" {
			t.Fatalf("stored orphan: %+v, %v; want invalid", stored, err)
		}
		if got := a.order(t, kept); got.Status != "processing" {
			t.Errorf("the other order is %s, want still processing", got.Status)
		}
	})
}

// jobGapStore answers GetJob for one job with ErrNotFound once, as a read
// falling between FinishJob deleting a job and re-queueing it would.
type jobGapStore struct {
	storage.Store
	mu  sync.Mutex
	gap string
}

func (s *jobGapStore) GetJob(ctx context.Context, id string) (*storage.Job, error) {
	s.mu.Lock()
	gap := s.gap == id
	if gap {
		s.gap = ""
	}
	s.mu.Unlock()
	if gap {
		return nil, fmt.Errorf("job %q: %w", id, storage.ErrNotFound)
	}
	return s.Store.GetJob(ctx, id)
}

// TestOrphanCheckLooksTwice: a poll that finds an old processing order's
// job missing once (the gap while FinishJob re-queues it) leaves the order
// processing; only a job missing on a second look a moment later is lost.
func TestOrphanCheckLooksTwice(t *testing.T) {
	t.Parallel()
	st := &jobGapStore{Store: memory.New()}
	fb := &fakeBrand{pending: map[string]issuer.Request{}}
	e := newEnv(t, st, withBrand("fake", fb, issuer.Profile{Name: "fake", Description: "slow", Brand: "fake"}))
	fb.e = e
	fb.submit = func(int64) (issuer.Result, error) {
		return issuer.Result{Ticket: "T-1", RetryAfter: time.Hour}, nil
	}
	a := e.newAccount(t)
	u, o := a.readyFakeOrder(t, "gap.example.com")
	if got, _ := a.finalizeFake(t, o, "gap.example.com"); got.Status != "processing" {
		t.Fatalf("finalize answered %s, want processing", got.Status)
	}
	ctx := t.Context()
	stored, err := e.store.GetOrder(ctx, orderID(u))
	if err != nil {
		t.Fatal(err)
	}
	stored.FinalizedAt = time.Now().Add(-time.Hour)
	if err := e.store.UpdateOrder(ctx, stored); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	st.gap = orderID(u)
	st.mu.Unlock()
	if got := a.order(t, u); got.Status != "processing" {
		t.Fatalf("an order whose job was missing for one look is %s, want still processing", got.Status)
	}
}
