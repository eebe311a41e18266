// Package redis is the shared storage.Store: any number of acmegw instances
// pointed at one Redis (single node, Sentinel or Cluster through go-redis's
// UniversalClient) see the same accounts, orders and nonces.
//
// Records are stored as JSON strings, one key per record, each key hash-tagged
// by its own id ("acmegw:{order:<id>}") so that records spread over a
// cluster's slots. Updates are compare-and-swap Lua scripts on one key. The
// only multi-key writes, CreateAccount, UpdateAccount (the thumbprint index)
// and CreateOrder (order, authorizations and the account's order list), span
// slots by nature, so they are built from single-key atomic steps with
// rollback rather than from one cross-slot transaction; see those methods.
// (On one node, where slots do not matter, CreateOrder is one script.)
// Every call costs a constant number of round trips and no request path uses
// KEYS or SCAN.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmegw/acmegw/internal/bytecache"
	"github.com/acmegw/acmegw/storage"
)

// defaultListLimit is the page size ListOrders uses when the caller passes a
// limit of zero or less, so that no call returns an unbounded list.
const defaultListLimit = 100

// claimLease is how long a freshly claimed thumbprint index lives before the
// account write that justifies it makes it permanent. If an instance dies
// between the two steps, the claim expires by itself instead of blocking
// that key forever.
const claimLease = 30 * time.Second

// keyPrefix starts every key this package writes, so that acmegw can share a
// Redis database with other applications.
const keyPrefix = "acmegw:"

func accountKey(id string) string       { return keyPrefix + "{acct:" + id + "}" }
func accountOrdersKey(id string) string { return keyPrefix + "{acct:" + id + "}:orders" }
func thumbKey(tp string) string         { return keyPrefix + "{thumb:" + tp + "}" }
func orderKey(id string) string         { return keyPrefix + "{order:" + id + "}" }
func authzKey(id string) string         { return keyPrefix + "{authz:" + id + "}" }
func certKey(serial string) string      { return keyPrefix + "{cert:" + serial + "}" }
func nonceKey(n string) string          { return keyPrefix + "{nonce:" + n + "}" }
func certSetKey(k string) string        { return keyPrefix + "{certset:" + k + "}" }

// casScript replaces a JSON record if its stored version is ARGV[1].
// It returns -1 when the key is missing, 0 on a version mismatch and 1 after
// writing ARGV[2]. KEEPTTL leaves any expiry set on the record alone.
//
// The version is read off the record's end: Version is the last field of
// every record type, and encoding/json writes fields in order, so a record
// ends with "version":N}. (Inside a JSON string every quote is escaped,
// so the pattern cannot match there.) Only a record that does not end so
// is decoded whole, which costs Redis far more CPU. The pattern is matched
// on the last 40 bytes only (room for 29 digits, more than an int64 has):
// Lua tries an unanchored pattern at every position, and on a whole record
// of 500 bytes that scan was half the script's time.
var casScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
local v = string.match(string.sub(cur, -40), '"version":(%d+)}$')
if not v then v = cjson.decode(cur)['version'] end
if tonumber(v) ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
`)

// accountCASScript is casScript for accounts; on success it also returns the
// thumbprint the account had before, so the caller can retire its index.
var accountCASScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return {-1, ''} end
local old = cjson.decode(cur)
if tonumber(old['version']) ~= tonumber(ARGV[1]) then return {0, ''} end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return {1, old['thumbprint'] or ''}
`)

// delIfScript deletes KEYS[1] only while it still holds ARGV[1], so that a
// rollback never removes an index entry that another account has since taken.
var delIfScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// keepIndexScript makes the thumbprint index KEYS[1] → ARGV[1] permanent:
// it drops the claim lease if we hold it, re-creates the entry if the lease
// ran out, and returns 0 only if another account holds the entry.
var keepIndexScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PERSIST', KEYS[1]) return 1 end
if not v then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
return 0
`)

// Store is a storage.Store kept in Redis. It is safe for concurrent use.
type Store struct {
	// c carries every command: the client itself or, with autopipeline
	// on, its automatic pipeliner.
	c goredis.UniversalClient
	// client is the go-redis client c belongs to, which Close closes.
	client goredis.UniversalClient
	// jobQueue names the job queue; empty is the default one (see WithJobQueue).
	jobQueue string
	// records holds decoded accounts, orders, authorizations and
	// certificates by their stored bytes (see getRecord).
	records *bytecache.Cache[any]
}

var _ storage.Store = (*Store)(nil)

// New connects to the Redis at rawURL and checks that it answers.
// The URL is go-redis's: redis://[user:pass@]host:port/db or rediss:// for
// TLS, or unix:///path, with go-redis's query options (dial_timeout=...).
// Extra addr=host:port query parameters select a Redis Cluster seeded with
// all the given nodes; redis+sentinel:// (or sentinel_master=NAME) selects
// Sentinel. ParseURL in options.go lists the forms, the options and the
// short timeouts acmegw applies unless the URL sets them.
//
// Unless the URL sets max_retries, commands are not resent after a network
// error: a resent SET NX or compare-and-swap that had in fact run would
// report ErrExists or ErrConflict for the caller's own write. Connections
// are still redialled, so a restarted Redis is picked up again.
func New(ctx context.Context, rawURL string) (*Store, error) {
	opt, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	c := opt.NewClient()
	s := NewFromClient(c)
	if opt.AutoPipeline {
		if s.c, err = autoPipeline(c); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// NewFromClient wraps an already configured client (Sentinel, Cluster, or
// anything else New's URL form cannot express). Close closes the client.
// Configure it with MaxRetries -1 for the reason given at New.
func NewFromClient(c goredis.UniversalClient) *Store {
	return &Store{c: c, client: c, records: new(bytecache.Cache[any])}
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: ping: %w", err)
	}
	return nil
}

// Close closes the client and its connections.
func (s *Store) Close() error {
	var apErr error
	if s.c != s.client {
		// The pipeliner first: it sends what is queued before the
		// connections go. Its error reports commands it could not send.
		apErr = s.c.Close()
	}
	if err := errors.Join(apErr, s.client.Close()); err != nil {
		return fmt.Errorf("redis: close: %w", err)
	}
	return nil
}

// getJSON loads the JSON record at key into a new T; what names it in errors.
func getJSON[T any](ctx context.Context, s *Store, key, what string) (*T, error) {
	return decodeGot[T](s.c.Get(ctx, key), what)
}

// record is a stored record type that decodes once per distinct stored form.
type record[T any] interface {
	*T
	Clone() *T
}

// getRecord is getJSON for the records every request reads, decoded through
// the store's cache.
func getRecord[T any, PT record[T]](ctx context.Context, s *Store, key, what string) (*T, error) {
	return decodeRecord[T, PT](s, s.c.Get(ctx, key), what)
}

// decodeRecord is decodeGot through the store's cache of decoded records,
// keyed by the exact bytes read: a request's account is read by every
// request, an authorization or order by several in a row, and decoding
// their JSON was about a tenth of a certificate's CPU. A record changes
// only by being rewritten, as other bytes, so what the cache returns is
// never stale; it is a deep copy, free for the caller to modify.
func decodeRecord[T any, PT record[T]](s *Store, get *goredis.StringCmd, what string) (*T, error) {
	b, err := get.Bytes()
	if err != nil {
		return decodeGot[T](get, what)
	}
	if v, ok := s.records.Get(b); ok {
		if r, ok := v.(PT); ok {
			return r.Clone(), nil
		}
	}
	v, err := decodeGot[T](get, what)
	if err == nil && len(b) <= maxCachedRecord {
		s.records.Put(b, PT(v).Clone())
	}
	return v, err
}

// maxCachedRecord bounds the size of a record the cache keeps, and so its
// memory (bytecache bounds the count: 4096 x 4 KiB, twice over with the
// decoded copy). Accounts, orders and authorizations are well under it; a
// certificate with its chain is usually over, and is read once anyway.
const maxCachedRecord = 4 << 10

// decodeGot decodes the record a GET (on its own or pipelined) returned.
func decodeGot[T any](get *goredis.StringCmd, what string) (*T, error) {
	b, err := get.Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis: %s: %w", what, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("redis: get %s: %w", what, err)
	}
	v := new(T)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("redis: decode %s: %w", what, err)
	}
	return v, nil
}

// create writes the JSON of v at key unless the key exists (ErrExists).
func (s *Store) create(ctx context.Context, key, what string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("redis: encode %s: %w", what, err)
	}
	ok, err := s.c.SetNX(ctx, key, b, 0).Result()
	if err != nil {
		return fmt.Errorf("redis: create %s: %w", what, err)
	}
	if !ok {
		return fmt.Errorf("redis: create %s: %w", what, storage.ErrExists)
	}
	return nil
}

// update writes v (already carrying version from+1) at key if the stored
// record is at version from.
func (s *Store) update(ctx context.Context, key, what string, from int64, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("redis: encode %s: %w", what, err)
	}
	res, err := casScript.Run(ctx, s.c, []string{key}, from, b).Int()
	if err != nil {
		return fmt.Errorf("redis: update %s: %w", what, err)
	}
	return casResult(res, what, from)
}

// casResult maps a CAS script's status code to the contract's errors.
func casResult(code int, what string, from int64) error {
	switch code {
	case 1:
		return nil
	case 0:
		return fmt.Errorf("redis: update %s at version %d: %w", what, from, storage.ErrConflict)
	case -1:
		return fmt.Errorf("redis: update %s: %w", what, storage.ErrNotFound)
	default:
		return fmt.Errorf("redis: update %s: unexpected script result %d", what, code)
	}
}

// CreateAccount stores a at version 1 and sets a.Version to 1; ErrExists if
// the thumbprint (or the id) is taken.
//
// The thumbprint index and the account live in different slots, so this is
// two atomic steps: first SET NX of the index with a lease (this is what
// makes the thumbprint unique under concurrency), then SET NX of the record
// together with PERSIST of the index. If the record step fails the index is
// removed again; if the instance dies in between, the lease expires. A
// reader never trusts the index alone: GetAccountByThumbprint checks the
// record's own thumbprint.
func (s *Store) CreateAccount(ctx context.Context, a *storage.Account) error {
	if a == nil || a.ID == "" || a.Thumbprint == "" {
		return errors.New("redis: create account: id and thumbprint are required")
	}
	c := *a
	c.Version = 1
	b, err := json.Marshal(&c)
	if err != nil {
		return fmt.Errorf("redis: encode account %q: %w", a.ID, err)
	}
	tk := thumbKey(a.Thumbprint)
	if err := s.claimThumbprint(ctx, tk, a.ID, a.Thumbprint); err != nil {
		return fmt.Errorf("redis: create account %q: %w", a.ID, err)
	}

	var created *goredis.BoolCmd
	_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		created = p.SetNX(ctx, accountKey(a.ID), b, 0)
		p.Persist(ctx, tk)
		return nil
	})
	if err == nil && !created.Val() {
		err = storage.ErrExists
	}
	if err != nil {
		// Undo the claim; if even that fails, the lease expires it.
		_ = delIfScript.Run(ctx, s.c, []string{tk}, a.ID).Err()
		return fmt.Errorf("redis: create account %q: %w", a.ID, err)
	}
	a.Version = 1
	return nil
}

// claimThumbprint takes the index entry tk for account id with a lease.
// If another account holds it, ErrExists, unless that entry is stale: left
// behind by a rollover whose clean-up step never ran, which shows as the
// indexed account now having another thumbprint. A stale entry is removed
// and the claim tried once more.
func (s *Store) claimThumbprint(ctx context.Context, tk, id, tp string) error {
	for range 2 {
		ok, err := s.c.SetNX(ctx, tk, id, claimLease).Result()
		if err != nil {
			return fmt.Errorf("claim thumbprint: %w", err)
		}
		if ok {
			return nil
		}
		owner, err := s.c.Get(ctx, tk).Result()
		if errors.Is(err, goredis.Nil) {
			continue // released meanwhile
		}
		if err != nil {
			return fmt.Errorf("read thumbprint index: %w", err)
		}
		other, err := getRecord[storage.Account](ctx, s, accountKey(owner), "account "+strconv.Quote(owner))
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("check thumbprint index: %w", err)
		}
		if err != nil || other.Thumbprint == tp {
			// Held by a live account, or by a create still in flight (its
			// record is not written yet): either way the key is taken.
			return fmt.Errorf("thumbprint %q: %w", tp, storage.ErrExists)
		}
		if err := delIfScript.Run(ctx, s.c, []string{tk}, owner).Err(); err != nil {
			return fmt.Errorf("drop stale thumbprint index: %w", err)
		}
	}
	return fmt.Errorf("thumbprint %q: %w", tp, storage.ErrExists)
}

// GetAccount returns the account with the given id.
func (s *Store) GetAccount(ctx context.Context, id string) (*storage.Account, error) {
	return getRecord[storage.Account](ctx, s, accountKey(id), "account "+strconv.Quote(id))
}

// GetAccountByThumbprint returns the account whose key has the given
// thumbprint: the index names the account, and the account's own thumbprint
// confirms it (so a stale index entry reads as not found).
func (s *Store) GetAccountByThumbprint(ctx context.Context, thumbprint string) (*storage.Account, error) {
	what := "account with thumbprint " + strconv.Quote(thumbprint)
	id, err := s.c.Get(ctx, thumbKey(thumbprint)).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis: %s: %w", what, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("redis: get %s: %w", what, err)
	}
	a, err := getRecord[storage.Account](ctx, s, accountKey(id), what)
	if err != nil {
		return nil, err
	}
	if a.Thumbprint != thumbprint {
		return nil, fmt.Errorf("redis: %s: %w", what, storage.ErrNotFound)
	}
	return a, nil
}

// UpdateAccount replaces the account if a.Version is the stored version, then
// sets a.Version to the new version.
//
// A changed thumbprint (key rollover) moves the index in single-key steps:
// claim the new entry with a lease (ErrExists if another account holds it),
// compare-and-swap the record, then make the new entry permanent and delete
// the old one. A failed swap leaves the new claim to expire with its lease
// rather than deleting it, because a concurrent update of the same account
// to the same key may have won and rely on that entry. So after a conflict
// the new key stays reserved for this account for up to claimLease.
// Without a key change this is one index check plus the swap.
func (s *Store) UpdateAccount(ctx context.Context, a *storage.Account) error {
	if a == nil || a.Thumbprint == "" {
		return errors.New("redis: update account: thumbprint is required")
	}
	what := "account " + strconv.Quote(a.ID)
	c := *a
	c.Version = a.Version + 1
	b, err := json.Marshal(&c)
	if err != nil {
		return fmt.Errorf("redis: encode %s: %w", what, err)
	}

	// The new thumbprint's entry is either ours already (no key change) or
	// free to claim; both answers come back in one round trip.
	tk := thumbKey(a.Thumbprint)
	var claim *goredis.BoolCmd
	var owner *goredis.StringCmd
	_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		claim = p.SetNX(ctx, tk, a.ID, claimLease)
		owner = p.Get(ctx, tk)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("redis: update %s: claim thumbprint: %w", what, err)
	}
	claimed := claim.Val()
	if !claimed && owner.Val() != a.ID {
		if err := s.claimThumbprint(ctx, tk, a.ID, a.Thumbprint); err != nil {
			return fmt.Errorf("redis: update %s: %w", what, err)
		}
		claimed = true
	}

	res, err := accountCASScript.Run(ctx, s.c, []string{accountKey(a.ID)}, a.Version, b).Slice()
	if err != nil {
		return fmt.Errorf("redis: update %s: %w", what, err)
	}
	if len(res) != 2 {
		return fmt.Errorf("redis: update %s: unexpected script result %v", what, res)
	}
	code, _ := res[0].(int64)
	oldThumb, _ := res[1].(string)
	if err := casResult(int(code), what, a.Version); err != nil {
		return err
	}
	a.Version = c.Version

	if !claimed && oldThumb == a.Thumbprint {
		return nil
	}
	kept, err := keepIndexScript.Run(ctx, s.c, []string{tk}, a.ID).Int()
	if err != nil {
		return fmt.Errorf("redis: %s updated, but keeping its thumbprint index failed: %w", what, err)
	}
	if kept != 1 {
		return fmt.Errorf("redis: %s updated, but thumbprint %q is indexed to another account: %w", what, a.Thumbprint, storage.ErrExists)
	}
	if oldThumb != "" && oldThumb != a.Thumbprint {
		if err := delIfScript.Run(ctx, s.c, []string{thumbKey(oldThumb)}, a.ID).Err(); err != nil {
			// Harmless: readers check the record's thumbprint, and a later
			// claim of that key removes the stale entry.
			return fmt.Errorf("redis: %s updated, but dropping its old thumbprint index failed: %w", what, err)
		}
	}
	return nil
}

// CreateOrder stores the order and its new authorizations at version 1
// (setting their Version fields to 1) and appends the order's id to its
// account's list. On one node (a single server or Sentinel) that is one
// script (createOrderScript): all or nothing, and ErrExists, having written
// nothing, if any id was taken. A Cluster cannot run it across slots: there
// each record is written with SET NX, authorizations before the order, and
// if any id was taken (ErrExists) the records this call did write and its
// list entry are removed again; a reader may briefly see some of the new
// records before the rest, which is harmless because nothing refers to
// them until CreateOrder returns.
func (s *Store) CreateOrder(ctx context.Context, o *storage.Order, authzs []*storage.Authorization) error {
	return s.createOrder(ctx, o, authzs, "", 0)
}

// CreateOrderIndexed is CreateOrder that also points the order-index key
// at the new order until ttl passes, in the same round trip. Should the
// order's id turn out taken, nothing is written on one node; on a Cluster
// the index entry may stay: entries are hints that readers check against
// the order.
func (s *Store) CreateOrderIndexed(ctx context.Context, o *storage.Order, authzs []*storage.Authorization, key string, ttl time.Duration) error {
	if key == "" || ttl <= 0 {
		return fmt.Errorf("redis: create order: index key %q with ttl %v", key, ttl)
	}
	return s.createOrder(ctx, o, authzs, key, ttl)
}

func (s *Store) createOrder(ctx context.Context, o *storage.Order, authzs []*storage.Authorization, indexKey string, ttl time.Duration) error {
	if o == nil || o.ID == "" {
		return errors.New("redis: create order: id is required")
	}
	what := "order " + strconv.Quote(o.ID)
	oc := *o
	oc.Version = 1
	ob, err := json.Marshal(&oc)
	if err != nil {
		return fmt.Errorf("redis: encode %s: %w", what, err)
	}
	keys := make([]string, 0, len(authzs)+1)
	vals := make([][]byte, 0, len(authzs)+1)
	keys, vals = append(keys, orderKey(o.ID)), append(vals, ob)
	for i, a := range authzs {
		if a == nil || a.ID == "" {
			return fmt.Errorf("redis: create %s: authorization %d has no id", what, i)
		}
		ac := *a
		ac.Version = 1
		b, err := json.Marshal(&ac)
		if err != nil {
			return fmt.Errorf("redis: encode %s: authorization %q: %w", what, a.ID, err)
		}
		keys, vals = append(keys, authzKey(a.ID)), append(vals, b)
	}

	listKey := accountOrdersKey(o.AccountID)
	if _, oneNode := s.client.(*goredis.Client); oneNode {
		// A single server or Sentinel's failover client: one node holds
		// every key.
		return s.createOrderScripted(ctx, o, authzs, keys, vals, listKey, indexKey, ttl, what)
	}

	// A Cluster refuses scripts and MULTI across slots, and the order, its
	// authorizations, its account's list and the index each have their
	// own (a Ring, from NewFromClient, would run a script on the shard of
	// its first key only). The authorizations are written first and the
	// order only once they all stand, so an order is never stored without
	// them: a crash in between leaves only authorizations nothing points at.
	// cmds[0] is the order's SETNX, the rest its authorizations'; a nil
	// entry was never sent.
	cmds := make([]*goredis.BoolCmd, len(keys))
	setNX := func(p goredis.Pipeliner, from, to int) {
		for i := from; i < to; i++ {
			cmds[i] = p.SetNX(ctx, keys[i], vals[i], 0)
		}
	}
	listed := false
	_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		setNX(p, 1, len(keys))
		return nil
	})
	allSet := true
	for _, c := range cmds[1:] {
		allSet = allSet && c.Val()
	}
	if err == nil && allSet {
		_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			setNX(p, 0, 1)
			p.RPush(ctx, listKey, o.ID)
			if indexKey != "" {
				p.Set(ctx, orderIndexKey(indexKey), o.ID, ttl)
			}
			listed = true
			return nil
		})
	}
	if err != nil {
		// The outcome is unknown (e.g. a lost connection), so nothing is
		// rolled back: ids are random, a retry uses fresh ones.
		return fmt.Errorf("redis: create %s: %w", what, err)
	}
	var taken string
	var mine []string
	for i, c := range cmds {
		if c == nil {
			continue
		}
		if c.Val() {
			mine = append(mine, keys[i])
		} else if taken == "" {
			taken = keys[i]
		}
	}
	if taken == "" {
		setCreated(o, authzs)
		return nil
	}

	// Roll back: our records, and our list entry (the last occurrence of
	// the id, since ours was appended after any earlier one).
	_, rbErr := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, k := range mine {
			p.Del(ctx, k)
		}
		if listed {
			p.LRem(ctx, listKey, -1, o.ID)
		}
		return nil
	})
	if rbErr != nil {
		return fmt.Errorf("redis: create %s: key %s: %w (and rollback failed: %v)", what, taken, storage.ErrExists, rbErr)
	}
	return fmt.Errorf("redis: create %s: key %s: %w", what, taken, storage.ErrExists)
}

// createOrderScript stores an order and its authorizations on one node, all
// or nothing: KEYS are the n records (order first), the account's order
// list and, if given, the reuse index; ARGV are n, the records' JSON, the
// order's id and, with the index, its expiry in ms. It returns 0
// after writing, or the 1-based position of a record key that exists,
// having written nothing.
//
// It replaces a MULTI transaction: go-redis sends MULTI on a connection of
// its pool, apart from the automatic pipeline, and with thousands of
// clients creating orders at once the pool ran dry and newOrder failed
// with "connection pool timeout"; a script travels in the pipeline like
// any other command, and needs no rollback.
var createOrderScript = goredis.NewScript(`
local n = tonumber(ARGV[1])
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then return i end
end
for i = 1, n do redis.call('SET', KEYS[i], ARGV[i + 1]) end
local id = ARGV[n + 2]
redis.call('RPUSH', KEYS[n + 1], id)
if KEYS[n + 2] then redis.call('SET', KEYS[n + 2], id, 'PX', ARGV[n + 3]) end
return 0
`)

// createOrderScripted is createOrder on one node (a single server or
// Sentinel's failover client): createOrderScript in one round trip.
func (s *Store) createOrderScripted(ctx context.Context, o *storage.Order, authzs []*storage.Authorization, keys []string, vals [][]byte, listKey, indexKey string, ttl time.Duration, what string) error {
	n := len(keys)
	scriptKeys := append(keys[:n:n], listKey)
	args := make([]any, 0, n+3)
	args = append(args, n)
	for _, v := range vals {
		args = append(args, v)
	}
	args = append(args, o.ID)
	if indexKey != "" {
		// CreateOrderIndexed has made sure ttl > 0.
		scriptKeys = append(scriptKeys, orderIndexKey(indexKey))
		args = append(args, max(ttl.Milliseconds(), 1))
	}
	taken, err := createOrderScript.Run(ctx, s.c, scriptKeys, args...).Int()
	if err != nil {
		// The outcome is unknown (e.g. a lost connection); ids are
		// random, a retry uses fresh ones.
		return fmt.Errorf("redis: create %s: %w", what, err)
	}
	if taken != 0 {
		if taken < 1 || taken > n {
			return fmt.Errorf("redis: create %s: script answered %d", what, taken)
		}
		return fmt.Errorf("redis: create %s: key %s: %w", what, keys[taken-1], storage.ErrExists)
	}
	setCreated(o, authzs)
	return nil
}

// setCreated gives a just-stored order and its authorizations version 1.
func setCreated(o *storage.Order, authzs []*storage.Authorization) {
	o.Version = 1
	for _, a := range authzs {
		a.Version = 1
	}
}

// GetOrder returns the order with the given id.
func (s *Store) GetOrder(ctx context.Context, id string) (*storage.Order, error) {
	return getRecord[storage.Order](ctx, s, orderKey(id), "order "+strconv.Quote(id))
}

// UpdateOrder replaces the order if o.Version is the stored version, then sets
// o.Version to the new version. AccountID must not change: the order stays
// in the list of the account it was created for.
func (s *Store) UpdateOrder(ctx context.Context, o *storage.Order) error {
	if o == nil {
		return errors.New("redis: update order: nil order")
	}
	c := *o
	c.Version = o.Version + 1
	if err := s.update(ctx, orderKey(o.ID), "order "+strconv.Quote(o.ID), o.Version, &c); err != nil {
		return err
	}
	o.Version = c.Version
	return nil
}

// ListOrders returns up to limit ids of the account's orders, oldest first,
// from cursor on. The cursor is a decimal offset into the account's list,
// which only grows at its end, so cursors stay valid as orders are added.
// One LRANGE asks for one id more than the page to learn whether a next
// page exists.
func (s *Store) ListOrders(ctx context.Context, accountID, cursor string, limit int) ([]string, string, error) {
	off := int64(0)
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n < 0 {
			return nil, "", fmt.Errorf("redis: list orders of %q: invalid cursor %q", accountID, cursor)
		}
		off = n
	}
	if limit <= 0 {
		limit = defaultListLimit
	}
	ids, err := s.c.LRange(ctx, accountOrdersKey(accountID), off, off+int64(limit)).Result()
	if err != nil {
		return nil, "", fmt.Errorf("redis: list orders of %q: %w", accountID, err)
	}
	if len(ids) <= limit {
		return ids, "", nil
	}
	return ids[:limit], strconv.FormatInt(off+int64(limit), 10), nil
}

// GetAuthorization returns the authorization with the given id.
func (s *Store) GetAuthorization(ctx context.Context, id string) (*storage.Authorization, error) {
	return getRecord[storage.Authorization](ctx, s, authzKey(id), "authorization "+strconv.Quote(id))
}

// UpdateAuthorization replaces the authorization (with its challenges) if
// a.Version is the stored version, then sets a.Version to the new version.
func (s *Store) UpdateAuthorization(ctx context.Context, a *storage.Authorization) error {
	if a == nil {
		return errors.New("redis: update authorization: nil authorization")
	}
	c := *a
	c.Version = a.Version + 1
	if err := s.update(ctx, authzKey(a.ID), "authorization "+strconv.Quote(a.ID), a.Version, &c); err != nil {
		return err
	}
	a.Version = c.Version
	return nil
}

// UpdateAuthorizationIndexed pipelines UpdateAuthorization's compare-and-swap
// with SetOrderKey's SET: one round trip. The SET runs whatever the swap's
// outcome, as the Store contract allows.
func (s *Store) UpdateAuthorizationIndexed(ctx context.Context, a *storage.Authorization, key string, ttl time.Duration) (err, indexErr error) {
	if a == nil {
		return errors.New("redis: update authorization: nil authorization"), nil
	}
	what := "authorization " + strconv.Quote(a.ID)
	c := *a
	c.Version = a.Version + 1
	b, err := json.Marshal(&c)
	if err != nil {
		return fmt.Errorf("redis: encode %s: %w", what, err), nil
	}
	keys, args := []string{authzKey(a.ID)}, []any{a.Version, b}
	var (
		cas *goredis.Cmd
		set *goredis.StatusCmd
	)
	_, _ = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		cas = casScript.EvalSha(ctx, p, keys, args...)
		set = p.Set(ctx, orderIndexKey(key), a.ID, ttl)
		return nil
	})
	if goredis.HasErrorPrefix(cas.Err(), "NOSCRIPT") {
		// Not cached by the server (a restart): it did not run; send it whole.
		cas = casScript.Run(ctx, s.c, keys, args...)
	}
	if serr := set.Err(); serr != nil {
		indexErr = fmt.Errorf("redis: set order key: %w", serr)
	}
	res, err := cas.Int()
	if err != nil {
		return fmt.Errorf("redis: update %s: %w", what, err), indexErr
	}
	if err := casResult(res, what, a.Version); err != nil {
		return err, indexErr
	}
	a.Version = c.Version
	return nil, indexErr
}

// certSetScript points the name-set index KEYS[1] at serial ARGV[2] unless
// it names a certificate expiring later, and lets the entry expire with the
// certificate (ARGV[1], NotAfter in Unix milliseconds). Returns 1 if it wrote.
var certSetScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local ms = tonumber(string.match(cur, '^(%d+):'))
  if ms and ms >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
`)

// CreateCertificate stores c at version 1 and sets c.Version to 1;
// ErrExists if the serial is taken. In the same round trip it indexes the
// certificate under its account and name set for LatestCertificate. The two
// keys live in different slots, so the index is written even when the
// serial turns out to be taken; LatestCertificate checks what it points at.
// The index is advisory: if only its write fails, the certificate is still
// stored and this returns nil (a renewal then merely misses its exemption
// from rate limits).
func (s *Store) CreateCertificate(ctx context.Context, c *storage.Certificate) error {
	if c == nil || c.Serial == "" {
		return errors.New("redis: create certificate: serial is required")
	}
	what := "certificate " + strconv.Quote(c.Serial)
	cc := *c
	cc.Version = 1
	b, err := json.Marshal(&cc)
	if err != nil {
		return fmt.Errorf("redis: encode %s: %w", what, err)
	}
	var created *goredis.BoolCmd
	var indexed *goredis.Cmd
	setKeys, setArgs := []string{certSetKey(storage.NameSetKey(c.AccountID, c.Names))}, []any{c.NotAfter.UnixMilli(), c.Serial}
	_, _ = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		created = p.SetNX(ctx, certKey(c.Serial), b, 0)
		indexed = certSetScript.EvalSha(ctx, p, setKeys, setArgs...)
		return nil
	})
	if goredis.HasErrorPrefix(indexed.Err(), "NOSCRIPT") {
		// Not cached by the server (a restart): it did not run; send it whole.
		certSetScript.Run(ctx, s.c, setKeys, setArgs...)
	}
	ok, err := created.Result()
	if err != nil {
		return fmt.Errorf("redis: create %s: %w", what, err)
	}
	if !ok {
		return fmt.Errorf("redis: create %s: %w", what, storage.ErrExists)
	}
	c.Version = 1
	return nil
}

// LatestCertificate returns the account's certificate for exactly these
// names with the latest NotAfter, unless that has passed: the index entry
// (gone by itself at NotAfter) names the serial, and the certificate's own
// account and names confirm it. Two round trips.
func (s *Store) LatestCertificate(ctx context.Context, accountID string, names []string) (*storage.Certificate, error) {
	setKey := storage.NameSetKey(accountID, names)
	what := fmt.Sprintf("certificate of account %q for %v", accountID, names)
	v, err := s.c.Get(ctx, certSetKey(setKey)).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis: %s: %w", what, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("redis: get %s: %w", what, err)
	}
	_, serial, ok := strings.Cut(v, ":")
	if !ok {
		return nil, fmt.Errorf("redis: %s: malformed index entry %q", what, v)
	}
	c, err := getRecord[storage.Certificate](ctx, s, certKey(serial), what)
	if err != nil {
		return nil, err
	}
	if storage.NameSetKey(c.AccountID, c.Names) != setKey || !time.Now().Before(c.NotAfter) {
		return nil, fmt.Errorf("redis: %s: %w", what, storage.ErrNotFound)
	}
	return c, nil
}

// GetCertificate returns the certificate with the given serial.
func (s *Store) GetCertificate(ctx context.Context, serial string) (*storage.Certificate, error) {
	return getRecord[storage.Certificate](ctx, s, certKey(serial), "certificate "+strconv.Quote(serial))
}

// UpdateCertificate replaces the certificate if c.Version is the stored
// version (revocation goes through here), then sets c.Version to the new version.
func (s *Store) UpdateCertificate(ctx context.Context, c *storage.Certificate) error {
	if c == nil {
		return errors.New("redis: update certificate: nil certificate")
	}
	cc := *c
	cc.Version = c.Version + 1
	if err := s.update(ctx, certKey(c.Serial), "certificate "+strconv.Quote(c.Serial), c.Version, &cc); err != nil {
		return err
	}
	c.Version = cc.Version
	return nil
}

// EvictionPolicy returns the server's maxmemory-policy. Anything but
// "noeviction" lets Redis drop keys under memory pressure: used-nonce
// marks (a nonce could then be redeemed twice) and orders alike. Managed
// services that refuse CONFIG return an error.
func (s *Store) EvictionPolicy(ctx context.Context) (string, error) {
	m, err := s.c.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		return "", fmt.Errorf("redis: config get maxmemory-policy: %w", err)
	}
	p, ok := m["maxmemory-policy"]
	if !ok {
		return "", errors.New("redis: config get maxmemory-policy: no answer")
	}
	return p, nil
}
