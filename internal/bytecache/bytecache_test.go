package bytecache

import (
	"fmt"
	"sync"
	"testing"
)

// TestCache checks that a value comes back for exactly its bytes, that the
// bound holds, and that an entry in use survives generations.
func TestCache(t *testing.T) {
	t.Parallel()
	c := &Cache[int]{Generation: 4}
	b := []byte("alpha")
	c.Put(b, 1)
	b[0] = 'X' // Put copied the bytes
	if v, ok := c.Get([]byte("alpha")); !ok || v != 1 {
		t.Fatalf("Get(alpha) = %d, %v; want 1, true", v, ok)
	}
	if _, ok := c.Get([]byte("Xlpha")); ok {
		t.Fatal("Get found bytes that were never put")
	}
	if _, ok := c.Get([]byte("alph")); ok {
		t.Fatal("Get found a prefix of put bytes")
	}
	for i := range 10 * c.Bound() {
		c.Put(fmt.Appendf(nil, "key-%d", i), i)
		if v, ok := c.Get([]byte("alpha")); !ok || v != 1 { // in use all along
			t.Fatalf("after %d puts, Get(alpha) = %d, %v; want it kept", i, v, ok)
		}
		if n := c.Len(); n > c.Bound() {
			t.Fatalf("%d entries, bound is %d", n, c.Bound())
		}
	}
	if _, ok := c.Get([]byte("key-0")); ok {
		t.Error("an entry unused for many generations was kept")
	}
	if n := c.Len(); n < c.Bound()/2 {
		t.Errorf("%d entries after filling a cache bounded at %d: generations dropped too eagerly", n, c.Bound())
	}
}

// TestCacheConcurrent runs Get and Put from many goroutines (for -race).
func TestCacheConcurrent(t *testing.T) {
	t.Parallel()
	var c Cache[string]
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := fmt.Appendf(nil, "%d", (g*7+i)%300)
				if v, ok := c.Get(k); ok && v != string(k) {
					t.Errorf("Get(%s) = %s", k, v)
					return
				}
				c.Put(k, string(k))
			}
		})
	}
	wg.Wait()
	if n := c.Len(); n == 0 || n > c.Bound() {
		t.Errorf("%d entries", n)
	}
}
