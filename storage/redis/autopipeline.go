package redis

import (
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// autoPipeline wraps c in go-redis's automatic pipeliner in full-duplex
// mode: one connection per node is held, a writer sends whatever commands
// the store's concurrent callers have queued in one write while a reader
// hands replies back in order. Each caller still blocks for its own
// command's reply, and commands of one caller keep their order, so the
// store's code is the same with it as without.
//
// Why: under load most of a request's Redis cost was not Redis but the
// system calls of one round trip per command (a write, a poll, a read, on
// both ends). Batching the commands of many requests into each write and
// read cut redis-server's reads per certificate from 18 to about 7 and
// acmegw's CPU per certificate by about 8% under 64 bench clients
// (docs/BENCHMARKS.md). It pays under concurrency and costs a little
// without: BenchmarkNonce against BenchmarkNonceWithoutAutoPipeline
// redeems a nonce in 6 µs instead of 12 with 64 callers, but in 44 µs
// instead of 34 with two (the hand-off to the writer and back).
//
// What changes:
//   - Contexts. A single command is queued whatever its context says, even
//     one already cancelled, and is then bounded only by the connection's
//     timeouts (dial_timeout × dialer_retries, read_timeout, write_timeout),
//     which is how a Redis outage is still a prompt error (about 4 s at
//     worst with the defaults, also for callers with a shorter deadline).
//     A pipeline whose context is done is refused before it is queued.
//     So a request whose client went away may still spend a rate-limit
//     token or write a record, as if it had ended a moment earlier; every
//     multi-step write already undoes itself on a later failure.
//   - Pipelines the store builds ride the held connection as one contiguous
//     batch. MULTI/EXEC would take a pooled connection, so the store uses
//     none: under thousands of clients the pool ran dry (see
//     createOrderScript). Blocking commands also take one (none is used).
//   - Resending: on one node and Sentinel, acmegw's default max_retries=-1
//     still means a batch that lost its connection fails rather than being
//     sent again. On a Cluster, go-redis resends up to max_redirects (3)
//     times, with or without the pipeliner.
//
// The pipeliner is go-redis's and marked experimental there; the go-redis
// version is pinned in go.mod, and autopipeline=false in the store URL
// turns it off.
func autoPipeline(c goredis.UniversalClient) (goredis.UniversalClient, error) {
	ap, err := c.AutoPipelineWithOptions(&goredis.AutoPipelineOptions{FullDuplex: true})
	if err != nil {
		return nil, fmt.Errorf("redis: autopipeline: %w", err)
	}
	return ap, nil
}
