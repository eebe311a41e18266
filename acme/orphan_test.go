package acme_test

import (
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer"
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
