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
//   - A command's context no longer bounds it once queued; the
//     connection's read and write timeouts do (read_timeout, write_timeout),
//     which is how a Redis outage is still a prompt error.
//   - Pipelines the store builds ride the held connection as one contiguous
//     batch; MULTI/EXEC transactions take a pooled connection as before.
//   - max_retries is honoured as before: with acmegw's default of none, a
//     batch that lost its connection fails rather than being sent again.
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
