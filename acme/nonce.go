package acme

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// Nonces (RFC 8555 §6.5) are stateless: a nonce carries its expiry, random
// bytes and a MAC over both under a secret every instance shares through
// the store (Store.NonceSecret). Issuing one costs no store access, and a
// nonce from any instance is good on any other. Redeeming one checks the
// MAC and expiry here, then marks the nonce used in the store, once: the
// mark, not the nonce, is what the store keeps, and only until the nonce
// expires.
const (
	nonceExpiryLen = 8  // expiry in Unix milliseconds, big-endian
	nonceRandLen   = 16 // makes the nonce unique; its name in the store
	nonceMACLen    = 12 // HMAC-SHA256 of the above, truncated: 96 bits to guess per request
	nonceLen       = nonceExpiryLen + nonceRandLen + nonceMACLen

	// nonceSecretMin is the shortest secret accepted from the store.
	nonceSecretMin = 32
	// nonceSecretRecheck is how long a redemption trusts the secret it has
	// before asking the store again. A store that lost its data (a Redis
	// restarted without persistence) has lost the marks of used nonces too;
	// it comes back with a new secret, and nonces under the old one must be
	// refused rather than redeemed a second time.
	nonceSecretRecheck = time.Second
	// nonceMarkSlack keeps a used nonce's mark past the nonce's expiry, so
	// that an instance whose clock lags the issuer's still finds the mark
	// for as long as it would accept the nonce.
	nonceMarkSlack = time.Minute
)

// nonceEncoding is strict so that each nonce has exactly one spelling.
var nonceEncoding = base64.RawURLEncoding.Strict()

// monoStart anchors nonceKey.checked to the monotonic clock.
var monoStart = time.Now()

// nonceState is the Server's current nonce key. Its zero value has none yet.
type nonceState struct {
	mu  sync.Mutex // one store lookup at a time
	key atomic.Pointer[nonceKey]
	// failed is the last lookup's error while no key is loaded yet: with
	// the store down at start-up, requests fail at once for a second
	// instead of queueing behind lookups that each wait out a timeout.
	failed atomic.Pointer[nonceLookupError]
}

// nonceLookupError is a failed first lookup of the nonce secret.
type nonceLookupError struct {
	err error
	at  time.Duration // since monoStart
}

// nonceRetryAfterFailure is how long a failed first lookup is answered
// from memory before the store is asked again.
const nonceRetryAfterFailure = time.Second

// nonceKey is one nonce secret, with pooled MACs keyed with it.
type nonceKey struct {
	secret  []byte
	macs    sync.Pool    // of hash.Hash: hmac.New hashes the key each time
	checked atomic.Int64 // when the store last confirmed the secret, since monoStart
}

func newNonceKey(secret []byte) *nonceKey {
	k := &nonceKey{secret: secret}
	k.macs.New = func() any { return hmac.New(sha256.New, k.secret) }
	k.checked.Store(int64(time.Since(monoStart)))
	return k
}

// sum writes the truncated MAC of msg to out.
func (k *nonceKey) sum(msg, out []byte) {
	m := k.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(msg)
	var full [sha256.Size]byte
	copy(out, m.Sum(full[:0]))
	k.macs.Put(m)
}

// issue makes a nonce that expires at exp.
func (k *nonceKey) issue(exp time.Time) string {
	var b [nonceLen]byte
	binary.BigEndian.PutUint64(b[:nonceExpiryLen], uint64(exp.UnixMilli()))
	rand.Read(b[nonceExpiryLen : nonceExpiryLen+nonceRandLen]) // never fails; it crashes the program if it must
	k.sum(b[:nonceExpiryLen+nonceRandLen], b[nonceExpiryLen+nonceRandLen:])
	return nonceEncoding.EncodeToString(b[:])
}

// nonceRef is a nonce that passed its MAC and expiry checks.
type nonceRef struct {
	name    string    // its random part: what the store marks used
	expires time.Time // when it stops being acceptable
}

// open checks a nonce's MAC and expiry at now.
func (k *nonceKey) open(nonce string, now time.Time) (nonceRef, bool) {
	if len(nonce) != nonceEncoding.EncodedLen(nonceLen) {
		return nonceRef{}, false
	}
	var b [nonceLen]byte
	if n, err := nonceEncoding.Decode(b[:], []byte(nonce)); err != nil || n != nonceLen {
		return nonceRef{}, false
	}
	var mac [nonceMACLen]byte
	k.sum(b[:nonceExpiryLen+nonceRandLen], mac[:])
	if !hmac.Equal(mac[:], b[nonceExpiryLen+nonceRandLen:]) {
		return nonceRef{}, false
	}
	exp := time.UnixMilli(int64(binary.BigEndian.Uint64(b[:nonceExpiryLen])))
	if !now.Before(exp) {
		return nonceRef{}, false
	}
	return nonceRef{name: nonceEncoding.EncodeToString(b[nonceExpiryLen : nonceExpiryLen+nonceRandLen]), expires: exp}, true
}

// nonceKey returns the key to issue or check nonces with, loading it from
// the store on first use. With fresh, a key the store has not confirmed
// within nonceSecretRecheck is looked up again first: redemption wants
// that, issuing does not (a nonce under a stale secret is refused later
// and the client retries with the fresh nonce of that error).
func (s *Server) nonceKey(r *http.Request, fresh bool) (*nonceKey, error) {
	usable := func(k *nonceKey) bool {
		return k != nil && (!fresh || time.Since(monoStart)-time.Duration(k.checked.Load()) < nonceSecretRecheck)
	}
	k := s.nonces.key.Load()
	if usable(k) {
		return k, nil
	}
	recentFailure := func() error {
		if f := s.nonces.failed.Load(); f != nil && time.Since(monoStart)-f.at < nonceRetryAfterFailure {
			return f.err
		}
		return nil
	}
	if k == nil {
		if err := recentFailure(); err != nil {
			return nil, err
		}
		// Wait for the lookup under way, but no longer than the request.
		for !s.nonces.mu.TryLock() {
			if !sleep(r.Context(), 5*time.Millisecond) {
				return nil, fmt.Errorf("loading the nonce secret: %w", r.Context().Err())
			}
			if k = s.nonces.key.Load(); k != nil {
				return k, nil
			}
			if err := recentFailure(); err != nil {
				return nil, err
			}
		}
	} else if !s.nonces.mu.TryLock() {
		// Another request is asking the store: rather than queue behind
		// it (in an outage each lookup waits out its timeout), go on with
		// the key that lookup is confirming.
		return k, nil
	}
	defer s.nonces.mu.Unlock()
	k = s.nonces.key.Load()
	if usable(k) { // another request looked it up meanwhile
		return k, nil
	}
	secret, err := s.store.NonceSecret(r.Context())
	if err != nil {
		err = fmt.Errorf("loading the nonce secret: %w", err)
		if k == nil {
			s.nonces.failed.Store(&nonceLookupError{err: err, at: time.Since(monoStart)})
		}
		return nil, err
	}
	if len(secret) < nonceSecretMin {
		return nil, fmt.Errorf("the store's nonce secret is %d bytes, want at least %d", len(secret), nonceSecretMin)
	}
	if k != nil && hmac.Equal(k.secret, secret) {
		k.checked.Store(int64(time.Since(monoStart)))
		return k, nil
	}
	if k != nil {
		logFrom(r).Warn("the store's nonce secret changed (was its data lost?): nonces issued before are refused")
	}
	k = newNonceKey(secret)
	s.nonces.key.Store(k)
	return k, nil
}

// issueNonce makes a nonce redeemable once, on any instance sharing the store.
func (s *Server) issueNonce(r *http.Request) (string, *Problem) {
	k, err := s.nonceKey(r, false)
	if err != nil {
		return "", storeProblem("issuing nonce", err)
	}
	return k.issue(time.Now().Add(s.cfg.NonceTTL)), nil
}

// openNonce checks a request's nonce in-process: a nonce this gateway did
// not issue, or one that expired, is refused without a store round trip.
func (s *Server) openNonce(r *http.Request, nonce string) (nonceRef, *Problem) {
	k, err := s.nonceKey(r, true)
	if err != nil {
		return nonceRef{}, storeProblem("checking nonce", err)
	}
	ref, ok := k.open(nonce, time.Now())
	if !ok {
		return nonceRef{}, nonceRefused(nonce)
	}
	return ref, nil
}

// redeemNonce marks an opened nonce used; a nonce used before is refused.
func (s *Server) redeemNonce(r *http.Request, nonce string, ref nonceRef) *Problem {
	ok, err := s.store.RedeemNonce(r.Context(), ref.name, ref.expires.Add(nonceMarkSlack))
	if err != nil {
		return storeProblem("checking nonce", err)
	}
	if !ok {
		return nonceRefused(nonce)
	}
	return nil
}

// redeemNonceGetAccount is redeemNonce plus the record of the account kid
// names, read in the same store round trip. The account's problems come
// after the nonce's, as they would one call after the other.
// also, when not nil, is the record the handler reads first (see readsFirst).
func (s *Server) redeemNonceGetAccount(r *http.Request, nonce string, ref nonceRef, kid, accountID string, also *storage.Prefetch) (*storage.Account, *Problem) {
	ok, acct, err := s.store.RedeemNonceGetAccount(r.Context(), ref.name, ref.expires.Add(nonceMarkSlack), accountID, also)
	switch {
	case !ok && err != nil:
		return nil, storeProblem("checking nonce", err)
	case !ok:
		return nil, nonceRefused(nonce)
	}
	return validAccount(r, kid, acct, err)
}

func nonceRefused(nonce string) *Problem {
	return badNonce("nonce %q is unknown, expired or already used; retry with the nonce from this response", nonce)
}

// addNonce sets Replay-Nonce, which RFC 8555 §6.5 wants on every POST
// response, errors included: certbot and dehydrated retry with it.
func (s *Server) addNonce(w http.ResponseWriter, r *http.Request) *Problem {
	n, p := s.issueNonce(r)
	if p != nil {
		return p
	}
	w.Header().Set("Replay-Nonce", n)
	w.Header().Set("Cache-Control", "no-store")
	return nil
}

func (s *Server) addNonceIfPost(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		_ = s.addNonce(w, r)
	}
}

func (s *Server) handleNewNonce(w http.ResponseWriter, r *http.Request) {
	if p := s.addNonce(w, r); p != nil {
		writeProblem(w, r, p)
		return
	}
	addLink(w, s.baseURL(r)+directoryPath, "index")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
