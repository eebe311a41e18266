package main

import (
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// TestOpenDCVRedisForms checks that the delegated zones' Redis client takes
// every store URL form, Sentinel included (go-redis's own single-node
// parser refused redis+sentinel://, and took a Sentinel URL with addr=
// for a Cluster).
func TestOpenDCVRedisForms(t *testing.T) {
	for _, tc := range []struct {
		url     string
		cluster bool
	}{
		{"redis://127.0.0.1:1/0", false},
		{"redis+sentinel://127.0.0.1:1/0?sentinel_master=m&addr=127.0.0.1:2", false},
		{"redis://127.0.0.1:1/0?sentinel_master=m&addr=127.0.0.1:2", false},
		{"redis://127.0.0.1:1?addr=127.0.0.1:2", true},
	} {
		c, err := openDCVRedis(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if _, isCluster := c.(*goredis.ClusterClient); isCluster != tc.cluster {
			t.Errorf("%s: cluster client %v, want %v", tc.url, isCluster, tc.cluster)
		}
		_ = c.Close()
	}
	if _, err := openDCVRedis("http://127.0.0.1:1"); err == nil {
		t.Error("an http:// URL was taken")
	}
}
