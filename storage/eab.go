package storage

import (
	"context"
	"time"
)

// EABKey is an External Account Binding key (RFC 8555 §7.3.4): a tenant's
// key id and MAC key, with what accounts bound to it may order. Several ACME
// accounts may bind to one key (one per server of the tenant), as ZeroSSL
// allows; revoking the key cuts them all off.
type EABKey struct {
	KID     string `json:"kid"`
	HMACKey []byte `json:"hmac"`
	// Profiles the bound accounts may order; empty means any. The first is
	// the default for orders that name no profile.
	Profiles []string `json:"profiles,omitempty"`
	// Domains are patterns the identifiers must match: "a.example" exactly,
	// "*.a.example" any name below it; empty means any.
	Domains     []string  `json:"domains,omitempty"`
	Description string    `json:"description,omitempty"`
	Status      string    `json:"status"` // valid or revoked
	CreatedAt   time.Time `json:"createdAt"`
	Version     int64     `json:"version"`
}

// EABStore keeps EAB keys. It is part of Store; admin commands may list
// keys (a small, operator-sized set), request paths only get by kid.
type EABStore interface {
	// CreateEABKey stores a new key at version 1; ErrExists if the kid is taken.
	CreateEABKey(ctx context.Context, k *EABKey) error
	GetEABKey(ctx context.Context, kid string) (*EABKey, error)
	// UpdateEABKey is a compare-and-swap on Version.
	UpdateEABKey(ctx context.Context, k *EABKey) error
	// ListEABKeys returns every key, sorted by kid.
	ListEABKeys(ctx context.Context) ([]*EABKey, error)
}

// OrderIndex remembers, per account, profile and identifier set, the latest
// order, so that a client asking again gets the same order back (order
// reuse) instead of a second purchase from a brand. Entries are hints: the
// caller checks the order it points at.
type OrderIndex interface {
	// SetOrderKey points key at orderID until ttl passes.
	SetOrderKey(ctx context.Context, key, orderID string, ttl time.Duration) error
	// GetOrderKey returns the order id at key, or ErrNotFound.
	GetOrderKey(ctx context.Context, key string) (string, error)
	// GetOrderKeys returns the order id at each key, "" where there is
	// none, in one round trip: newOrder looks up its order and every
	// authorization to reuse at once.
	GetOrderKeys(ctx context.Context, keys []string) ([]string, error)
	// SwapOrderKey points key at orderID until ttl passes, but only if it
	// points at old now (atomically): it reports whether it did.
	SwapOrderKey(ctx context.Context, key, old, orderID string, ttl time.Duration) (bool, error)
}
