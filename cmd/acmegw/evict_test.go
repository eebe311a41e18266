package main

import (
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmegw/acmegw/internal/testredis"
)

// TestWarnsWhenRedisEvicts checks that serve warns at start-up when Redis
// may evict keys, and stays quiet on the default noeviction.
func TestWarnsWhenRedisEvicts(t *testing.T) {
	const warning = "maxmemory-policy noeviction"
	quiet := startGateway(t, gatewayOptions{RedisURL: testredis.StartServer(t).URL()})
	if strings.Contains(quiet.Log(), warning) {
		t.Errorf("warned on a noeviction Redis:\n%s", quiet.Log())
	}

	url := testredis.StartServer(t).URL()
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	raw := goredis.NewClient(opt)
	defer raw.Close()
	if err := raw.ConfigSet(t.Context(), "maxmemory-policy", "allkeys-lru").Err(); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, gatewayOptions{RedisURL: url})
	if log := gw.Log(); !strings.Contains(log, warning) || !strings.Contains(log, "maxmemory_policy=allkeys-lru") {
		t.Errorf("no eviction warning in the start-up log:\n%s", log)
	}
}
