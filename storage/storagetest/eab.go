package storagetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/acmegw/acmegw/storage"
)

func testEABKey(t *testing.T, s storage.Store) {
	ctx := context.Background()
	kid := fmt.Sprintf("team-%d", rand.Int64())
	k := &storage.EABKey{KID: kid, HMACKey: []byte("0123456789abcdef0123456789abcdef"), Profiles: []string{"default"},
		Domains: []string{"*.a.example"}, Status: storage.StatusValid, CreatedAt: time.Now().UTC()}
	if err := s.CreateEABKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if k.Version != 1 {
		t.Fatalf("version after create %d, want 1", k.Version)
	}
	if err := s.CreateEABKey(ctx, &storage.EABKey{KID: kid, Status: storage.StatusValid}); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("duplicate kid: %v, want ErrExists", err)
	}
	got, err := s.GetEABKey(ctx, kid)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.HMACKey) != string(k.HMACKey) || got.Profiles[0] != "default" || got.Domains[0] != "*.a.example" {
		t.Fatalf("got %+v", got)
	}
	got.Profiles[0] = "mutated"
	if again, _ := s.GetEABKey(ctx, kid); again.Profiles[0] != "default" {
		t.Fatal("mutating a returned key changed the stored one")
	}
	stale := *got
	got.Status = storage.StatusRevoked
	if err := s.UpdateEABKey(ctx, got); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateEABKey(ctx, &stale); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	if _, err := s.GetEABKey(ctx, "no-such-kid"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown kid: %v, want ErrNotFound", err)
	}
	list, err := s.ListEABKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range list {
		if l.KID == kid {
			found = l.Status == storage.StatusRevoked
		}
	}
	if !found {
		t.Fatalf("ListEABKeys lacks the revoked key %s", kid)
	}
}

func testOrderKey(t *testing.T, s storage.Store) {
	ctx := context.Background()
	key := fmt.Sprintf("acct-%d|default|a.example", rand.Int64())
	if _, err := s.GetOrderKey(ctx, key); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unset key: %v, want ErrNotFound", err)
	}
	if err := s.SetOrderKey(ctx, key, "order-1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOrderKey(ctx, key, "order-2", time.Hour); err != nil {
		t.Fatal(err)
	}
	if id, err := s.GetOrderKey(ctx, key); err != nil || id != "order-2" {
		t.Fatalf("GetOrderKey = %q, %v; want the latest, order-2", id, err)
	}
	// SwapOrderKey changes the entry only while it holds old.
	if ok, err := s.SwapOrderKey(ctx, key, "order-1", "", time.Hour); err != nil || ok {
		t.Fatalf("SwapOrderKey from a stale id = %v, %v; want false", ok, err)
	}
	if ok, err := s.SwapOrderKey(ctx, key+"unset", "order-2", "", time.Hour); err != nil || ok {
		t.Fatalf("SwapOrderKey of an unset key = %v, %v; want false", ok, err)
	}
	if _, err := s.GetOrderKey(ctx, key+"unset"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unset key after a refused swap: %v, want ErrNotFound", err)
	}
	if ok, err := s.SwapOrderKey(ctx, key, "order-2", "", 50*time.Millisecond); err != nil || !ok {
		t.Fatalf("SwapOrderKey from the current id = %v, %v; want true", ok, err)
	}
	if id, err := s.GetOrderKey(ctx, key); err != nil || id != "" {
		t.Fatalf("GetOrderKey after swap = %q, %v; want \"\"", id, err)
	}
	if ok, err := s.SwapOrderKey(ctx, key, "order-2", "", time.Hour); err != nil || ok {
		t.Fatalf("second SwapOrderKey from order-2 = %v, %v; want false", ok, err)
	}
	if err := s.SetOrderKey(ctx, key+"short", "order-3", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if _, err := s.GetOrderKey(ctx, key+"short"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("expired key: %v, want ErrNotFound", err)
	}
	// The swap's ttl replaced the entry's: it is gone by now too.
	if _, err := s.GetOrderKey(ctx, key); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("swapped key past its ttl: %v, want ErrNotFound", err)
	}
}

func testOrderKeysBatch(t *testing.T, s storage.Store) {
	ctx := context.Background()
	base := fmt.Sprintf("acct-%d|", rand.Int64())
	if err := s.SetOrderKey(ctx, base+"a", "order-a", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOrderKey(ctx, base+"ended", "", time.Hour); err != nil {
		t.Fatal(err)
	}
	ids, err := s.GetOrderKeys(ctx, []string{base + "unset", base + "a", base + "ended", base + "a"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"", "order-a", "", "order-a"}; !slices.Equal(ids, want) {
		t.Fatalf("GetOrderKeys = %q, want %q", ids, want)
	}
	if ids, err := s.GetOrderKeys(ctx, nil); err != nil || len(ids) != 0 {
		t.Fatalf("GetOrderKeys of nothing = %q, %v", ids, err)
	}

	// CreateOrderIndexed stores the order and points the key at it.
	o, authzs := newOrder(t, newID(t, "acct"), "indexed.example")
	if err := s.CreateOrderIndexed(ctx, o, authzs, base+"indexed", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if o.Version != 1 || authzs[0].Version != 1 {
		t.Fatalf("versions after CreateOrderIndexed: order %d, authz %d; want 1", o.Version, authzs[0].Version)
	}
	if got, err := s.GetOrder(ctx, o.ID); err != nil || got.ID != o.ID {
		t.Fatalf("GetOrder after CreateOrderIndexed = %v, %v", got, err)
	}
	if id, err := s.GetOrderKey(ctx, base+"indexed"); err != nil || id != o.ID {
		t.Fatalf("index after CreateOrderIndexed = %q, %v; want %q", id, err, o.ID)
	}
	// The same id again is refused like CreateOrder's.
	again, againAuthzs := newOrder(t, o.AccountID, "other.example")
	again.ID = o.ID
	if err := s.CreateOrderIndexed(ctx, again, againAuthzs, base+"again", time.Hour); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("CreateOrderIndexed with a taken id: %v, want ErrExists", err)
	}
	if err := s.CreateOrderIndexed(ctx, again, againAuthzs, "", time.Hour); err == nil {
		t.Fatal("CreateOrderIndexed without a key succeeded")
	}
	time.Sleep(150 * time.Millisecond)
	if _, err := s.GetOrderKey(ctx, base+"indexed"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("index past its ttl: %v, want ErrNotFound", err)
	}
}
