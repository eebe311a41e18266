package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmegw/acmegw/storage"
)

// The job queue lives under one hash tag, "{jobs}" (or "{jobs:NAME}", see
// WithJobQueue), so that every key of it is in one Cluster slot and each
// operation is one atomic script:
//
//	acmegw:{jobs}:due        ZSET  job id scored by Due (Unix ms)
//	acmegw:{jobs}:created    ZSET  job id scored by CreatedAt (Unix ms), for JobStats
//	acmegw:{jobs}:job:<id>   the job's JSON
//
// Scores have millisecond precision, so a job may be claimed up to a
// millisecond before its Due.
type jobKeys struct {
	prefix  string // of job records; followed by the id
	due     string
	created string
}

func (s *Store) jobKeys() jobKeys {
	tag := "{jobs}"
	if s.jobQueue != "" {
		tag = "{jobs:" + s.jobQueue + "}"
	}
	base := keyPrefix + tag + ":"
	return jobKeys{prefix: base + "job:", due: base + "due", created: base + "created"}
}

// WithJobQueue returns a Store on the same client whose job queue is the one
// named name instead of the default: instances that share work must use the
// same queue. It exists so that tests sharing one Redis keep their queues
// apart; everything else (orders, accounts...) is shared as usual. Closing
// either Store closes the client.
func (s *Store) WithJobQueue(name string) *Store {
	c := *s
	c.jobQueue = name
	return &c
}

// enqueueJobScript stores a job (KEYS[1]) unless it exists and indexes it in
// the due (KEYS[2]) and created (KEYS[3]) sets. ARGV: JSON, id, due ms,
// created ms. Returns 0 if the job existed, 1 after storing it.
var enqueueJobScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
return 1
`)

// claimJobScript leases the job with the lowest due score at or below
// ARGV[1] (now, ms) in KEYS[1]: it rewrites the job's "due" to ARGV[3] and
// bumps its version, scores it ARGV[2] (now+lease, ms) and returns its
// JSON, or false when none is due. Job records are ARGV[4] .. id, in the
// same slot as KEYS. Index entries whose record is gone (never written by
// this package, but cheap to heal) are dropped, from KEYS[2] too.
var claimJobScript = goredis.NewScript(`
for i = 1, 16 do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
  if #ids == 0 then return false end
  local id = ids[1]
  local key = ARGV[4] .. id
  local cur = redis.call('GET', key)
  if cur then
    local j = cjson.decode(cur)
    j['due'] = ARGV[3]
    j['version'] = tonumber(j['version']) + 1
    local out = cjson.encode(j)
    redis.call('SET', key, out)
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    return out
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return false
`)

// updateJobScript replaces the job KEYS[1] if its version is ARGV[1] and
// re-scores it in the due (KEYS[2]) and created (KEYS[3]) sets. ARGV: from
// version, JSON, id, due ms, created ms. Returns -1 missing, 0 conflict, 1 done.
// Like casScript, it reads the version off the record's end.
var updateJobScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
local v = string.match(string.sub(cur, -40), '"version":(%d+)}$')
if not v then v = cjson.decode(cur)['version'] end
if tonumber(v) ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[3])
return 1
`)

// completeJobScript deletes the job KEYS[1] and its index entries if its
// version is ARGV[1]. ARGV: version, id. Returns -1 missing, 0 conflict, 1 done.
var completeJobScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
local v = string.match(string.sub(cur, -40), '"version":(%d+)}$')
if not v then v = cjson.decode(cur)['version'] end
if tonumber(v) ~= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
`)

// EnqueueJob stores j at version 1 and sets j.Version to 1; ErrExists if
// a job with its ID is queued. One script run.
func (s *Store) EnqueueJob(ctx context.Context, j *storage.Job) error {
	if j == nil || j.ID == "" {
		return errors.New("redis: enqueue job: id is required")
	}
	what := "job " + strconv.Quote(j.ID)
	c := *j
	c.Version = 1
	b, err := json.Marshal(&c)
	if err != nil {
		return fmt.Errorf("redis: encode %s: %w", what, err)
	}
	k := s.jobKeys()
	ok, err := enqueueJobScript.Run(ctx, s.c, []string{k.prefix + j.ID, k.due, k.created},
		b, j.ID, j.Due.UnixMilli(), j.CreatedAt.UnixMilli()).Int()
	if err != nil {
		return fmt.Errorf("redis: enqueue %s: %w", what, err)
	}
	if ok != 1 {
		return fmt.Errorf("redis: enqueue %s: %w", what, storage.ErrExists)
	}
	j.Version = 1
	return nil
}

// ClaimJob leases the job with the earliest Due at or before now, in one
// script run: two instances never claim the same job at once.
func (s *Store) ClaimJob(ctx context.Context, now time.Time, lease time.Duration) (*storage.Job, error) {
	if lease <= 0 {
		return nil, fmt.Errorf("redis: claim job: lease %v is not positive", lease)
	}
	due := now.Add(lease)
	dueJSON, err := json.Marshal(due)
	if err != nil {
		return nil, fmt.Errorf("redis: claim job: %w", err)
	}
	k := s.jobKeys()
	out, err := claimJobScript.Run(ctx, s.c, []string{k.due, k.created},
		now.UnixMilli(), due.UnixMilli(), string(dueJSON[1:len(dueJSON)-1]), k.prefix).Text()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis: claim job: none due: %w", storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("redis: claim job: %w", err)
	}
	j := new(storage.Job)
	if err := json.Unmarshal([]byte(out), j); err != nil {
		return nil, fmt.Errorf("redis: decode claimed job: %w", err)
	}
	return j, nil
}

// GetJob returns the job with the given ID.
func (s *Store) GetJob(ctx context.Context, id string) (*storage.Job, error) {
	return getJSON[storage.Job](ctx, s, s.jobKeys().prefix+id, "job "+strconv.Quote(id))
}

// UpdateJob replaces the job if j.Version is the stored version, then sets
// j.Version to the new version; its Due takes effect at once.
func (s *Store) UpdateJob(ctx context.Context, j *storage.Job) error {
	if j == nil {
		return errors.New("redis: update job: nil job")
	}
	what := "job " + strconv.Quote(j.ID)
	c := *j
	c.Version = j.Version + 1
	b, err := json.Marshal(&c)
	if err != nil {
		return fmt.Errorf("redis: encode %s: %w", what, err)
	}
	k := s.jobKeys()
	res, err := updateJobScript.Run(ctx, s.c, []string{k.prefix + j.ID, k.due, k.created},
		j.Version, b, j.ID, j.Due.UnixMilli(), j.CreatedAt.UnixMilli()).Int()
	if err != nil {
		return fmt.Errorf("redis: update %s: %w", what, err)
	}
	if err := casResult(res, what, j.Version); err != nil {
		return err
	}
	j.Version = c.Version
	return nil
}

// CompleteJob removes the job if j.Version is the stored version.
func (s *Store) CompleteJob(ctx context.Context, j *storage.Job) error {
	if j == nil {
		return errors.New("redis: complete job: nil job")
	}
	what := "job " + strconv.Quote(j.ID)
	k := s.jobKeys()
	res, err := completeJobScript.Run(ctx, s.c, []string{k.prefix + j.ID, k.due, k.created}, j.Version, j.ID).Int()
	if err != nil {
		return fmt.Errorf("redis: complete %s: %w", what, err)
	}
	return casResult(res, what, j.Version)
}

// JobStats is ZCARD of the due set and the lowest score of the created set,
// in one pipelined round trip.
func (s *Store) JobStats(ctx context.Context) (storage.JobStats, error) {
	k := s.jobKeys()
	var card *goredis.IntCmd
	var oldest *goredis.ZSliceCmd
	_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		card = p.ZCard(ctx, k.due)
		oldest = p.ZRangeWithScores(ctx, k.created, 0, 0)
		return nil
	})
	if err != nil {
		return storage.JobStats{}, fmt.Errorf("redis: job stats: %w", err)
	}
	st := storage.JobStats{Queued: int(card.Val())}
	if z := oldest.Val(); len(z) > 0 {
		st.OldestCreated = time.UnixMilli(int64(z[0].Score))
	}
	return st, nil
}

// FinishJob is UpdateOrder of o and CompleteJob of j in one pipelined round
// trip: the order and the job queue are in different slots, so the two are
// not atomic, and each outcome is reported on its own. Both scripts are
// sent by hash; one the server has not cached (a restarted Redis) did not
// run, and is sent again on its own. The rate-limit spends ride in the same
// pipeline (spendPipeline), and are settled like SpendRateLimits's.
func (s *Store) FinishJob(ctx context.Context, o *storage.Order, j *storage.Job, spends []storage.RateSpend) (orderErr, jobErr error) {
	if o == nil || j == nil {
		return errors.New("redis: finish job: nil order"), errors.New("redis: finish job: nil job")
	}
	orderWhat := "order " + strconv.Quote(o.ID)
	jobWhat := "job " + strconv.Quote(j.ID)
	oc := *o
	oc.Version = o.Version + 1
	ob, err := json.Marshal(&oc)
	if err != nil {
		err = fmt.Errorf("redis: encode %s: %w", orderWhat, err)
		return err, fmt.Errorf("redis: complete %s: not tried: %w", jobWhat, err)
	}
	k := s.jobKeys()
	orderKeys, orderArgs := []string{orderKey(o.ID)}, []any{o.Version, ob}
	jobKeys, jobArgs := []string{k.prefix + j.ID, k.due, k.created}, []any{j.Version, j.ID}
	var cas, done *goredis.Cmd
	finish := func(p goredis.Pipeliner) {
		cas = casScript.EvalSha(ctx, p, orderKeys, orderArgs...)
		done = completeJobScript.EvalSha(ctx, p, jobKeys, jobArgs...)
	}
	if err := checkSpends(spends); err != nil {
		// Spends the caller built wrong are a bug, not a reason to
		// leave the order unfinished: they are dropped, and said so.
		slog.Warn("finish job: rate-limit spends refused", "job", j.ID, "err", err)
		spends = nil
	}
	if len(spends) > 0 {
		_, _ = s.settle(ctx, s.spendPipeline(ctx, spends, finish), false)
	} else {
		_, _ = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			finish(p)
			return nil
		})
	}
	if goredis.HasErrorPrefix(cas.Err(), "NOSCRIPT") {
		cas = casScript.Run(ctx, s.c, orderKeys, orderArgs...)
	}
	if goredis.HasErrorPrefix(done.Err(), "NOSCRIPT") {
		done = completeJobScript.Run(ctx, s.c, jobKeys, jobArgs...)
	}
	if res, err := cas.Int(); err != nil {
		orderErr = fmt.Errorf("redis: update %s: %w", orderWhat, err)
	} else if orderErr = casResult(res, orderWhat, o.Version); orderErr == nil {
		o.Version = oc.Version
	}
	if res, err := done.Int(); err != nil {
		jobErr = fmt.Errorf("redis: complete %s: %w", jobWhat, err)
	} else {
		jobErr = casResult(res, jobWhat, j.Version)
	}
	return orderErr, jobErr
}
