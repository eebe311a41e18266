package memory

import (
	"container/heap"
	"context"
	"crypto/rand"
	"sync"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// nonceSecretSize is the length of the generated nonce secret: a full
// HMAC-SHA256 block of key is more than enough.
const nonceSecretSize = 32

// usedNonces remembers redeemed nonces until they expire, under a lock of
// its own, and holds this process's nonce secret. Its zero value is ready.
type usedNonces struct {
	mu     sync.Mutex
	used   map[string]time.Time // nonce → expiry
	expiry nonceHeap            // the same nonces ordered by expiry, for the sweep

	secretOnce sync.Once
	secret     []byte
}

// NonceSecret returns this store's nonce secret, made on first use. Only
// this process sees the store, so no other instance needs to agree on it.
func (s *Store) NonceSecret(ctx context.Context) ([]byte, error) {
	n := &s.nonces
	n.secretOnce.Do(func() {
		n.secret = make([]byte, nonceSecretSize)
		rand.Read(n.secret) // never fails; it crashes the program if it must
	})
	return append([]byte(nil), n.secret...), nil
}

// RedeemNonce marks nonce used until expires and reports whether it was
// unused, so that of any number of concurrent callers exactly one sees true.
func (s *Store) RedeemNonce(ctx context.Context, nonce string, expires time.Time) (bool, error) {
	return s.nonces.redeem(nonce, expires, time.Now()), nil
}

// RedeemNonceGetAccount is RedeemNonce followed by GetAccount; both are
// in-process, so there is no round trip to save.
func (s *Store) RedeemNonceGetAccount(ctx context.Context, nonce string, expires time.Time, accountID string, also *storage.Prefetch) (bool, *storage.Account, error) {
	if !s.nonces.redeem(nonce, expires, time.Now()) {
		return false, nil, nil
	}
	a, err := s.GetAccount(ctx, accountID)
	also.Fill(ctx, s)
	return true, a, err
}

// redeem records nonce as used until expires unless it already is or
// expires is not after now.
func (n *usedNonces) redeem(nonce string, expires, now time.Time) bool {
	if !expires.After(now) {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	// Retire a couple of expired entries per call: under steady load this
	// keeps the map from growing between sweeps at a constant cost per call.
	n.expireLocked(now, 2)
	if exp, ok := n.used[nonce]; ok && exp.After(now) {
		return false
	}
	if n.used == nil {
		n.used = make(map[string]time.Time)
	}
	n.used[nonce] = expires
	heap.Push(&n.expiry, nonceEntry{nonce: nonce, exp: expires})
	return true
}

// sweep drops every expired entry, a batch per lock hold so that a sweep
// never stalls requests for long.
func (n *usedNonces) sweep() {
	for more := true; more; {
		n.mu.Lock()
		more = n.expireLocked(time.Now(), sweepBatch)
		n.mu.Unlock()
	}
}

// expireLocked drops up to limit entries whose expiry has passed and reports
// whether more may remain. The caller holds mu.
func (n *usedNonces) expireLocked(now time.Time, limit int) bool {
	for range limit {
		if len(n.expiry) == 0 || n.expiry[0].exp.After(now) {
			return false
		}
		e := heap.Pop(&n.expiry).(nonceEntry)
		// Only delete if the map still holds this incarnation: an expired
		// entry that was not swept yet may have been redeemed again (a
		// caller passing a later expiry) and must stay until that one.
		if exp, ok := n.used[e.nonce]; ok && exp.Equal(e.exp) {
			delete(n.used, e.nonce)
		}
	}
	return true
}

// nonceEntry is one used nonce's expiry in the sweep heap.
type nonceEntry struct {
	nonce string
	exp   time.Time
}

// nonceHeap is a min-heap of nonces by expiry, so that finding expired nonces
// costs O(log n) each instead of a scan of all used nonces.
type nonceHeap []nonceEntry

func (h nonceHeap) Len() int           { return len(h) }
func (h nonceHeap) Less(i, j int) bool { return h[i].exp.Before(h[j].exp) }
func (h nonceHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *nonceHeap) Push(x any)        { *h = append(*h, x.(nonceEntry)) }
func (h *nonceHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nonceEntry{}
	*h = old[:len(old)-1]
	return e
}
