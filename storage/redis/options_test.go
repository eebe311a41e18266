package redis_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/storage/redis"
)

// timeouts are the pool and timeout fields every client kind shares.
type timeouts struct {
	Dial, Read, Write, Pool time.Duration
	DialerRetries           int
	MaxRetries              int
}

var acmegwDefaults = timeouts{Dial: 2 * time.Second, Read: time.Second, Write: time.Second, Pool: 2 * time.Second, DialerRetries: 2, MaxRetries: -1}

func TestParseURLSimple(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want timeouts
		// effective is what go-redis makes of want once the client exists
		// (it derives write and pool timeouts from an explicit read timeout).
		effective timeouts
		check     func(t *testing.T, o *goredis.Options)
	}{
		{url: "redis://127.0.0.1:6379/0", want: acmegwDefaults, effective: acmegwDefaults,
			check: func(t *testing.T, o *goredis.Options) {
				if o.Network != "tcp" || o.Addr != "127.0.0.1:6379" || o.DB != 0 || o.TLSConfig != nil {
					t.Errorf("network %q addr %q db %d tls %v", o.Network, o.Addr, o.DB, o.TLSConfig)
				}
				if o.Protocol != redis.DefaultProtocol {
					t.Errorf("protocol %d, want acmegw's default %d", o.Protocol, redis.DefaultProtocol)
				}
			}},
		{url: "redis://127.0.0.1:6379/0?protocol=3", want: acmegwDefaults, effective: acmegwDefaults,
			check: func(t *testing.T, o *goredis.Options) {
				if o.Protocol != 3 {
					t.Errorf("protocol %d, want the URL's 3", o.Protocol)
				}
			}},
		{url: "redis://u:p@h:1/3?dial_timeout=5s&read_timeout=3&write_timeout=500ms&pool_timeout=4s&max_retries=2&dialer_retries=4&dialer_retry_timeout=50ms&pool_size=7&min_idle_conns=2&max_idle_conns=5&client_name=gw",
			want:      timeouts{Dial: 5 * time.Second, Read: 3 * time.Second, Write: 500 * time.Millisecond, Pool: 4 * time.Second, DialerRetries: 4, MaxRetries: 2},
			effective: timeouts{Dial: 5 * time.Second, Read: 3 * time.Second, Write: 500 * time.Millisecond, Pool: 4 * time.Second, DialerRetries: 4, MaxRetries: 2},
			check: func(t *testing.T, o *goredis.Options) {
				if o.Username != "u" || o.Password != "p" || o.DB != 3 || o.PoolSize != 7 || o.MinIdleConns != 2 || o.MaxIdleConns != 5 ||
					o.ClientName != "gw" || o.DialerRetryTimeout != 50*time.Millisecond {
					t.Errorf("user %q pass %q db %d pool %d min idle %d max idle %d name %q retry pause %v",
						o.Username, o.Password, o.DB, o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.ClientName, o.DialerRetryTimeout)
				}
			}},
		// An explicit read timeout: write and pool timeouts follow it as
		// go-redis derives them.
		{url: "redis://h:1/0?read_timeout=3s",
			want:      timeouts{Dial: 2 * time.Second, Read: 3 * time.Second, DialerRetries: 2, MaxRetries: -1},
			effective: timeouts{Dial: 2 * time.Second, Read: 3 * time.Second, Write: 3 * time.Second, Pool: 4 * time.Second, DialerRetries: 2, MaxRetries: -1}},
		// Empty values mean acmegw's default, not go-redis's.
		{url: "redis://h:1/0?dial_timeout=&read_timeout=&max_retries=", want: acmegwDefaults, effective: acmegwDefaults},
		// Zero disables a timeout, as in go-redis.
		{url: "redis://h:1/0?read_timeout=0&dial_timeout=-1",
			want: timeouts{Dial: -1, Read: -1, DialerRetries: 2, MaxRetries: -1},
			// go-redis keeps "no read timeout" as 0 in a client's options.
			effective: timeouts{Dial: -1, Read: 0, Write: 0, Pool: 30 * time.Second, DialerRetries: 2, MaxRetries: -1}},
		// The URL may ask for go-redis's own defaults back.
		{url: "redis://h:1/0?dial_timeout=5s&read_timeout=5s&max_retries=3&dialer_retries=5",
			want:      timeouts{Dial: 5 * time.Second, Read: 5 * time.Second, DialerRetries: 5, MaxRetries: 3},
			effective: timeouts{Dial: 5 * time.Second, Read: 5 * time.Second, Write: 5 * time.Second, Pool: 6 * time.Second, DialerRetries: 5, MaxRetries: 3}},
		{url: "rediss://h:6380/1?skip_verify=true", want: acmegwDefaults, effective: acmegwDefaults,
			check: func(t *testing.T, o *goredis.Options) {
				if o.TLSConfig == nil || !o.TLSConfig.InsecureSkipVerify || o.TLSConfig.ServerName != "h" || o.DB != 1 {
					t.Errorf("tls %+v db %d", o.TLSConfig, o.DB)
				}
			}},
		{url: "unix:///run/redis.sock?db=2&pool_size=3", want: acmegwDefaults, effective: acmegwDefaults,
			check: func(t *testing.T, o *goredis.Options) {
				if o.Network != "unix" || o.Addr != "/run/redis.sock" || o.DB != 2 || o.PoolSize != 3 {
					t.Errorf("network %q addr %q db %d pool %d", o.Network, o.Addr, o.DB, o.PoolSize)
				}
			}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			opt, err := redis.ParseURL(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if opt.Simple == nil || opt.Cluster != nil || opt.Failover != nil {
				t.Fatalf("want a single-node client: %+v", opt)
			}
			o := opt.Simple
			if got := (timeouts{o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.DialerRetries, o.MaxRetries}); got != tc.want {
				t.Errorf("parsed %+v, want %+v", got, tc.want)
			}
			if tc.check != nil {
				tc.check(t, o)
			}
			c := opt.NewClient().(*goredis.Client)
			defer c.Close()
			e := c.Options()
			// go-redis stores "no retries" as 0 once the client exists.
			wantEff := tc.effective
			if wantEff.MaxRetries == -1 {
				wantEff.MaxRetries = 0
			}
			if got := (timeouts{e.DialTimeout, e.ReadTimeout, e.WriteTimeout, e.PoolTimeout, e.DialerRetries, e.MaxRetries}); got != wantEff {
				t.Errorf("client has %+v, want %+v", got, wantEff)
			}
		})
	}
}

func TestParseURLCluster(t *testing.T) {
	opt, err := redis.ParseURL("redis://u:p@a:7000?addr=b:7001&addr=c:7002&pool_size=3&read_timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	o := opt.Cluster
	if o == nil || opt.Simple != nil || opt.Failover != nil {
		t.Fatalf("want a cluster client: %+v", opt)
	}
	if strings.Join(o.Addrs, ",") != "a:7000,b:7001,c:7002" || o.Username != "u" || o.Password != "p" || o.PoolSize != 3 {
		t.Errorf("addrs %v user %q pass %q pool %d", o.Addrs, o.Username, o.Password, o.PoolSize)
	}
	want := timeouts{Dial: 2 * time.Second, Read: 2 * time.Second, DialerRetries: 2, MaxRetries: -1}
	if got := (timeouts{o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.DialerRetries, o.MaxRetries}); got != want {
		t.Errorf("parsed %+v, want %+v", got, want)
	}
	c := opt.NewClient()
	defer c.Close()
	if _, ok := c.(*goredis.ClusterClient); !ok {
		t.Fatalf("NewClient gave %T", c)
	}

	opt, err = redis.ParseURL("redis://a:7000?addr=b:7001")
	if err != nil {
		t.Fatal(err)
	}
	o = opt.Cluster
	if got := (timeouts{o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.DialerRetries, o.MaxRetries}); got != acmegwDefaults {
		t.Errorf("defaults %+v, want %+v", got, acmegwDefaults)
	}
}

func TestParseURLSentinel(t *testing.T) {
	for _, tc := range []struct {
		url       string
		sentinels string
		db        int
		tls       bool
		check     func(t *testing.T, o *goredis.FailoverOptions)
	}{
		{url: "redis+sentinel://su:sp@s1:26379/2?sentinel_master=mymaster&addr=s2:26380&addr=s3:26381&password=mp&username=mu",
			sentinels: "s1:26379,s2:26380,s3:26381", db: 2,
			check: func(t *testing.T, o *goredis.FailoverOptions) {
				if o.SentinelUsername != "su" || o.SentinelPassword != "sp" || o.Username != "mu" || o.Password != "mp" {
					t.Errorf("sentinel auth %q/%q, master auth %q/%q", o.SentinelUsername, o.SentinelPassword, o.Username, o.Password)
				}
			}},
		{url: "rediss+sentinel://s1:26379?sentinel_master=mymaster", sentinels: "s1:26379", tls: true},
		{url: "redis://s1:26379/1?sentinel_master=mymaster&addr=s2:26379", sentinels: "s1:26379,s2:26379", db: 1},
		{url: "redis://s1:26379?master_name=mymaster", sentinels: "s1:26379"},
		{url: "redis+sentinel://s1:26379?sentinel_master=mymaster&dial_timeout=1s&pool_size=4", sentinels: "s1:26379",
			check: func(t *testing.T, o *goredis.FailoverOptions) {
				if o.DialTimeout != time.Second || o.PoolSize != 4 {
					t.Errorf("dial timeout %v pool %d", o.DialTimeout, o.PoolSize)
				}
			}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			opt, err := redis.ParseURL(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			o := opt.Failover
			if o == nil || opt.Simple != nil || opt.Cluster != nil {
				t.Fatalf("want a Sentinel client: %+v", opt)
			}
			if o.MasterName != "mymaster" || strings.Join(o.SentinelAddrs, ",") != tc.sentinels || o.DB != tc.db || (o.TLSConfig != nil) != tc.tls {
				t.Errorf("master %q sentinels %v db %d tls %v", o.MasterName, o.SentinelAddrs, o.DB, o.TLSConfig)
			}
			if tc.check != nil {
				tc.check(t, o)
			} else if got := (timeouts{o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.DialerRetries, o.MaxRetries}); got != acmegwDefaults {
				t.Errorf("parsed %+v, want %+v", got, acmegwDefaults)
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, u := range []string{
		"http://example.com",
		"redis+sentinel://s1:26379",                                         // no master name
		"unix:///run/redis.sock?sentinel_master=m",                          // Sentinel over a socket
		"redis+sentinel://s1:26379?sentinel_master=m&route_randomly=true",   // replica reads
		"redis+sentinel://s1:26379?sentinel_master=m&replica_only=true",     // replica reads
		"redis+sentinel://s1:26379?sentinel_master=m&route_by_latency=true", // replica reads
		"redis://h:1/0?no_such_option=1",
		"redis://h:1/0?dial_timeout=soon",
		"redis://h:1/0?dialer_retries=many",
		"redis://h:1/0?dialer_retry_timeout=soon",
		"redis://h:1/0?pool_size=big",
		"redis://h:1?addr=nohost",
		"redis://h:1/x",
		"redis://h:1/0?autopipeline=maybe",
	} {
		if opt, err := redis.ParseURL(u); err == nil {
			t.Errorf("ParseURL(%q) = %+v, want an error", u, opt)
		}
	}
}

func TestParseURLAutoPipeline(t *testing.T) {
	for u, want := range map[string]bool{
		"redis://h:1/0":                                  true,
		"redis://h:1/0?autopipeline=":                    true,
		"redis://h:1/0?autopipeline=false":               false,
		"redis://h:1/0?autopipeline=0&pool_size=3":       false,
		"redis://h:1?addr=h:2&autopipeline=false":        false,
		"redis://h:1?addr=h:2":                           true,
		"redis+sentinel://s:1/0?sentinel_master=m":       true,
		"redis://s:1/0?sentinel_master=m&autopipeline=f": false,
	} {
		opt, err := redis.ParseURL(u)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", u, err)
			continue
		}
		if opt.AutoPipeline != want {
			t.Errorf("ParseURL(%q).AutoPipeline = %v, want %v", u, opt.AutoPipeline, want)
		}
	}
}

// TestDownFailsFast checks that with the default timeouts a call against a
// stopped Redis fails promptly even without a deadline on its context, and
// that the client is usable again once Redis is back.
func TestDownFailsFast(t *testing.T) {
	srv := testredis.StartServer(t)
	s := open(t, srv.URL())
	srv.Stop()
	for i := range 50 {
		start := time.Now()
		if _, err := s.RedeemNonce(context.Background(), "n", time.Now().Add(time.Minute)); err == nil {
			t.Fatal("RedeemNonce succeeded with Redis down")
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("call %d took %v with Redis down", i, d)
		}
	}
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for s.Ping(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("store did not reconnect within 5s of the restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSentinel runs the store through a real sentinel (redis-server
// --sentinel) watching a private master.
func TestSentinel(t *testing.T) {
	master := testredis.StartServer(t)
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not on PATH")
	}
	_, mport, _ := net.SplitHostPort(master.Addr())
	dir := t.TempDir()
	var addr string
	var cmd *exec.Cmd
	for range 5 {
		port := freePort(t)
		addr = net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster 127.0.0.1 %s 1\nsentinel down-after-milliseconds mymaster 5000\n", port, dir, mport)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(bin, conf, "--sentinel", "--loglevel", "warning")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if waitPing(addr, 5*time.Second) == nil {
			break
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		cmd = nil
	}
	if cmd == nil {
		t.Fatal("sentinel did not start")
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := redis.New(ctx, "redis+sentinel://"+addr+"/0?sentinel_master=mymaster")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	nonce := "sentinel-" + time.Now().Format("150405.000000000")
	exp := time.Now().Add(time.Minute)
	if ok, err := s.RedeemNonce(ctx, nonce, exp); err != nil || !ok {
		t.Fatalf("RedeemNonce through the sentinel: %v, %v", ok, err)
	}
	// The used nonce is on the master itself.
	direct := open(t, master.URL())
	if ok, err := direct.RedeemNonce(ctx, nonce, exp); err != nil || ok {
		t.Fatalf("nonce used through the sentinel is not marked on the master: %v, %v", ok, err)
	}
	if _, err := redis.New(ctx, "redis+sentinel://"+addr+"/0?sentinel_master=nosuchmaster"); err == nil {
		t.Fatal("New succeeded for a master the sentinel does not know")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitPing waits until addr answers an inline PING.
func waitPing(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := func() error {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(time.Second))
			if _, err := c.Write([]byte("PING\r\n")); err != nil {
				return err
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				return err
			}
			if !strings.HasPrefix(line, "+PONG") {
				return fmt.Errorf("reply %q", line)
			}
			return nil
		}()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
