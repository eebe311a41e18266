package redis

// The store URL: which kind of client New builds, and the pool and timeout
// defaults acmegw applies on top of go-redis's.
//
// URL forms (all options are go-redis's, set in the query string):
//
//	redis://[user:pass@]host:port/db?options          one node
//	rediss://...                                      one node over TLS
//	unix://[user:pass@]/path/redis.sock?db=N&options  one node over a Unix socket
//	redis://host1:port?addr=host2:port&addr=...       Redis Cluster seeded with every host
//	redis+sentinel://[user:pass@]sentinel1:26379/db?sentinel_master=NAME&addr=sentinel2:26379&...
//	rediss+sentinel://...                             Sentinel, TLS to sentinels and master
//	redis://sentinel1:26379/db?sentinel_master=NAME&addr=sentinel2:26379
//	                                                  Sentinel, plain scheme
//
// With Sentinel, the host and every addr= are sentinels, the user info
// authenticates to the sentinels, and username= and password= in the query
// authenticate to the master; master_name= is accepted for sentinel_master=.
// Replica reads (route_by_latency, route_randomly, replica_only) are refused:
// every read must see the last compare-and-swap.
//
// Options checked against go-redis v9 (a plain number is seconds, 0 or a
// negative value disables a timeout, an unknown name is an error):
//
//	dial_timeout=2s        per connection attempt            acmegw default 2s   (go-redis 5s)
//	dialer_retries=2       connection attempts per dial      acmegw default 2    (go-redis 5)
//	dialer_retry_timeout=  pause between attempts            go-redis default 100ms
//	read_timeout=1s        per reply                         acmegw default 1s   (go-redis 5s)
//	write_timeout=1s       per command written               default: read_timeout
//	pool_timeout=2s        wait for a free pooled connection default: read_timeout + 1s
//	pool_size=N            connections per node              go-redis default 10 × GOMAXPROCS
//	min_idle_conns=N       idle connections kept open        go-redis default 0
//	max_idle_conns=N, max_active_conns=N, conn_max_idle_time=, conn_max_lifetime=
//	max_retries=N          resends after a network error     acmegw default -1 (none; see New)
//	client_name=, protocol=2|3, skip_verify=true (rediss), db=N
//
// One option is acmegw's own:
//
//	autopipeline=true      send concurrent requests' commands to Redis together  default true
//
// With autopipeline on (see autoPipeline), commands that concurrent requests
// issue share writes and reads on one held connection per node instead of
// each taking a pooled connection for its own round trip.
//
// The short defaults make a Redis outage a prompt 503 with Retry-After
// rather than a request that hangs: a refused connection fails in well under
// a second, an unreachable host within dial_timeout × dialer_retries, a
// stalled server within read_timeout, and once a node's connection attempts
// have all failed go-redis answers at once until it is reachable again.
// An option the URL sets, even to go-redis's own default, wins over these.

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// The defaults New applies unless the URL sets the option.
const (
	DefaultDialTimeout   = 2 * time.Second
	DefaultDialerRetries = 2
	DefaultReadTimeout   = time.Second
	// DefaultWriteTimeout and DefaultPoolTimeout are what read_timeout's
	// default makes of them: go-redis derives write_timeout = read_timeout
	// and pool_timeout = read_timeout + 1s when they are not set.
	DefaultWriteTimeout = DefaultReadTimeout
	DefaultPoolTimeout  = DefaultReadTimeout + time.Second
	// DefaultMaxRetries turns off resending commands (see New).
	DefaultMaxRetries = -1
	// DefaultProtocol is the RESP version spoken unless the URL has
	// protocol=: 2, since acmegw needs nothing RESP3 adds.
	DefaultProtocol = 2
)

// ClientOptions is a parsed store URL: the go-redis options of exactly one
// kind of client, with acmegw's defaults filled in.
type ClientOptions struct {
	Simple   *goredis.Options         // one node: redis://, rediss://, unix://
	Cluster  *goredis.ClusterOptions  // Redis Cluster: addr= seeds
	Failover *goredis.FailoverOptions // Sentinel: redis+sentinel:// or sentinel_master=
	// AutoPipeline sends the store's commands through go-redis's
	// full-duplex automatic pipeliner (the URL's autopipeline=, default on).
	AutoPipeline bool
}

// NewClient builds the client the options describe.
func (o *ClientOptions) NewClient() goredis.UniversalClient {
	switch {
	case o.Failover != nil:
		return goredis.NewFailoverClient(o.Failover)
	case o.Cluster != nil:
		return goredis.NewClusterClient(o.Cluster)
	default:
		return goredis.NewClient(o.Simple)
	}
}

// ParseURL reads a store URL (see the forms above) into client options,
// applying acmegw's defaults to every option the URL leaves unset or empty.
func ParseURL(rawURL string) (*ClientOptions, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis: parse url: %w", err)
	}
	sentinel := false
	switch u.Scheme {
	case "redis", "rediss", "unix":
	case "redis+sentinel", "rediss+sentinel":
		sentinel = true
		u.Scheme = strings.TrimSuffix(u.Scheme, "+sentinel")
	default:
		return nil, fmt.Errorf("redis: url scheme %q: want redis, rediss, unix, redis+sentinel or rediss+sentinel", u.Scheme)
	}
	q := u.Query()
	// Empty values are go-redis's "use the default"; here they mean ours.
	for name, vs := range q {
		if vs[len(vs)-1] == "" {
			q.Del(name)
		}
	}
	set := q.Has

	autoPipe := true
	if set("autopipeline") {
		if autoPipe, err = strconv.ParseBool(q.Get("autopipeline")); err != nil {
			return nil, fmt.Errorf("redis: invalid autopipeline %q: want true or false", q.Get("autopipeline"))
		}
		q.Del("autopipeline")
	}

	// sentinel_master is acmegw's name; go-redis reads master_name.
	master := q.Get("master_name")
	if set("sentinel_master") {
		master = q.Get("sentinel_master")
	}
	q.Del("sentinel_master")
	q.Del("master_name")
	if master != "" {
		sentinel = true
		q.Set("master_name", master)
	}
	if sentinel {
		if master == "" {
			return nil, errors.New("redis: a Sentinel url needs sentinel_master=NAME, the master's name as the sentinels know it")
		}
		if u.Scheme == "unix" {
			return nil, errors.New("redis: Sentinel is reached over TCP; use redis+sentinel://host:port")
		}
		for _, name := range []string{"route_by_latency", "route_randomly", "replica_only"} {
			if set(name) {
				return nil, fmt.Errorf("redis: %s would read from replicas, which may lag the master; acmegw reads from the master only", name)
			}
		}
	}

	d := defaults{
		dial:    !set("dial_timeout"),
		retries: !set("dialer_retries"),
		read:    !set("read_timeout"),
		write:   !set("write_timeout") && !set("read_timeout"),
		pool:    !set("pool_timeout") && !set("read_timeout"),
		maxRetr: !set("max_retries"),
		proto:   !set("protocol"),
	}

	// go-redis's single-node parser does not know the dialer options (its
	// cluster and Sentinel parsers do), so they are read here for it.
	var dialerRetries int
	var dialerRetryTimeout time.Duration
	cluster := !sentinel && q.Has("addr")
	if !sentinel && !cluster {
		if dialerRetries, err = queryInt(q, "dialer_retries"); err != nil {
			return nil, err
		}
		if dialerRetryTimeout, err = queryDuration(q, "dialer_retry_timeout"); err != nil {
			return nil, err
		}
		q.Del("dialer_retries")
		q.Del("dialer_retry_timeout")
	}

	u.RawQuery = q.Encode()
	s := u.String()

	switch {
	case sentinel:
		o, err := goredis.ParseFailoverURL(s)
		if err != nil {
			return nil, fmt.Errorf("redis: parse Sentinel url: %w", err)
		}
		d.apply(&o.DialTimeout, &o.DialerRetries, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries, &o.Protocol)
		return &ClientOptions{Failover: o, AutoPipeline: autoPipe}, nil
	case cluster:
		o, err := goredis.ParseClusterURL(s)
		if err != nil {
			return nil, fmt.Errorf("redis: parse cluster url: %w", err)
		}
		d.apply(&o.DialTimeout, &o.DialerRetries, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries, &o.Protocol)
		return &ClientOptions{Cluster: o, AutoPipeline: autoPipe}, nil
	default:
		o, err := goredis.ParseURL(s)
		if err != nil {
			return nil, fmt.Errorf("redis: parse url: %w", err)
		}
		o.DialerRetries, o.DialerRetryTimeout = dialerRetries, dialerRetryTimeout
		d.apply(&o.DialTimeout, &o.DialerRetries, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries, &o.Protocol)
		return &ClientOptions{Simple: o, AutoPipeline: autoPipe}, nil
	}
}

// defaults says which of acmegw's defaults a URL leaves to apply.
type defaults struct {
	dial, retries, read, write, pool, maxRetr, proto bool
}

func (d defaults) apply(dial *time.Duration, retries *int, read, write, pool *time.Duration, maxRetries, protocol *int) {
	if d.dial {
		*dial = DefaultDialTimeout
	}
	if d.retries {
		*retries = DefaultDialerRetries
	}
	if d.read {
		*read = DefaultReadTimeout
	}
	// An explicit read_timeout leaves write_timeout and pool_timeout to
	// go-redis, which derives them from it.
	if d.write {
		*write = DefaultWriteTimeout
	}
	if d.pool {
		*pool = DefaultPoolTimeout
	}
	if d.maxRetr {
		*maxRetries = DefaultMaxRetries
	}
	// RESP2: acmegw uses no push messages (pub/sub, client-side caching,
	// maintenance notifications), and under RESP3 go-redis looks for
	// pending pushes on the connection before each command, which cost
	// about 0.1 ms of CPU per issuance.
	if d.proto {
		*protocol = DefaultProtocol
	}
}

// queryInt reads an integer option the way go-redis does.
func queryInt(q url.Values, name string) (int, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("redis: invalid %s number: %w", name, err)
	}
	return n, nil
}

// queryDuration reads a duration option the way go-redis does: a plain
// number is seconds, and zero or less disables (-1).
func queryDuration(q url.Values, name string) (time.Duration, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		d = time.Duration(n) * time.Second
	} else if d, err = time.ParseDuration(v); err != nil {
		return 0, fmt.Errorf("redis: invalid %s duration: %w", name, err)
	}
	if d <= 0 {
		return -1, nil
	}
	return d, nil
}
