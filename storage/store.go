// Package storage defines the Store contract that holds every piece of ACME
// state (accounts, orders, authorizations, certificates, nonces) and the
// records kept in it. Implementations live in sub-packages: storage/memory
// (the embedded default) and storage/redis (shared by many instances).
//
// Every mutable record carries a Version. Create stores version 1; Update
// succeeds only when the stored version equals the caller's copy, then
// increments it (compare-and-swap), so two instances never both move one
// object from the same state.
package storage

import (
	"context"
	"errors"
	"time"
)

// Errors returned by every Store implementation. Callers compare with errors.Is.
var (
	// ErrNotFound means no record has the given key.
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict means the record changed since the caller read it (version mismatch).
	ErrConflict = errors.New("storage: version conflict")
	// ErrExists means a unique key (id, account key thumbprint, serial) is already taken.
	ErrExists = errors.New("storage: already exists")
)

// Status values shared by accounts, orders, authorizations and challenges (RFC 8555 §7.1.6).
const (
	StatusPending     = "pending"
	StatusReady       = "ready"
	StatusProcessing  = "processing"
	StatusValid       = "valid"
	StatusInvalid     = "invalid"
	StatusDeactivated = "deactivated"
	StatusRevoked     = "revoked"
	StatusExpired     = "expired"
)

// Identifier is an ACME identifier: Type is "dns" or "ip".
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Problem is a stored RFC 7807 problem: Type is the short ACME error name
// ("unauthorized", "dns", "connection", ...), not the full URN.
type Problem struct {
	Type       string      `json:"type"`
	Detail     string      `json:"detail"`
	Identifier *Identifier `json:"identifier,omitempty"`
}

// Account is an ACME account, found by id or by the thumbprint of its key.
type Account struct {
	ID          string    `json:"id"`
	KeyJWK      []byte    `json:"key"` // public key as JSON Web Key
	Thumbprint  string    `json:"thumbprint"`
	Status      string    `json:"status"`
	Contact     []string  `json:"contact,omitempty"`
	TermsAgreed bool      `json:"termsAgreed,omitempty"`
	EABKeyID    string    `json:"eabKeyID,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	Version     int64     `json:"version"`
}

// Order is an ACME order. Its authorizations are stored separately and
// listed by id in AuthzIDs, in the order of Identifiers.
type Order struct {
	ID          string       `json:"id"`
	AccountID   string       `json:"accountID"`
	Status      string       `json:"status"`
	Identifiers []Identifier `json:"identifiers"`
	AuthzIDs    []string     `json:"authzIDs"`
	NotBefore   time.Time    `json:"notBefore,omitzero"`
	NotAfter    time.Time    `json:"notAfter,omitzero"`
	Expires     time.Time    `json:"expires"`
	Profile     string       `json:"profile,omitempty"`
	Brand       string       `json:"brand,omitempty"`
	// Replaces is the ARI certificate id (RFC 9773) of the certificate this order renews.
	Replaces   string    `json:"replaces,omitempty"`
	CertSerial string    `json:"certSerial,omitempty"`
	Error      *Problem  `json:"error,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	Version    int64     `json:"version"`
}

// Challenge is one way to prove control of an authorization's identifier.
// Challenges are stored inside their Authorization so that both change together.
type Challenge struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Token     string    `json:"token"`
	Status    string    `json:"status"`
	Validated time.Time `json:"validated,omitzero"`
	// Started is when the current validation attempt began; a challenge left
	// "processing" long after it (its instance died) is validated again.
	Started time.Time `json:"started,omitzero"`
	Error   *Problem  `json:"error,omitempty"`
}

// Authorization is an account's proof (pending or done) of control of one identifier.
type Authorization struct {
	ID         string      `json:"id"`
	AccountID  string      `json:"accountID"`
	Identifier Identifier  `json:"identifier"`
	Wildcard   bool        `json:"wildcard,omitempty"`
	Status     string      `json:"status"`
	Expires    time.Time   `json:"expires"`
	Challenges []Challenge `json:"challenges"`
	Version    int64       `json:"version"`
}

// Certificate is an issued certificate chain, found by its serial number (lower-case hex).
type Certificate struct {
	Serial           string    `json:"serial"`
	AccountID        string    `json:"accountID"`
	OrderID          string    `json:"orderID"`
	Brand            string    `json:"brand,omitempty"`
	ChainPEM         []byte    `json:"chain"`                // leaf first
	AlternateChains  [][]byte  `json:"alternates,omitempty"` // each leaf first
	Names            []string  `json:"names,omitempty"`
	NotBefore        time.Time `json:"notBefore"`
	NotAfter         time.Time `json:"notAfter"`
	Status           string    `json:"status"` // valid or revoked
	RevokedAt        time.Time `json:"revokedAt,omitzero"`
	RevocationReason int       `json:"revocationReason,omitempty"`
	// ReplacedBy is the id of the order that named this certificate in
	// "replaces"; a second such order gets alreadyReplaced.
	ReplacedBy string `json:"replacedBy,omitempty"`
	// RenewalStart and RenewalEnd, when set, override the ARI suggested
	// window (an operator pulling renewals earlier during an incident).
	RenewalStart time.Time `json:"renewalStart,omitzero"`
	RenewalEnd   time.Time `json:"renewalEnd,omitzero"`
	Version      int64     `json:"version"`
}

// Store holds all ACME state. Implementations must be safe for concurrent use
// and must make every Update a compare-and-swap on Version.
type Store interface {
	// CreateAccount stores a new account; ErrExists if its thumbprint is taken.
	CreateAccount(ctx context.Context, a *Account) error
	GetAccount(ctx context.Context, id string) (*Account, error)
	GetAccountByThumbprint(ctx context.Context, thumbprint string) (*Account, error)
	// UpdateAccount also moves the thumbprint index when the key changed
	// (key rollover); ErrExists if the new thumbprint belongs to another account.
	UpdateAccount(ctx context.Context, a *Account) error

	// CreateOrder stores an order and its new authorizations in one step.
	CreateOrder(ctx context.Context, o *Order, authzs []*Authorization) error
	GetOrder(ctx context.Context, id string) (*Order, error)
	UpdateOrder(ctx context.Context, o *Order) error
	// ListOrders returns the ids of an account's orders, oldest first,
	// starting at cursor ("" for the first page), and the cursor of the next
	// page ("" when there is none).
	ListOrders(ctx context.Context, accountID, cursor string, limit int) (ids []string, next string, err error)

	GetAuthorization(ctx context.Context, id string) (*Authorization, error)
	UpdateAuthorization(ctx context.Context, a *Authorization) error

	// CreateCertificate stores an issued certificate; ErrExists if the serial is taken.
	CreateCertificate(ctx context.Context, c *Certificate) error
	GetCertificate(ctx context.Context, serial string) (*Certificate, error)
	UpdateCertificate(ctx context.Context, c *Certificate) error

	// AddNonce records a nonce that may be redeemed once before ttl passes.
	AddNonce(ctx context.Context, nonce string, ttl time.Duration) error
	// ConsumeNonce reports whether the nonce was outstanding, and removes it.
	ConsumeNonce(ctx context.Context, nonce string) (bool, error)

	// Ping reports whether the backing store is reachable.
	Ping(ctx context.Context) error
	Close() error
}
