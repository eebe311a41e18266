// Package memory is the embedded storage.Store: everything lives in maps in
// this process. It is the zero-config default for a single acmegw instance;
// several instances must share storage/redis instead.
//
// Records and nonces have separate locks so that the nonce traffic of every
// request never waits behind record writes. Every lookup goes through a map
// or a per-account index; no request path walks a whole collection.
package memory

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// defaultListLimit is the page size ListOrders uses when the caller passes a
// limit of zero or less, so that no call returns an unbounded list.
const defaultListLimit = 100

// sweepInterval is how often expired nonces are dropped when no RedeemNonce
// call has done it already.
const sweepInterval = 10 * time.Second

// sweepBatch bounds how many expired nonces one lock hold removes, so that a
// sweep never stalls requests for long.
const sweepBatch = 1024

// Store is an in-memory storage.Store. Its zero value is not usable; call New.
//
// Rate limits have a lock of their own too, and certificates are indexed by
// account and name set (for LatestCertificate) as they are created.
type Store struct {
	mu         sync.RWMutex
	accounts   map[string]*storage.Account
	byThumb    map[string]string // thumbprint → account id
	orders     map[string]*storage.Order
	acctOrders map[string][]string // account id → order ids, oldest first
	authzs     map[string]*storage.Authorization
	certs      map[string]*storage.Certificate
	certSets   map[string]string // storage.NameSetKey → serial of the latest-expiring certificate

	nonces usedNonces // redeemed nonces and the nonce secret (nonce.go)

	rl  rateLimits
	eab eabKeys

	jobs jobQueue // issuance jobs, under a lock of their own (jobs.go)

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var _ storage.Store = (*Store)(nil)

// New returns an empty Store and starts its nonce sweeper; Close stops it.
func New() *Store {
	s := &Store{
		accounts:   make(map[string]*storage.Account),
		byThumb:    make(map[string]string),
		orders:     make(map[string]*storage.Order),
		acctOrders: make(map[string][]string),
		authzs:     make(map[string]*storage.Authorization),
		certs:      make(map[string]*storage.Certificate),
		certSets:   make(map[string]string),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	go s.sweepLoop()
	return s
}

// CreateAccount stores a copy of a at version 1 and sets a.Version to 1.
// It returns ErrExists if the id or the thumbprint is taken.
func (s *Store) CreateAccount(ctx context.Context, a *storage.Account) error {
	if a == nil || a.ID == "" || a.Thumbprint == "" {
		return errors.New("memory: create account: id and thumbprint are required")
	}
	c := a.Clone()
	c.Version = 1
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[a.ID]; ok {
		return fmt.Errorf("memory: create account %q: %w", a.ID, storage.ErrExists)
	}
	if _, ok := s.byThumb[a.Thumbprint]; ok {
		return fmt.Errorf("memory: create account %q: thumbprint %q: %w", a.ID, a.Thumbprint, storage.ErrExists)
	}
	s.accounts[a.ID] = c
	s.byThumb[a.Thumbprint] = a.ID
	a.Version = 1
	return nil
}

// GetAccount returns a copy of the account with the given id.
func (s *Store) GetAccount(ctx context.Context, id string) (*storage.Account, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.accounts[id]
	if !ok {
		return nil, fmt.Errorf("memory: account %q: %w", id, storage.ErrNotFound)
	}
	return a.Clone(), nil
}

// GetAccountByThumbprint returns a copy of the account whose key has the given thumbprint.
func (s *Store) GetAccountByThumbprint(ctx context.Context, thumbprint string) (*storage.Account, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.byThumb[thumbprint]
	if !ok {
		return nil, fmt.Errorf("memory: account with thumbprint %q: %w", thumbprint, storage.ErrNotFound)
	}
	return s.accounts[id].Clone(), nil
}

// UpdateAccount replaces the account if a.Version is the stored version, then
// sets a.Version to the new version. A changed thumbprint moves the index
// (key rollover); ErrExists if another account holds the new thumbprint.
func (s *Store) UpdateAccount(ctx context.Context, a *storage.Account) error {
	if a == nil || a.Thumbprint == "" {
		return errors.New("memory: update account: thumbprint is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.accounts[a.ID]
	if !ok {
		return fmt.Errorf("memory: update account %q: %w", a.ID, storage.ErrNotFound)
	}
	if cur.Version != a.Version {
		return fmt.Errorf("memory: update account %q at version %d (stored %d): %w", a.ID, a.Version, cur.Version, storage.ErrConflict)
	}
	if a.Thumbprint != cur.Thumbprint {
		if owner, taken := s.byThumb[a.Thumbprint]; taken && owner != a.ID {
			return fmt.Errorf("memory: update account %q: thumbprint %q: %w", a.ID, a.Thumbprint, storage.ErrExists)
		}
		delete(s.byThumb, cur.Thumbprint)
		s.byThumb[a.Thumbprint] = a.ID
	}
	c := a.Clone()
	c.Version = cur.Version + 1
	s.accounts[a.ID] = c
	a.Version = c.Version
	return nil
}

// CreateOrder stores copies of the order and its new authorizations at
// version 1 (setting their Version fields to 1) and appends the order to its
// account's list. Nothing is stored if any id is taken (ErrExists).
// CreateOrderIndexed is CreateOrder, then SetOrderKey(key, o.ID, ttl).
func (s *Store) CreateOrderIndexed(ctx context.Context, o *storage.Order, authzs []*storage.Authorization, key string, ttl time.Duration) error {
	if key == "" || ttl <= 0 {
		return fmt.Errorf("memory: create order: index key %q with ttl %v", key, ttl)
	}
	if err := s.CreateOrder(ctx, o, authzs); err != nil {
		return err
	}
	return s.SetOrderKey(ctx, key, o.ID, ttl)
}

func (s *Store) CreateOrder(ctx context.Context, o *storage.Order, authzs []*storage.Authorization) error {
	if o == nil || o.ID == "" {
		return errors.New("memory: create order: id is required")
	}
	oc := o.Clone()
	oc.Version = 1
	acs := make([]*storage.Authorization, len(authzs))
	for i, a := range authzs {
		if a == nil || a.ID == "" {
			return fmt.Errorf("memory: create order %q: authorization %d has no id", o.ID, i)
		}
		acs[i] = a.Clone()
		acs[i].Version = 1
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.orders[o.ID]; ok {
		return fmt.Errorf("memory: create order %q: %w", o.ID, storage.ErrExists)
	}
	for i, a := range acs {
		if _, ok := s.authzs[a.ID]; ok {
			return fmt.Errorf("memory: create order %q: authorization %q: %w", o.ID, a.ID, storage.ErrExists)
		}
		for _, b := range acs[:i] {
			if b.ID == a.ID {
				return fmt.Errorf("memory: create order %q: authorization %q given twice: %w", o.ID, a.ID, storage.ErrExists)
			}
		}
	}
	s.orders[o.ID] = oc
	s.acctOrders[o.AccountID] = append(s.acctOrders[o.AccountID], o.ID)
	for _, a := range acs {
		s.authzs[a.ID] = a
	}
	o.Version = 1
	for _, a := range authzs {
		a.Version = 1
	}
	return nil
}

// GetOrder returns a copy of the order with the given id.
func (s *Store) GetOrder(ctx context.Context, id string) (*storage.Order, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := s.orders[id]
	if !ok {
		return nil, fmt.Errorf("memory: order %q: %w", id, storage.ErrNotFound)
	}
	return o.Clone(), nil
}

// UpdateOrder replaces the order if o.Version is the stored version, then sets
// o.Version to the new version. AccountID must not change: the order stays
// in the list of the account it was created for.
func (s *Store) UpdateOrder(ctx context.Context, o *storage.Order) error {
	if o == nil {
		return errors.New("memory: update order: nil order")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.orders[o.ID]
	if !ok {
		return fmt.Errorf("memory: update order %q: %w", o.ID, storage.ErrNotFound)
	}
	if cur.Version != o.Version {
		return fmt.Errorf("memory: update order %q at version %d (stored %d): %w", o.ID, o.Version, cur.Version, storage.ErrConflict)
	}
	c := o.Clone()
	c.Version = cur.Version + 1
	s.orders[o.ID] = c
	o.Version = c.Version
	return nil
}

// ListOrders returns up to limit ids of the account's orders, oldest first,
// from cursor on. The cursor is a decimal offset into the account's list,
// which only ever grows at its end, so cursors stay valid as orders are added.
func (s *Store) ListOrders(ctx context.Context, accountID, cursor string, limit int) ([]string, string, error) {
	off, err := parseCursor(cursor)
	if err != nil {
		return nil, "", fmt.Errorf("memory: list orders of %q: %w", accountID, err)
	}
	if limit <= 0 {
		limit = defaultListLimit
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	all := s.acctOrders[accountID]
	if off >= len(all) {
		return []string{}, "", nil
	}
	end := min(off+limit, len(all))
	ids := cloneStrings(all[off:end])
	next := ""
	if end < len(all) {
		next = strconv.Itoa(end)
	}
	return ids, next, nil
}

// parseCursor turns a ListOrders cursor into an offset; "" is the start.
func parseCursor(cursor string) (int, error) {
	if cursor == "" {
		return 0, nil
	}
	off, err := strconv.Atoi(cursor)
	if err != nil || off < 0 {
		return 0, fmt.Errorf("invalid cursor %q", cursor)
	}
	return off, nil
}

// GetAuthorization returns a copy of the authorization with the given id.
func (s *Store) GetAuthorization(ctx context.Context, id string) (*storage.Authorization, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.authzs[id]
	if !ok {
		return nil, fmt.Errorf("memory: authorization %q: %w", id, storage.ErrNotFound)
	}
	return a.Clone(), nil
}

// UpdateAuthorization replaces the authorization (with its challenges) if
// a.Version is the stored version, then sets a.Version to the new version.
func (s *Store) UpdateAuthorization(ctx context.Context, a *storage.Authorization) error {
	if a == nil {
		return errors.New("memory: update authorization: nil authorization")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.authzs[a.ID]
	if !ok {
		return fmt.Errorf("memory: update authorization %q: %w", a.ID, storage.ErrNotFound)
	}
	if cur.Version != a.Version {
		return fmt.Errorf("memory: update authorization %q at version %d (stored %d): %w", a.ID, a.Version, cur.Version, storage.ErrConflict)
	}
	c := a.Clone()
	c.Version = cur.Version + 1
	s.authzs[a.ID] = c
	a.Version = c.Version
	return nil
}

// UpdateAuthorizationIndexed is UpdateAuthorization, then SetOrderKey if
// the update was made (in-process, nothing to save by sending both at once).
func (s *Store) UpdateAuthorizationIndexed(ctx context.Context, a *storage.Authorization, key string, ttl time.Duration) (err, indexErr error) {
	if err := s.UpdateAuthorization(ctx, a); err != nil {
		return err, nil
	}
	return nil, s.SetOrderKey(ctx, key, a.ID, ttl)
}

// CreateCertificate stores a copy of c at version 1 and sets c.Version to 1;
// ErrExists if the serial is taken.
func (s *Store) CreateCertificate(ctx context.Context, c *storage.Certificate) error {
	if c == nil || c.Serial == "" {
		return errors.New("memory: create certificate: serial is required")
	}
	cc := c.Clone()
	cc.Version = 1
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.certs[c.Serial]; ok {
		return fmt.Errorf("memory: create certificate %q: %w", c.Serial, storage.ErrExists)
	}
	s.certs[c.Serial] = cc
	setKey := storage.NameSetKey(c.AccountID, c.Names)
	if prev, ok := s.certs[s.certSets[setKey]]; !ok || prev.NotAfter.Before(c.NotAfter) {
		s.certSets[setKey] = c.Serial
	}
	c.Version = 1
	return nil
}

// LatestCertificate returns a copy of the account's certificate for exactly
// these names with the latest NotAfter, unless that has passed.
func (s *Store) LatestCertificate(ctx context.Context, accountID string, names []string) (*storage.Certificate, error) {
	setKey := storage.NameSetKey(accountID, names)
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.certs[s.certSets[setKey]]
	if !ok || !time.Now().Before(c.NotAfter) {
		return nil, fmt.Errorf("memory: certificate of account %q for %v: %w", accountID, names, storage.ErrNotFound)
	}
	return c.Clone(), nil
}

// GetCertificate returns a copy of the certificate with the given serial.
func (s *Store) GetCertificate(ctx context.Context, serial string) (*storage.Certificate, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.certs[serial]
	if !ok {
		return nil, fmt.Errorf("memory: certificate %q: %w", serial, storage.ErrNotFound)
	}
	return c.Clone(), nil
}

// UpdateCertificate replaces the certificate if c.Version is the stored
// version (revocation goes through here), then sets c.Version to the new version.
func (s *Store) UpdateCertificate(ctx context.Context, c *storage.Certificate) error {
	if c == nil {
		return errors.New("memory: update certificate: nil certificate")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.certs[c.Serial]
	if !ok {
		return fmt.Errorf("memory: update certificate %q: %w", c.Serial, storage.ErrNotFound)
	}
	if cur.Version != c.Version {
		return fmt.Errorf("memory: update certificate %q at version %d (stored %d): %w", c.Serial, c.Version, cur.Version, storage.ErrConflict)
	}
	cc := c.Clone()
	cc.Version = cur.Version + 1
	s.certs[c.Serial] = cc
	c.Version = cc.Version
	return nil
}

// sweepLoop periodically drops expired nonces in small batches until Close.
func (s *Store) sweepLoop() {
	defer close(s.done)
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.nonces.sweep()
			s.rl.sweep()
		}
	}
}

// Ping always succeeds: the data is in this process.
func (s *Store) Ping(ctx context.Context) error { return nil }

// Close stops the nonce sweeper. The data stays readable; Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
	})
	return nil
}
