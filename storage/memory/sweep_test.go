package memory

import (
	"testing"
	"time"
)

// TestNonceSweep checks that expired used nonces leave both the map and the
// heap, and that a stale heap entry never removes a nonce redeemed again
// with a later expiry.
func TestNonceSweep(t *testing.T) {
	s := New()
	defer s.Close()
	ctx := t.Context()
	soon := time.Now().Add(10 * time.Millisecond)
	for _, n := range []string{"a", "b", "c", "again"} {
		if ok, err := s.RedeemNonce(ctx, n, soon); err != nil || !ok {
			t.Fatalf("RedeemNonce(%s) = %v, %v", n, ok, err)
		}
	}
	if ok, _ := s.RedeemNonce(ctx, "b", soon); ok {
		t.Fatal("used nonce redeemed again")
	}
	time.Sleep(20 * time.Millisecond)
	if ok, _ := s.RedeemNonce(ctx, "again", time.Now().Add(time.Hour)); !ok {
		t.Fatal("nonce whose mark expired was refused with a later expiry")
	}

	n := &s.nonces
	n.mu.Lock()
	for n.expireLocked(time.Now(), 1) {
	}
	used, entries := len(n.used), len(n.expiry)
	n.mu.Unlock()
	if used != 1 || entries != 1 {
		t.Errorf("after sweep: %d used nonces, %d heap entries; want 1 and 1", used, entries)
	}
	if ok, _ := s.RedeemNonce(ctx, "again", time.Now().Add(time.Hour)); ok {
		t.Error("re-redeemed nonce was swept with its old expiry")
	}
}

// TestCloseTwice checks that Close stops the sweeper and may be called again.
func TestCloseTwice(t *testing.T) {
	s := New()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
