package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmegw/acmegw/storage"
)

func rateKey(key string) string { return keyPrefix + "{rl:" + key + "}" }

// gcraScript is the memory store's gcra in microseconds, on Redis's own
// clock (TIME), so that instances with skewed clocks agree. KEYS[1] holds
// the theoretical arrival time (TAT) and expires with it, so an idle limit
// costs nothing. ARGV: emission interval (µs), burst, cost (0 only reports).
// It returns {allowed, remaining, retry after (µs)}.
//
// Numbers are Lua doubles: exact for integers below 2^53 µs (285 years),
// which a TAT (now plus at most 100 years, see RateLimit.Validate) stays under.
var gcraScript = goredis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2]) * interval
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
if tat > now + window then tat = now + window end
local need = cost
if need < 1 then need = 1 end
local allowAt = tat + need * interval - window
if now < allowAt then
  return {0, math.floor((now - tat + window) / interval), allowAt - now}
end
if cost > 0 then
  tat = tat + cost * interval
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
end
return {1, math.floor((now - tat + window) / interval), 0}
`)

// refundScript gives back cost events gcraScript spent on KEYS[1] (same
// ARGV): it moves the TAT back by cost intervals, never before now (a TAT
// at or before now is as good as none, so the key is then deleted). Spends
// made meanwhile by others stay spent. It returns how many events fit now.
var refundScript = goredis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2]) * interval
local tat = (tonumber(redis.call('GET', KEYS[1]) or '0') or 0) - tonumber(ARGV[3]) * interval
if tat <= now then
  redis.call('DEL', KEYS[1])
  tat = now
else
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
end
if tat > now + window then tat = now + window end
return math.floor((now - tat + window) / interval)
`)

// SpendRateLimit checks the GCRA limit of key and, if cost events fit,
// spends them, in one script run (one round trip); a cost of 0 only
// reports. The key is hash-tagged on its own, so Cluster is fine.
func (s *Store) SpendRateLimit(ctx context.Context, key string, limit storage.RateLimit, cost int) (storage.RateDecision, error) {
	if err := storage.CheckSpend(key, limit, cost); err != nil {
		return storage.RateDecision{}, fmt.Errorf("redis: spend rate limit %q: %w", key, err)
	}
	var d storage.RateDecision
	var err error
	if cost == 0 {
		d, err = peekDecision(s.c.Get(ctx, rateKey(key)), limit)
	} else {
		d, err = gcraDecision(gcraScript.Run(ctx, s.c, []string{rateKey(key)}, gcraArgs(limit, cost)...))
	}
	if err != nil {
		return storage.RateDecision{}, fmt.Errorf("redis: spend rate limit %q: %w", key, err)
	}
	return d, nil
}

// SpendRateLimits runs gcraScript once per item, all in one pipeline (one
// round trip): the keys live in different slots, so no single script may
// touch them all on a Cluster. If an item other than a BestEffort one is
// refused, a second pipeline runs refundScript for the items the first one
// spent. BestEffort items go last in the pipeline, as the memory store
// decides them last. See storage.Store.
func (s *Store) SpendRateLimits(ctx context.Context, spends []storage.RateSpend) ([]storage.RateDecision, error) {
	if err := checkSpends(spends); err != nil {
		return nil, err
	}
	b := s.spendPipeline(ctx, spends, nil)
	return s.settle(ctx, b, false)
}

// SpendRateLimitsUnlessRenewal is SpendRateLimits with the GET of the
// account's certificate-set index (see LatestCertificate) in the same
// pipeline, spending the RenewalExempt items too. Most requests are no
// renewal: there is no index entry, and that one round trip is all. If
// there is one, the certificate it names is read (one more round trip) and,
// for a renewal, what the exempt items spent is refunded (one more). See
// storage.Store.
func (s *Store) SpendRateLimitsUnlessRenewal(ctx context.Context, accountID string, names []string, spends []storage.RateSpend) (bool, []storage.RateDecision, error) {
	if err := checkSpends(spends); err != nil {
		return false, nil, err
	}
	setKey := storage.NameSetKey(accountID, names)
	var index *goredis.StringCmd
	b := s.spendPipeline(ctx, spends, func(p goredis.Pipeliner) {
		index = p.Get(ctx, certSetKey(setKey))
	})
	renewal := false
	if len(b.errs) == 0 {
		var err error
		if renewal, err = s.renews(ctx, index, setKey); err != nil {
			b.errs = append(b.errs, err)
		}
	}
	ds, err := s.settle(ctx, b, renewal)
	if err != nil {
		return false, nil, err
	}
	return renewal, ds, nil
}

// checkSpends validates a batch.
func checkSpends(spends []storage.RateSpend) error {
	for _, sp := range spends {
		if err := storage.CheckSpend(sp.Key, sp.Limit, sp.Cost); err != nil {
			return fmt.Errorf("redis: spend rate limit %q: %w", sp.Key, err)
		}
	}
	return nil
}

// spentBatch is a batch after its spending pipeline.
type spentBatch struct {
	spends  []storage.RateSpend
	out     []storage.RateDecision
	decided []bool  // out[i] holds item i's decision
	errs    []error // items whose fate is unknown, or a failed lookup
}

// spendPipeline runs gcraScript for every item that spends, BestEffort ones
// last, a GET for every item of cost 0 (see peekDecision), and whatever also
// adds, all in one pipeline.
func (s *Store) spendPipeline(ctx context.Context, spends []storage.RateSpend, also func(goredis.Pipeliner)) *spentBatch {
	b := &spentBatch{spends: spends, out: make([]storage.RateDecision, len(spends)), decided: make([]bool, len(spends))}
	order := make([]int, 0, len(spends))
	var peeks []int
	for pass := range 2 {
		for i, sp := range spends {
			switch {
			case sp.Cost == 0 && pass == 0:
				peeks = append(peeks, i)
			case sp.Cost > 0 && sp.BestEffort == (pass == 1):
				order = append(order, i)
			}
		}
	}
	gets := make([]*goredis.StringCmd, len(peeks))
	cmds := s.evalEach(ctx, gcraScript, len(order), func(j int) (string, []any) {
		sp := spends[order[j]]
		return rateKey(sp.Key), gcraArgs(sp.Limit, sp.Cost)
	}, func(p goredis.Pipeliner) {
		if also != nil {
			also(p)
		}
		for j, i := range peeks {
			gets[j] = p.Get(ctx, rateKey(spends[i].Key))
		}
	})
	for j, get := range gets {
		i := peeks[j]
		d, err := peekDecision(get, spends[i].Limit)
		if err != nil {
			b.errs = append(b.errs, fmt.Errorf("redis: check rate limit %q: %w", spends[i].Key, err))
			continue
		}
		b.out[i], b.decided[i] = d, true
	}
	for j, cmd := range cmds {
		i := order[j]
		d, err := gcraDecision(cmd)
		if err != nil {
			b.errs = append(b.errs, fmt.Errorf("redis: spend rate limit %q: %w", spends[i].Key, err))
			continue
		}
		b.out[i], b.decided[i] = d, true
	}
	return b
}

// settle finishes a spent batch: unless it is allowed and nothing failed,
// it refunds what the batch spent (BestEffort items aside), and for a
// renewal what the RenewalExempt items spent, whose refusals do not count.
func (s *Store) settle(ctx context.Context, b *spentBatch, renewal bool) ([]storage.RateDecision, error) {
	exempt := func(i int) bool { return renewal && b.spends[i].RenewalExempt }
	refused := false
	for i, d := range b.out {
		if b.decided[i] && !d.Allowed && !b.spends[i].BestEffort && !exempt(i) {
			refused = true
		}
	}
	undo := refused || len(b.errs) > 0
	var refunds []int
	for i, sp := range b.spends {
		if b.decided[i] && b.out[i].Allowed && sp.Cost > 0 && !sp.BestEffort && (undo || exempt(i)) {
			refunds = append(refunds, i)
		}
	}
	// Give back what was spent even if the caller has given up meanwhile.
	rctx := context.WithoutCancel(ctx)
	for j, cmd := range s.evalEach(rctx, refundScript, len(refunds), func(j int) (string, []any) {
		sp := b.spends[refunds[j]]
		return rateKey(sp.Key), gcraArgs(sp.Limit, sp.Cost)
	}, nil) {
		i := refunds[j]
		n, err := cmd.Int64()
		if err != nil {
			b.errs = append(b.errs, fmt.Errorf("redis: refund rate limit %q: %w", b.spends[i].Key, err))
			continue
		}
		b.out[i].Remaining = int(n)
	}
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	for i := range b.out {
		if exempt(i) {
			b.out[i].Allowed, b.out[i].RetryAfter = true, 0
		}
	}
	return b.out, nil
}

// renews reads what the certificate-set index entry setKey (the answer of
// index) names, as LatestCertificate does, and reports whether that makes
// the request a renewal (storage.Renews). No entry costs nothing more.
func (s *Store) renews(ctx context.Context, index *goredis.StringCmd, setKey string) (bool, error) {
	what := "certificate set " + strconv.Quote(setKey)
	v, err := index.Result()
	if errors.Is(err, goredis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("redis: get %s: %w", what, err)
	}
	_, serial, ok := strings.Cut(v, ":")
	if !ok {
		return false, fmt.Errorf("redis: %s: malformed index entry %q", what, v)
	}
	c, err := getRecord[storage.Certificate](ctx, s, certKey(serial), what)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return storage.NameSetKey(c.AccountID, c.Names) == setKey && storage.Renews(c, time.Now()), nil
}

// evalEach runs script on n single keys, item(j) giving the j-th key and
// arguments, in one pipeline of EVALSHA, after what also adds to it (unless
// nil). A pipeline cannot fall back on EVAL
// by itself, so the items that found the script missing (NOSCRIPT: a
// restarted or flushed Redis; they did not run) are sent again with EVAL, in
// a second round trip. It returns the commands in item order.
func (s *Store) evalEach(ctx context.Context, script *goredis.Script, n int, item func(j int) (string, []any), also func(goredis.Pipeliner)) []*goredis.Cmd {
	if n == 0 && also == nil {
		return nil
	}
	cmds := make([]*goredis.Cmd, n)
	// The pipeline's own error is that of its first failed command, which
	// the commands report one by one.
	_, _ = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		if also != nil {
			also(p)
		}
		for j := range n {
			key, args := item(j)
			cmds[j] = script.EvalSha(ctx, p, []string{key}, args...)
		}
		return nil
	})
	var missing []int
	for j, cmd := range cmds {
		if goredis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			missing = append(missing, j)
		}
	}
	if len(missing) == 0 {
		return cmds
	}
	_, _ = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, j := range missing {
			key, args := item(j)
			cmds[j] = script.Eval(ctx, p, []string{key}, args...)
		}
		return nil
	})
	return cmds
}

// gcraArgs are gcraScript's (and refundScript's) ARGV for cost events of l.
func gcraArgs(l storage.RateLimit, cost int) []any {
	return []any{max(l.Interval().Microseconds(), 1), l.MaxBurst(), cost}
}

// peekDecision decides a cost-0 item (a check that spends nothing) from the
// TAT that get read, with this instance's clock where gcraScript uses
// Redis's. A GET costs Redis a tenth of a script run, and about half the
// items a certificate meets are checks. Instance clocks are kept within a
// minute of Redis's (README), which can move a check's answer by that much
// refill; the spends that follow it still use Redis's clock.
func peekDecision(get *goredis.StringCmd, l storage.RateLimit) (storage.RateDecision, error) {
	var tat int64
	v, err := get.Result()
	switch {
	case errors.Is(err, goredis.Nil):
	case err != nil:
		return storage.RateDecision{}, err
	default:
		// Like the script's tonumber(): a value that is no number counts
		// as no TAT, and the next spend overwrites it.
		if tat, err = strconv.ParseInt(v, 10, 64); err != nil {
			tat = 0
		}
	}
	_, d := l.GCRA(time.Microsecond, tat, time.Now().UnixMicro(), 0)
	return d, nil
}

// gcraDecision reads gcraScript's answer.
func gcraDecision(cmd *goredis.Cmd) (storage.RateDecision, error) {
	res, err := cmd.Int64Slice()
	if err != nil {
		return storage.RateDecision{}, err
	}
	if len(res) != 3 {
		return storage.RateDecision{}, fmt.Errorf("unexpected script result %v", res)
	}
	return storage.RateDecision{
		Allowed:    res[0] == 1,
		Remaining:  int(res[1]),
		RetryAfter: time.Duration(res[2]) * time.Microsecond,
	}, nil
}
