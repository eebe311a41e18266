package dcv_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/issuer/dcv"
)

// TestRecordStores runs the same cases against every RecordStore.
func TestRecordStores(t *testing.T) {
	stores := map[string]func(t *testing.T) dcv.RecordStore{
		"memory": func(*testing.T) dcv.RecordStore { return dcv.NewMemoryStore() },
		"redis": func(t *testing.T) dcv.RecordStore {
			opts, err := goredis.ParseURL(testredis.Start(t))
			if err != nil {
				t.Fatal(err)
			}
			c := goredis.NewClient(opts)
			t.Cleanup(func() { _ = c.Close() })
			return dcv.NewRedisStore(c)
		},
	}
	for kind, open := range stores {
		t.Run(kind, func(t *testing.T) {
			s := open(t)
			ctx := t.Context()
			// Fresh names: a Redis given by URL may be shared.
			name := fmt.Sprintf("_dnsauth.s%d.example.%s", time.Now().UnixNano(), testZone)
			get := func() []dcv.StoredRecord {
				t.Helper()
				rs, err := s.Get(ctx, name)
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				return rs
			}
			if rs := get(); len(rs) != 0 {
				t.Fatalf("new name holds %v", rs)
			}
			for _, v := range []string{"b", "a", "with space", "a"} { // "a" twice: Put is idempotent
				if err := s.Put(ctx, name, "TXT", v, time.Hour); err != nil {
					t.Fatalf("Put: %v", err)
				}
			}
			if err := s.Put(ctx, name, "ENT", "m", time.Hour); err != nil {
				t.Fatal(err)
			}
			want := []dcv.StoredRecord{{"ENT", "m"}, {"TXT", "a"}, {"TXT", "b"}, {"TXT", "with space"}}
			if rs := get(); !slices.Equal(rs, want) {
				t.Fatalf("Get = %v, want %v", rs, want)
			}
			if err := s.Delete(ctx, name, "TXT", "a"); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, name, "TXT", "never-there"); err != nil {
				t.Errorf("deleting a missing entry: %v", err)
			}
			if rs := get(); !slices.Equal(rs, []dcv.StoredRecord{{"ENT", "m"}, {"TXT", "b"}, {"TXT", "with space"}}) {
				t.Fatalf("after Delete: %v", rs)
			}

			// Entries expire on their own, each after its own lifetime.
			if err := s.Put(ctx, name, "TXT", "short", 100*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if rs := get(); len(rs) != 4 {
				t.Fatalf("short-lived entry missing: %v", rs)
			}
			time.Sleep(250 * time.Millisecond)
			if rs := get(); len(rs) != 3 || slices.Contains(rs, dcv.StoredRecord{Type: "TXT", Value: "short"}) {
				t.Fatalf("after expiry: %v", rs)
			}
			for _, r := range get() {
				if err := s.Delete(ctx, name, r.Type, r.Value); err != nil {
					t.Fatal(err)
				}
			}
			if rs := get(); len(rs) != 0 {
				t.Fatalf("after deleting all: %v", rs)
			}
		})
	}
}

// TestRedisStoreKeys pins the key layout other tools (and operators) read:
// acmegw:{dcv}:<name>, expiring by itself.
func TestRedisStoreKeys(t *testing.T) {
	opts, err := goredis.ParseURL(testredis.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	s := dcv.NewRedisStore(c)
	ctx := t.Context()
	name := fmt.Sprintf("_dnsauth.k%d.example.%s", time.Now().UnixNano(), testZone)
	if err := s.Put(ctx, name, "TXT", "v", time.Hour); err != nil {
		t.Fatal(err)
	}
	key := "acmegw:{dcv}:" + name
	ttl, err := c.PTTL(ctx, key).Result()
	if err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("PTTL %s = %v, %v; want about an hour", key, ttl, err)
	}
	if err := s.Delete(ctx, name, "TXT", "v"); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Exists(ctx, key).Result(); n != 0 {
		t.Errorf("%s still exists after its last entry went", key)
	}
}
