package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// jwkVariants returns n distinct JSON forms of one public key (their "kid"
// differs), so that the cache sees n keys without n key generations.
func jwkVariants(t *testing.T, n int) [][]byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, n)
	for i := range out {
		b, err := json.Marshal(jose.JSONWebKey{Key: key.Public(), KeyID: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// TestKeyCache checks that the cache returns the parse of exactly the bytes
// asked for, keeps no failures, stays within its bound, and keeps a key in
// use across generations.
func TestKeyCache(t *testing.T) {
	t.Parallel()
	var c keyCache
	bound := c.parsed.Bound()
	keys := jwkVariants(t, bound+160)
	first, err := c.get(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.get(append([]byte(nil), keys[0]...)); again != first {
		t.Error("the same key bytes parsed twice")
	}
	if other, _ := c.get(keys[1]); other == first || other.KeyID != "1" {
		t.Errorf("other key bytes gave %+v", other)
	}
	if _, err := c.get([]byte(`{"kty":"EC"}`)); err == nil {
		t.Error("unreadable key accepted")
	}
	if n := c.parsed.Len(); n != 2 {
		t.Errorf("%d keys cached after 2 good and 1 bad, want 2", n)
	}
	for i, k := range keys {
		got, err := c.get(k)
		if err != nil || got.KeyID != fmt.Sprint(i) {
			t.Fatalf("key %d: %+v, %v", i, got, err)
		}
		if _, err := c.get(keys[0]); err != nil { // in use all along
			t.Fatal(err)
		}
		if n := c.parsed.Len(); n > bound {
			t.Fatalf("%d keys cached, bound is %d", n, bound)
		}
	}
	if again, _ := c.get(keys[0]); again != first {
		t.Error("a key used throughout was evicted")
	}
}

// TestKeyCacheConcurrent runs gets from many goroutines (for -race).
func TestKeyCacheConcurrent(t *testing.T) {
	t.Parallel()
	var c keyCache
	keys := jwkVariants(t, 64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := keys[(g*7+i)%len(keys)]
				got, err := c.get(k)
				if err != nil || got.KeyID != fmt.Sprint((g*7+i)%len(keys)) {
					t.Errorf("get: %+v, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
