package redis

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmegw/acmegw/storage"
)

// nonceSecretKey holds the secret that authenticates nonces, shared by every
// instance on this Redis. It never expires: replacing it voids every
// outstanding nonce.
const nonceSecretKey = keyPrefix + "{nonce-secret}"

// nonceSecretSize is the length of a new nonce secret.
const nonceSecretSize = 32

// NonceSecret returns the shared nonce secret, creating it if Redis has none:
// SET NX of a fresh random secret, then GET, pipelined in one round trip, so
// that instances starting together all end up with the first one written.
func (s *Store) NonceSecret(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, nonceSecretSize)
	rand.Read(fresh) // never fails; it crashes the program if it must
	var get *goredis.StringCmd
	_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.SetNX(ctx, nonceSecretKey, fresh, 0)
		get = p.Get(ctx, nonceSecretKey)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis: nonce secret: %w", err)
	}
	b, err := get.Bytes()
	if err != nil {
		return nil, fmt.Errorf("redis: nonce secret: %w", err)
	}
	if len(b) < nonceSecretSize {
		return nil, fmt.Errorf("redis: nonce secret at %s is %d bytes, want %d", nonceSecretKey, len(b), nonceSecretSize)
	}
	return b, nil
}

// RedeemNonce marks the nonce used with SET NX, which expires with the nonce
// so that used nonces cost nothing to clean up. SET NX is atomic, so across
// all instances exactly one caller sees true.
func (s *Store) RedeemNonce(ctx context.Context, nonce string, expires time.Time) (bool, error) {
	ttl, ok := markTTL(expires)
	if !ok {
		return false, nil
	}
	set, err := s.c.SetNX(ctx, nonceKey(nonce), 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redis: redeem nonce: %w", err)
	}
	return set, nil
}

// RedeemNonceGetAccount pipelines RedeemNonce's SET NX with the account's
// GET: the two keys live in different cluster slots, so a pipeline (not a
// transaction or a script) is what keeps this one round trip everywhere.
// A nonce already used makes the account read moot, so it is not decoded.
// The record also names (the request's order, authorization or
// certificate) is one more GET in the same pipeline.
func (s *Store) RedeemNonceGetAccount(ctx context.Context, nonce string, expires time.Time, accountID string, also *storage.Prefetch) (bool, *storage.Account, error) {
	ttl, ok := markTTL(expires)
	if !ok {
		return false, nil, nil
	}
	var (
		set        *goredis.BoolCmd
		get, getPF *goredis.StringCmd
	)
	pfKey := prefetchKey(also)
	// Pipelined's own error repeats the first failed command's, which may
	// be the GET's goredis.Nil; each command is checked on its own below.
	_, _ = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		set = p.SetNX(ctx, nonceKey(nonce), 1, ttl)
		get = p.Get(ctx, accountKey(accountID))
		if pfKey != "" {
			getPF = p.Get(ctx, pfKey)
		}
		return nil
	})
	redeemed, err := set.Result()
	if err != nil {
		return false, nil, fmt.Errorf("redis: redeem nonce: %w", err)
	}
	if !redeemed {
		return false, nil, nil
	}
	a, err := decodeRecord[storage.Account](s, get, "account "+strconv.Quote(accountID))
	if getPF != nil && err == nil {
		// Only for an account that exists: a request naming none is
		// refused before its record could matter, and must not fill the
		// record cache with whatever it names.
		s.decodePrefetch(also, getPF)
	}
	return true, a, err
}

// prefetchKey is the key of the record p names, "" for none.
func prefetchKey(p *storage.Prefetch) string {
	if p == nil || p.ID == "" {
		return ""
	}
	switch p.Kind {
	case storage.PrefetchOrder:
		return orderKey(p.ID)
	case storage.PrefetchAuthorization:
		return authzKey(p.ID)
	case storage.PrefetchCertificate:
		return certKey(p.ID)
	}
	return ""
}

// decodePrefetch fills p from its pipelined GET, as the matching Get would.
func (s *Store) decodePrefetch(p *storage.Prefetch, get *goredis.StringCmd) {
	switch p.Kind {
	case storage.PrefetchOrder:
		p.Order, p.Err = decodeRecord[storage.Order](s, get, "order "+strconv.Quote(p.ID))
	case storage.PrefetchAuthorization:
		p.Authorization, p.Err = decodeRecord[storage.Authorization](s, get, "authorization "+strconv.Quote(p.ID))
	case storage.PrefetchCertificate:
		p.Certificate, p.Err = decodeRecord[storage.Certificate](s, get, "certificate "+strconv.Quote(p.ID))
	}
	p.Read = true
}

// markTTL is how long a used nonce's mark must live: until expires, rounded
// up to Redis's millisecond precision so the mark never goes first. It
// reports false for a nonce already expired, which is never marked.
func markTTL(expires time.Time) (time.Duration, bool) {
	d := time.Until(expires)
	if d <= 0 {
		return 0, false
	}
	return (d + time.Millisecond - 1).Truncate(time.Millisecond), true
}
