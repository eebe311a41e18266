// Package storage defines the Store contract that holds every piece of ACME
// state (accounts, orders, authorizations, certificates, nonces, rate limits)
// and the records kept in it. Implementations live in sub-packages: storage/memory
// (the embedded default) and storage/redis (shared by many instances).
//
// Every mutable record carries a Version. Create stores version 1; Update
// succeeds only when the stored version equals the caller's copy, then
// increments it (compare-and-swap), so two instances never both move one
// object from the same state.
package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	Replaces   string `json:"replaces,omitempty"`
	CertSerial string `json:"certSerial,omitempty"`
	// CSRKeyHash is the SHA-256 of the finalize CSR's public key (SPKI): a
	// client re-running with the same CSR may finalize again idempotently.
	CSRKeyHash string   `json:"csrKeyHash,omitempty"`
	Error      *Problem `json:"error,omitempty"`
	// FinalizedAt is when finalize moved the order to processing: an order
	// processing for longer than a job lease with no job left lost its
	// issuance with the instance that ran it (see acme's orphan check).
	FinalizedAt time.Time `json:"finalizedAt,omitzero"`
	CreatedAt   time.Time `json:"createdAt"`
	// NeedsReview holds the order's issuance until an operator approves it
	// ("acmegw review"): a name of it has one of its profile's review words.
	NeedsReview bool `json:"needsReview,omitempty"`
	// Review is an operator's decision on an order its brand holds for
	// manual review ("acmegw review"); nil while undecided.
	Review  *Review `json:"review,omitempty"`
	Version int64   `json:"version"`
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
	// CAAIdentities are the issuer domains of the brand the authorization
	// was created for; CAA is checked against them when a challenge passes.
	CAAIdentities []string `json:"caaIdentities,omitempty"`
	// CAACheckedAt is when CAA last passed; finalize checks again when it is stale.
	CAACheckedAt time.Time `json:"caaCheckedAt,omitzero"`
	Version      int64     `json:"version"`
}

// Certificate is an issued certificate chain, found by its serial number (lower-case hex).
type Certificate struct {
	Serial    string `json:"serial"`
	AccountID string `json:"accountID"`
	OrderID   string `json:"orderID"`
	Brand     string `json:"brand,omitempty"`
	// BrandRef is the brand's handle on the certificate (issuer.Result.Ref).
	BrandRef         string    `json:"brandRef,omitempty"`
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
	// OrderReuseKey is the OrderIndex key its order was found under, so
	// that the download ends the order's reuse without loading the order.
	OrderReuseKey string `json:"orderReuseKey,omitempty"`
	Version       int64  `json:"version"`
}

// RateLimit allows Count events per Period, enforced with GCRA (the generic
// cell rate algorithm): each event moves the limit's theoretical arrival
// time (TAT) on by the emission interval Period/Count, and an event is
// allowed while the TAT stays within Burst intervals of now. So events may
// come Burst at once after a quiet spell, then one per interval. Burst zero
// means Count. A store keeps one timestamp per key and nothing once the TAT
// has passed, however large Count is.
type RateLimit struct {
	Count  int           `json:"count"`
	Period time.Duration `json:"period"`
	Burst  int           `json:"burst,omitempty"`
}

// MaxBurst is Burst, or Count when Burst is zero.
func (l RateLimit) MaxBurst() int {
	if l.Burst > 0 {
		return l.Burst
	}
	return l.Count
}

// Interval is the emission interval Period/Count, at least 1ns.
func (l RateLimit) Interval() time.Duration {
	if l.Count <= 0 {
		return l.Period
	}
	return max(l.Period/time.Duration(l.Count), 1)
}

// GCRA decides on cost events at now for a key whose stored TAT is tat
// (zero when absent), and returns the TAT to store if they are allowed.
// Times count units of unit since the Unix epoch: the memory store works in
// nanoseconds, the Redis store in microseconds (its script does these sums
// in Lua; its cost-0 peeks use this).
func (l RateLimit) GCRA(unit time.Duration, tat, now int64, cost int) (int64, RateDecision) {
	t := max(int64(l.Interval()/unit), 1)
	window := int64(l.MaxBurst()) * t
	tat = max(tat, now)
	// A TAT beyond the window was spent under a larger limit than this one
	// (the configuration changed); it owes no more than a full window.
	tat = min(tat, now+window)
	need := int64(max(cost, 1))
	if allowAt := tat + need*t - window; now < allowAt {
		return tat, RateDecision{Remaining: int((now - tat + window) / t), RetryAfter: time.Duration(allowAt-now) * unit}
	}
	tat += int64(cost) * t
	return tat, RateDecision{Allowed: true, Remaining: int((now - tat + window) / t)}
}

// Validate reports whether the limit can be enforced: Count and Period
// positive, Burst not negative, and Burst intervals short of 100 years (so
// that no implementation's arithmetic overflows).
func (l RateLimit) Validate() error {
	switch {
	case l.Count <= 0:
		return fmt.Errorf("rate limit count %d is not positive", l.Count)
	case l.Period <= 0:
		return fmt.Errorf("rate limit period %v is not positive", l.Period)
	case l.Burst < 0:
		return fmt.Errorf("rate limit burst %d is negative", l.Burst)
	case l.Interval() > maxRateWindow/time.Duration(l.MaxBurst()+1):
		return fmt.Errorf("rate limit of %d per %v with burst %d spans more than 100 years", l.Count, l.Period, l.MaxBurst())
	}
	return nil
}

// maxRateWindow bounds Burst×Interval (see RateLimit.Validate).
const maxRateWindow = 100 * 365 * 24 * time.Hour

// CheckSpend validates the arguments of SpendRateLimit, for implementations.
func CheckSpend(key string, l RateLimit, cost int) error {
	if key == "" {
		return errors.New("rate limit key is empty")
	}
	if err := l.Validate(); err != nil {
		return err
	}
	if cost < 0 || cost > l.MaxBurst() {
		return fmt.Errorf("rate limit cost %d is outside 0..%d (the burst)", cost, l.MaxBurst())
	}
	return nil
}

// RateDecision is the outcome of SpendRateLimit.
type RateDecision struct {
	// Allowed reports whether the events fit (and so were spent).
	Allowed bool
	// Remaining is how many more events fit right now, after this call.
	Remaining int
	// RetryAfter is, when not Allowed, how long until the events would fit.
	RetryAfter time.Duration
}

// RateSpend is one item of a SpendRateLimits batch: Cost events of Limit
// under Key (a cost of 0 only checks).
type RateSpend struct {
	Key   string
	Limit RateLimit
	Cost  int
	// BestEffort items count events that happened anyway (a certificate
	// already issued): they are spent if they fit, whatever the other
	// items' decisions, and their own refusal refunds nothing. Boulder's
	// spend-only transactions work the same way.
	BestEffort bool
	// RenewalExempt items are not spent by SpendRateLimitsUnlessRenewal
	// when the request turns out to be a renewal.
	RenewalExempt bool
}

// Renews reports whether c, an account's LatestCertificate for a name set,
// makes the account's new request for that set a renewal: c is valid (not
// revoked) and not expired at now.
func Renews(c *Certificate, now time.Time) bool {
	return c != nil && c.Status == StatusValid && now.Before(c.NotAfter)
}

// RateBatchRefused returns the index of the refused item of a
// SpendRateLimits batch that the caller should report (BestEffort items
// aside): the one whose RetryAfter is longest, the first of equals. It
// returns -1 when the batch was allowed.
func RateBatchRefused(spends []RateSpend, decisions []RateDecision) int {
	worst := -1
	for i, d := range decisions {
		if d.Allowed || spends[i].BestEffort {
			continue
		}
		if worst < 0 || d.RetryAfter > decisions[worst].RetryAfter {
			worst = i
		}
	}
	return worst
}

// NameSetKey names the set of an account's certificates that carry exactly
// the given names (dNSNames and IP addresses; order, case and duplicates do
// not matter): the account id and the SHA-256 of the sorted names. Stores
// index certificates under it for LatestCertificate.
func NameSetKey(accountID string, names []string) string {
	norm := make([]string, len(names))
	for i, n := range names {
		norm[i] = strings.ToLower(n)
	}
	slices.Sort(norm)
	norm = slices.Compact(norm)
	sum := sha256.Sum256([]byte(strings.Join(norm, "\n")))
	return accountID + ":" + hex.EncodeToString(sum[:])
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
	// CreateOrderIndexed is CreateOrder that also points the OrderIndex key
	// at the new order until ttl passes, in the same round trip.
	CreateOrderIndexed(ctx context.Context, o *Order, authzs []*Authorization, key string, ttl time.Duration) error
	GetOrder(ctx context.Context, id string) (*Order, error)
	UpdateOrder(ctx context.Context, o *Order) error
	// ListOrders returns the ids of an account's orders, oldest first,
	// starting at cursor ("" for the first page), and the cursor of the next
	// page ("" when there is none).
	ListOrders(ctx context.Context, accountID, cursor string, limit int) (ids []string, next string, err error)

	GetAuthorization(ctx context.Context, id string) (*Authorization, error)
	UpdateAuthorization(ctx context.Context, a *Authorization) error
	// UpdateAuthorizationIndexed is UpdateAuthorization and SetOrderKey(key,
	// a.ID, ttl) in one round trip, for an authorization that becomes valid
	// and is indexed for reuse. The index write is not conditional on the
	// update (a cluster keeps the two in different slots): it may happen
	// when the update conflicts, so readers of the index check what it
	// names. The error is the update's; an index write that fails alone
	// is indexErr.
	UpdateAuthorizationIndexed(ctx context.Context, a *Authorization, key string, ttl time.Duration) (err, indexErr error)

	// CreateCertificate stores an issued certificate; ErrExists if the serial is taken.
	// It also indexes the certificate under NameSetKey(AccountID, Names).
	CreateCertificate(ctx context.Context, c *Certificate) error
	GetCertificate(ctx context.Context, serial string) (*Certificate, error)
	UpdateCertificate(ctx context.Context, c *Certificate) error
	// LatestCertificate returns, of the account's certificates whose Names
	// are exactly the given set (order, case and duplicates aside), the one
	// with the latest NotAfter, as long as that NotAfter is in the future;
	// ErrNotFound otherwise. It may be revoked. A constant-cost index lookup,
	// used to recognise renewals.
	LatestCertificate(ctx context.Context, accountID string, names []string) (*Certificate, error)

	// SpendRateLimit checks the limit of key (GCRA, see RateLimit) and, only
	// if cost events fit now, spends them, atomically across all instances
	// sharing the store. A cost of 0 spends nothing: Allowed reports whether
	// one event would fit, Remaining how many do, RetryAfter how long until
	// one does. Cost must not exceed the burst. A key idle for its window
	// takes no space.
	SpendRateLimit(ctx context.Context, key string, limit RateLimit, cost int) (RateDecision, error)
	// SpendRateLimits is SpendRateLimit for a batch of keys in one round
	// trip, all or nothing: if any item other than a BestEffort one is
	// refused, none of those items stays spent (a store that spends them
	// one by one refunds them, moving their TAT back by cost intervals but
	// never before now; other callers may see the spends meanwhile).
	// BestEffort items are decided after the others and stay spent if they
	// fit. It returns every item's decision, in order: Allowed reports
	// whether that item's events fit, Remaining how many fit after the call,
	// refunds included. An invalid item is an error and spends nothing.
	// Items of cost 0 only check; the spends of the same batch may or may
	// not be seen by them, so a batch names each key once.
	SpendRateLimits(ctx context.Context, spends []RateSpend) ([]RateDecision, error)
	// SpendRateLimitsUnlessRenewal is SpendRateLimits for the account's
	// request for exactly names, with the LatestCertificate lookup that
	// tells a renewal (see Renews) in the same round trip: for a renewal,
	// the RenewalExempt items are not spent and do not refuse the batch
	// (their decisions are Allowed), and it returns true. A store may spend
	// RenewalExempt items until it knows, and refund them after.
	SpendRateLimitsUnlessRenewal(ctx context.Context, accountID string, names []string, spends []RateSpend) (renewal bool, decisions []RateDecision, err error)

	// NonceSecret returns the key (at least 32 bytes) that authenticates
	// nonces, the same for every instance sharing the store: the first call
	// on a fresh store creates it, later calls return it. Nonces themselves
	// are not stored when issued; see RedeemNonce. A store that lost its
	// data answers with a new secret, so callers ask again now and then.
	NonceSecret(ctx context.Context) ([]byte, error)
	// RedeemNonce marks nonce used until expires and reports whether it was
	// unused: of any number of callers on any instance, exactly one sees
	// true. A nonce whose expires has passed is refused (false) and not
	// stored. The caller has already checked the nonce's authenticity and
	// expiry; the store only remembers which nonces were used.
	RedeemNonce(ctx context.Context, nonce string, expires time.Time) (bool, error)
	// RedeemNonceGetAccount is RedeemNonce and then GetAccount(accountID) in
	// one round trip, for requests signed by an account. The account (or
	// ErrNotFound) is only looked at when the nonce was redeemed; otherwise
	// it returns false, nil, nil. When also is not nil, the record it names
	// is read in the same round trip and filled into it (see Prefetch).
	RedeemNonceGetAccount(ctx context.Context, nonce string, expires time.Time, accountID string, also *Prefetch) (bool, *Account, error)

	// EnqueueJob stores a new job at version 1; ErrExists if its ID is taken.
	EnqueueJob(ctx context.Context, j *Job) error
	// ClaimJob leases the job with the earliest Due at or before now: it sets
	// Due to now+lease, increments Version and returns the job. ErrNotFound
	// when no job is due. Two instances never claim the same job at once.
	ClaimJob(ctx context.Context, now time.Time, lease time.Duration) (*Job, error)
	// GetJob returns the job with the given ID.
	GetJob(ctx context.Context, id string) (*Job, error)
	// UpdateJob stores changes (Due, Ticket, Attempts...) with compare-and-swap:
	// a worker whose lease was taken over gets ErrConflict.
	UpdateJob(ctx context.Context, j *Job) error
	// CompleteJob removes a job whose version is still j.Version; ErrConflict otherwise.
	CompleteJob(ctx context.Context, j *Job) error
	// FinishJob records a job's outcome in one round trip where the store
	// allows: UpdateOrder(o), then CompleteJob(j). The two are not atomic
	// (a cluster keeps them in different slots) and both are tried whatever
	// the other's outcome: orderErr is UpdateOrder's, jobErr CompleteJob's.
	// So the job may be gone while the order did not move; the caller
	// enqueues it again then. spends, the rate limits a certificate the
	// brand issued counts against, are spent in the same round trip as
	// SpendRateLimits would (each BestEffort: the certificate exists),
	// whatever the order's and the job's outcome; their decisions are not
	// reported.
	FinishJob(ctx context.Context, o *Order, j *Job, spends []RateSpend) (orderErr, jobErr error)
	// JobStats counts the queue without scanning it.
	JobStats(ctx context.Context) (JobStats, error)

	EABStore
	OrderIndex

	// Ping reports whether the backing store is reachable.
	Ping(ctx context.Context) error
	Close() error
}

// Prefetch names the one record a signed request's URL points at (its
// order, authorization or certificate), for RedeemNonceGetAccount to read
// in the round trip that redeems the nonce and reads the account: the
// handler's first read then costs no round trip of its own. Nothing read is
// used before the request's signature and the record's owner are checked.
type Prefetch struct {
	// Kind says which record ID names; PrefetchNone reads nothing.
	Kind PrefetchKind
	// ID is the order's or authorization's ID, or the certificate's serial.
	ID string

	// Read is set by the store once it has read the record: Order,
	// Authorization or Certificate (by Kind) and Err are then what the
	// matching Get would have returned. A refused nonce, or an account
	// that does not exist, may leave it false (the caller then reads).
	Read          bool
	Order         *Order
	Authorization *Authorization
	Certificate   *Certificate
	Err           error
}

// PrefetchKind is the kind of record a Prefetch reads.
type PrefetchKind int

// The kinds of record a Prefetch reads.
const (
	PrefetchNone PrefetchKind = iota
	PrefetchOrder
	PrefetchAuthorization
	PrefetchCertificate
)

// Fill reads p's record from s, one Get call, for a store that has no
// cheaper way to read it alongside the account. A nil p reads nothing.
func (p *Prefetch) Fill(ctx context.Context, s interface {
	GetOrder(ctx context.Context, id string) (*Order, error)
	GetAuthorization(ctx context.Context, id string) (*Authorization, error)
	GetCertificate(ctx context.Context, serial string) (*Certificate, error)
}) {
	if p == nil {
		return
	}
	switch p.Kind {
	case PrefetchOrder:
		p.Order, p.Err = s.GetOrder(ctx, p.ID)
	case PrefetchAuthorization:
		p.Authorization, p.Err = s.GetAuthorization(ctx, p.ID)
	case PrefetchCertificate:
		p.Certificate, p.Err = s.GetCertificate(ctx, p.ID)
	default:
		return
	}
	p.Read = true
}
