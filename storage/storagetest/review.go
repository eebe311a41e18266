package storagetest

import (
	"testing"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// testOrderReview stores an operator's review decision on an order and
// checks the store keeps its own copy of it.
func testOrderReview(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o, authzs := newOrder(t, newID(t, "acct"), "review.example")
	o.Status = storage.StatusProcessing
	wantErr(t, "CreateOrder", s.CreateOrder(ctx, o, authzs), nil)
	got, err := s.GetOrder(ctx, o.ID)
	wantErr(t, "GetOrder", err, nil)
	if got.Review != nil {
		t.Fatalf("new order has a review: %+v", got.Review)
	}
	got.Review = &storage.Review{Decision: storage.ReviewRejected, Reason: "the organization could not be verified", At: at.Add(time.Hour)}
	wantErr(t, "UpdateOrder", s.UpdateOrder(ctx, got), nil)
	got.Review.Reason = "changed by the caller afterwards"
	stored, err := s.GetOrder(ctx, o.ID)
	wantErr(t, "GetOrder", err, nil)
	want := *got
	want.Review = &storage.Review{Decision: storage.ReviewRejected, Reason: "the organization could not be verified", At: at.Add(time.Hour)}
	sameRecord(t, "reviewed order", stored, &want)
	stored.Review.Decision = storage.ReviewApproved
	again, _ := s.GetOrder(ctx, o.ID)
	if again.Review.Decision != storage.ReviewRejected {
		t.Errorf("stored review changed through a returned copy: %+v", again.Review)
	}
}
