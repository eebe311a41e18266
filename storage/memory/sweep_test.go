package memory

import (
	"testing"
	"time"
)

// TestNonceSweep checks that expired nonces leave both the map and the heap,
// and that a stale heap entry never removes a nonce that was added again.
func TestNonceSweep(t *testing.T) {
	s := New()
	defer s.Close()
	ctx := t.Context()
	for _, n := range []string{"a", "b", "c", "again"} {
		if err := s.AddNonce(ctx, n, 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if ok, _ := s.ConsumeNonce(ctx, "b"); !ok {
		t.Fatal("fresh nonce refused")
	}
	time.Sleep(20 * time.Millisecond)
	if err := s.AddNonce(ctx, "again", time.Hour); err != nil {
		t.Fatal(err)
	}

	s.nonceMu.Lock()
	for s.expireLocked(time.Now(), 1) {
	}
	nonces, entries := len(s.nonces), len(s.expiry)
	s.nonceMu.Unlock()
	if nonces != 1 || entries != 1 {
		t.Errorf("after sweep: %d nonces, %d heap entries; want 1 and 1", nonces, entries)
	}
	if ok, _ := s.ConsumeNonce(ctx, "again"); !ok {
		t.Error("re-added nonce was swept with its old expiry")
	}
	if ok, _ := s.ConsumeNonce(ctx, "a"); ok {
		t.Error("expired nonce accepted")
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
