package memory

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// eabKeys holds EAB keys and the order-reuse index; its zero value is usable.
type eabKeys struct {
	mu        sync.Mutex
	keys      map[string]*storage.EABKey
	orderKeys map[string]orderKey
}

type orderKey struct {
	orderID string
	expires time.Time
}

func cloneEABKey(k *storage.EABKey) *storage.EABKey {
	c := *k
	c.HMACKey = cloneBytes(k.HMACKey)
	c.Profiles = cloneStrings(k.Profiles)
	c.Domains = cloneStrings(k.Domains)
	return &c
}

// CreateEABKey stores a copy of k at version 1.
func (s *Store) CreateEABKey(ctx context.Context, k *storage.EABKey) error {
	s.eab.mu.Lock()
	defer s.eab.mu.Unlock()
	if s.eab.keys == nil {
		s.eab.keys = map[string]*storage.EABKey{}
	}
	if _, ok := s.eab.keys[k.KID]; ok {
		return fmt.Errorf("memory: create eab key %q: %w", k.KID, storage.ErrExists)
	}
	k.Version = 1
	s.eab.keys[k.KID] = cloneEABKey(k)
	return nil
}

// GetEABKey returns a copy of the key with the given kid.
func (s *Store) GetEABKey(ctx context.Context, kid string) (*storage.EABKey, error) {
	s.eab.mu.Lock()
	defer s.eab.mu.Unlock()
	k, ok := s.eab.keys[kid]
	if !ok {
		return nil, fmt.Errorf("memory: eab key %q: %w", kid, storage.ErrNotFound)
	}
	return cloneEABKey(k), nil
}

// UpdateEABKey replaces the key if k.Version is the stored version.
func (s *Store) UpdateEABKey(ctx context.Context, k *storage.EABKey) error {
	s.eab.mu.Lock()
	defer s.eab.mu.Unlock()
	cur, ok := s.eab.keys[k.KID]
	if !ok {
		return fmt.Errorf("memory: update eab key %q: %w", k.KID, storage.ErrNotFound)
	}
	if cur.Version != k.Version {
		return fmt.Errorf("memory: update eab key %q: %w", k.KID, storage.ErrConflict)
	}
	k.Version++
	s.eab.keys[k.KID] = cloneEABKey(k)
	return nil
}

// ListEABKeys returns copies of all keys sorted by kid.
func (s *Store) ListEABKeys(ctx context.Context) ([]*storage.EABKey, error) {
	s.eab.mu.Lock()
	defer s.eab.mu.Unlock()
	out := make([]*storage.EABKey, 0, len(s.eab.keys))
	for _, k := range s.eab.keys {
		out = append(out, cloneEABKey(k))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].KID < out[j].KID })
	return out, nil
}

// SetOrderKey points key at orderID until ttl passes.
func (s *Store) SetOrderKey(ctx context.Context, key, orderID string, ttl time.Duration) error {
	s.eab.mu.Lock()
	defer s.eab.mu.Unlock()
	if s.eab.orderKeys == nil {
		s.eab.orderKeys = map[string]orderKey{}
	}
	s.eab.orderKeys[key] = orderKey{orderID: orderID, expires: time.Now().Add(ttl)}
	return nil
}

// GetOrderKey returns the order id at key. Expired entries are dropped when
// read; entries never read again stay until the process ends, bounded by the
// number of distinct (account, profile, names) sets.
func (s *Store) GetOrderKey(ctx context.Context, key string) (string, error) {
	s.eab.mu.Lock()
	defer s.eab.mu.Unlock()
	e, ok := s.eab.orderKeys[key]
	if ok && time.Now().After(e.expires) {
		delete(s.eab.orderKeys, key)
		ok = false
	}
	if !ok {
		return "", fmt.Errorf("memory: order key: %w", storage.ErrNotFound)
	}
	return e.orderID, nil
}

// GetOrderKeys returns the order id at each key, "" where there is none.
func (s *Store) GetOrderKeys(ctx context.Context, keys []string) ([]string, error) {
	ids := make([]string, len(keys))
	for i, k := range keys {
		id, err := s.GetOrderKey(ctx, k)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}

// SwapOrderKey points key at orderID until ttl passes if it points at old now.
func (s *Store) SwapOrderKey(ctx context.Context, key, old, orderID string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("memory: swap order key: ttl %v is not positive", ttl)
	}
	s.eab.mu.Lock()
	defer s.eab.mu.Unlock()
	e, ok := s.eab.orderKeys[key]
	if !ok || time.Now().After(e.expires) || e.orderID != old {
		return false, nil
	}
	s.eab.orderKeys[key] = orderKey{orderID: orderID, expires: time.Now().Add(ttl)}
	return true, nil
}
