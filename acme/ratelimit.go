package acme

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/acmegw/acmegw/storage"
)

// Names of the rate limits, as used in RateLimits, in the configuration and
// in the detail of rateLimited problems.
const (
	// LimitNewAccountsPerIP counts newAccount requests that create an
	// account, per client address (IPv4 address or IPv6 /64).
	LimitNewAccountsPerIP = "newAccountsPerIP"
	// LimitNewOrdersPerAccount counts created orders per account; renewals
	// are exempt.
	LimitNewOrdersPerAccount = "newOrdersPerAccount"
	// LimitCertificatesPerRegisteredDomain counts issued certificates per
	// registered domain (or IP address) they name, whichever account asked;
	// renewals are exempt. It is checked at newOrder and finalize and spent
	// once a certificate is issued (or accepted by a brand that issues later).
	LimitCertificatesPerRegisteredDomain = "certificatesPerRegisteredDomain"
	// LimitFailedValidationsPerAccountAndName counts failed challenge
	// validations per account and identifier; it is checked before each
	// validation starts and spent when one fails.
	LimitFailedValidationsPerAccountAndName = "failedValidationsPerAccountAndName"
	// LimitFinalizePerOrder counts finalize requests of a ready order, bad
	// CSRs included, so a client stuck in a finalize loop is slowed down.
	LimitFinalizePerOrder = "finalizePerOrder"
)

// defaultRateLimits are Let's Encrypt's limits made roomier for a private
// gateway, whose clients are an organisation's own servers and clusters.
var defaultRateLimits = map[string]storage.RateLimit{
	LimitNewAccountsPerIP:                   {Count: 300, Period: 3 * time.Hour},
	LimitNewOrdersPerAccount:                {Count: 1500, Period: 3 * time.Hour},
	LimitCertificatesPerRegisteredDomain:    {Count: 1000, Period: 7 * 24 * time.Hour},
	LimitFailedValidationsPerAccountAndName: {Count: 50, Period: time.Hour},
	LimitFinalizePerOrder:                   {Count: 20, Period: time.Hour},
}

// DefaultRateLimits returns the built-in limits by name.
func DefaultRateLimits() map[string]storage.RateLimit { return maps.Clone(defaultRateLimits) }

// RateLimits configures the gateway's rate limits. Its zero value enforces
// DefaultRateLimits. Counters live in the store (Redis when configured), so
// all instances share them.
type RateLimits struct {
	// Disabled turns every limit off.
	Disabled bool
	// Limits replaces built-in limits by name; an entry with a Count of zero
	// turns that limit off. Burst zero means Count.
	Limits map[string]storage.RateLimit
	// Overrides replaces a limit for one subject: Overrides[name][id] where
	// id is the account id, or for newAccountsPerIP the client address as
	// the limit sees it ("192.0.2.7", "2001:db8:1:2::/64"). For
	// newOrdersPerAccount, "eab:<kid>" covers every account of that
	// external account; an account's own override wins. A Count of zero
	// exempts that subject.
	Overrides map[string]map[string]storage.RateLimit
	// TrustForwardedFor takes the client address for newAccountsPerIP from
	// the last X-Forwarded-For entry (the one the proxy in front added)
	// instead of the connection's peer. Set it only behind a proxy that
	// always sets that header, or clients can pick their own address.
	TrustForwardedFor bool
}

// Validate reports unknown limit names and limits that cannot be enforced.
func (rl RateLimits) Validate() error {
	check := func(where string, l storage.RateLimit) error {
		if l.Count == 0 {
			return nil
		}
		if err := l.Validate(); err != nil {
			return fmt.Errorf("rate limit %s: %w", where, err)
		}
		return nil
	}
	known := func(name string) error {
		if _, ok := defaultRateLimits[name]; !ok {
			return fmt.Errorf("unknown rate limit %q; known: %s", name, strings.Join(slices.Sorted(maps.Keys(defaultRateLimits)), ", "))
		}
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(rl.Limits)) {
		if err := known(name); err != nil {
			return err
		}
		if err := check(name, rl.Limits[name]); err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(rl.Overrides)) {
		if err := known(name); err != nil {
			return err
		}
		for _, id := range slices.Sorted(maps.Keys(rl.Overrides[name])) {
			if err := check(name+" override for "+id, rl.Overrides[name][id]); err != nil {
				return err
			}
		}
	}
	return nil
}

// limit returns the limit name applies to the first of subjects that has an
// override (an account id before its "eab:<kid>"), and false when it is off.
func (rl *RateLimits) limit(name string, subjects ...string) (storage.RateLimit, bool) {
	if rl.Disabled {
		return storage.RateLimit{}, false
	}
	var l storage.RateLimit
	ok := false
	for _, subject := range subjects {
		if l, ok = rl.Overrides[name][subject]; ok {
			break
		}
	}
	if !ok {
		l, ok = rl.Limits[name]
	}
	if !ok {
		l = defaultRateLimits[name]
	}
	return l, l.Count > 0
}

// limitCheck is one limit applied to one subject.
type limitCheck struct {
	name  string
	key   string // the store's key: name and subject
	limit storage.RateLimit
	what  string // "too many new orders for this account"
}

// check looks up the limit name for subject (overrides by overrideID) and
// returns the check to make, or false when the limit is off.
func (s *Server) limitCheck(name, subject, what string, overrideIDs ...string) (limitCheck, bool) {
	l, on := s.cfg.RateLimits.limit(name, overrideIDs...)
	return limitCheck{name: name, key: name + ":" + subject, limit: l, what: what}, on
}

// spend asks the store for cost events of c (0: only check) and turns a
// refusal into a rateLimited problem and a store failure into a 503. A
// request with more than one limit uses a limitBatch instead.
func (s *Server) spend(ctx context.Context, c limitCheck, cost int) *Problem {
	d, err := s.store.SpendRateLimit(ctx, c.key, c.limit, cost)
	if err != nil {
		return storeProblem("checking rate limit "+c.name, err)
	}
	if d.Allowed {
		return nil
	}
	return rateLimited(c, d.RetryAfter, time.Now())
}

// limitBatch collects the limits one request checks and spends, so that
// they cost one store call (one round trip) between them rather than one
// each, and spend all or nothing.
type limitBatch struct {
	checks []limitCheck
	spends []storage.RateSpend
}

// add puts cost events of c (0: only check) in the batch; exempt ones are
// not spent for a renewal (see spendUnlessRenewal).
func (b *limitBatch) add(c limitCheck, cost int, exempt bool) {
	b.checks = append(b.checks, c)
	b.spends = append(b.spends, storage.RateSpend{Key: c.key, Limit: c.limit, Cost: cost, RenewalExempt: exempt})
}

// spendBatch spends the batch, all or nothing. A refusal becomes the
// rateLimited problem of the refused limit with the longest wait (so its
// Retry-After is when the whole request may pass), a store failure a 503.
func (s *Server) spendBatch(ctx context.Context, b *limitBatch) *Problem {
	switch len(b.spends) {
	case 0:
		return nil
	case 1:
		return s.spend(ctx, b.checks[0], b.spends[0].Cost)
	}
	ds, err := s.store.SpendRateLimits(ctx, b.spends)
	if err != nil {
		return storeProblem("checking rate limits "+b.names(), err)
	}
	return b.problem(ds)
}

// spendUnlessRenewal is spendBatch for the account's request for ids, with
// the renewal lookup in the same round trip: for a renewal, the exempt
// items are not spent. It reports whether the request is a renewal.
func (s *Server) spendUnlessRenewal(ctx context.Context, accountID string, ids []storage.Identifier, b *limitBatch) (bool, *Problem) {
	renewal, ds, err := s.store.SpendRateLimitsUnlessRenewal(ctx, accountID, identifierValues(ids), b.spends)
	if err != nil {
		return false, storeProblem("checking rate limits "+b.names(), err)
	}
	return renewal, b.problem(ds)
}

// problem is the rateLimited problem of the batch's decisions, nil if it
// was allowed.
func (b *limitBatch) problem(ds []storage.RateDecision) *Problem {
	if i := storage.RateBatchRefused(b.spends, ds); i >= 0 {
		return rateLimited(b.checks[i], ds[i].RetryAfter, time.Now())
	}
	return nil
}

// names lists the batch's distinct limit names, for messages.
func (b *limitBatch) names() string {
	var names []string
	for _, c := range b.checks {
		if !slices.Contains(names, c.name) {
			names = append(names, c.name)
		}
	}
	return strings.Join(names, ", ")
}

// rateLimited is a 429 naming the limit, its value and when to retry, with
// Retry-After in whole seconds, rounded up.
func rateLimited(c limitCheck, retry time.Duration, now time.Time) *Problem {
	secs := (max(retry, 0) + time.Second - 1) / time.Second
	retry = max(secs, 1) * time.Second
	value := fmt.Sprintf("%d per %v", c.limit.Count, c.limit.Period)
	if b := c.limit.MaxBurst(); b != c.limit.Count {
		value += fmt.Sprintf(", burst %d", b)
	}
	p := newProblem("rateLimited", http.StatusTooManyRequests, "%s: limit %s (%s); retry after %s",
		c.what, value, c.name, now.Add(retry).UTC().Format(time.RFC3339))
	p.retryAfter = retry
	return p
}

// limitNewAccount spends one of the client address's new accounts.
func (s *Server) limitNewAccount(r *http.Request) *Problem {
	addr := s.clientAddr(r)
	c, on := s.limitCheck(LimitNewAccountsPerIP, addr, "too many new accounts from "+addr, addr)
	if !on {
		return nil
	}
	return s.spend(r.Context(), c, 1)
}

// clientAddr is the address newAccountsPerIP counts: an IPv4 address, or
// the /64 of an IPv6 address (one host often holds a whole /64).
func (s *Server) clientAddr(r *http.Request) string {
	if s.cfg.RateLimits.TrustForwardedFor {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			last = strings.TrimSpace(last[strings.LastIndexByte(last, ',')+1:])
			if a, ok := parseAddr(last); ok {
				return addrSubject(a)
			}
		}
	}
	if a, ok := parseAddr(r.RemoteAddr); ok {
		return addrSubject(a)
	}
	return r.RemoteAddr
}

// parseAddr reads "ip", "ip:port" or "[ipv6]:port".
func parseAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func addrSubject(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// limitNewOrder checks the account's new orders and the registered domains'
// certificates before a new order is stored; renewals are exempt from both.
// The domain limits are only checked here (the issuance job spends them).
// One batch does it all, with the renewal lookup, so a refused order spends
// nothing.
func (s *Server) limitNewOrder(ctx context.Context, acct *storage.Account, ids []storage.Identifier) *Problem {
	orders, ordersOn := s.limitCheck(LimitNewOrdersPerAccount, acct.ID, "too many new orders for this account", acct.ID, eabSubject(acct))
	domains, domainsOn := s.domainChecks(acct.ID, ids)
	if !ordersOn && !domainsOn {
		return nil
	}
	var b limitBatch
	for _, c := range domains {
		b.add(c, 0, true)
	}
	if ordersOn {
		b.add(orders, 1, true)
	}
	_, p := s.spendUnlessRenewal(ctx, acct.ID, ids, &b)
	return p
}

// limitFinalize runs before a ready order is finalized: in one batch it
// checks the certificate limits of the order's registered domains (unless
// it is a renewal) and spends one of the order's finalize attempts, which a
// refused domain leaves unspent. It returns the domain checks to spend with
// issuedSpends/spendIssued once the certificate exists.
func (s *Server) limitFinalize(ctx context.Context, o *storage.Order) ([]limitCheck, *Problem) {
	var b limitBatch
	if c, on := s.limitCheck(LimitFinalizePerOrder, o.ID, "too many finalize requests for this order", o.AccountID); on {
		b.add(c, 1, false)
	}
	domains, domainsOn := s.domainChecks(o.AccountID, o.Identifiers)
	if !domainsOn {
		return nil, s.spendBatch(ctx, &b)
	}
	for _, c := range domains {
		b.add(c, 0, true)
	}
	renewal, p := s.spendUnlessRenewal(ctx, o.AccountID, o.Identifiers, &b)
	if p != nil {
		return nil, p
	}
	if renewal {
		return nil, nil
	}
	return domains, nil
}

// spendIssued spends the certificate limits limitFinalize checked (and the
// profile's quotas) once the brand accepted the order to issue later, in one
// batch; a certificate issued at once has them spent with its FinishJob
// (issuedSpends). The certificate exists either way, so each limit
// is spent if it fits whatever the others do (BestEffort), and a failure or
// refusal (another order used up the limit meanwhile) is only logged.
func (s *Server) spendIssued(ctx context.Context, o *storage.Order, domains []limitCheck) {
	if o.Status != storage.StatusValid && o.Status != storage.StatusProcessing || len(domains) == 0 {
		return
	}
	ds, err := s.store.SpendRateLimits(ctx, issuedSpends(domains))
	if err != nil {
		s.log.Warn("rate limits not spent for an issued certificate", "limits", (&limitBatch{checks: domains}).names(), "order", o.ID, "err", err)
		return
	}
	for i, d := range ds {
		if !d.Allowed {
			c := domains[i]
			s.log.Warn("rate limit not spent for an issued certificate", "limit", c.name, "key", c.key, "order", o.ID, "reason", "used up meanwhile")
		}
	}
}

// issuedSpends are the store's spends of the limits an issued (or
// brand-accepted) certificate counts against: one event each, BestEffort,
// since the certificate exists whatever the limits say now.
func issuedSpends(domains []limitCheck) []storage.RateSpend {
	if len(domains) == 0 {
		return nil
	}
	spends := make([]storage.RateSpend, len(domains))
	for i, c := range domains {
		spends[i] = storage.RateSpend{Key: c.key, Limit: c.limit, Cost: 1, BestEffort: true}
	}
	return spends
}

// domainChecks lists the certificatesPerRegisteredDomain check of each
// distinct registered domain of ids, or false when the limit is off.
func (s *Server) domainChecks(accountID string, ids []storage.Identifier) ([]limitCheck, bool) {
	var out []limitCheck
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		d := registeredDomain(id)
		if seen[d] {
			continue
		}
		seen[d] = true
		c, on := s.limitCheck(LimitCertificatesPerRegisteredDomain, d, "too many certificates for "+d, accountID)
		if !on {
			// Overrides are per account, so the limit is on for every
			// domain or for none.
			return nil, false
		}
		out = append(out, c)
	}
	return out, true
}

// registeredDomain is what certificatesPerRegisteredDomain counts: a DNS
// name's registered domain by the public suffix list compiled into
// golang.org/x/net (so "www.example.co.uk" counts for "example.co.uk", and
// private names under an unlisted TLD, like "a.b.corp", count for their last
// two labels, "b.corp"); a name that is itself a public suffix counts as
// itself; an IP address counts for itself.
func registeredDomain(id storage.Identifier) string {
	if id.Type == "ip" {
		return id.Value
	}
	name := strings.TrimPrefix(id.Value, "*.")
	if d, err := publicsuffix.EffectiveTLDPlusOne(name); err == nil {
		return d
	}
	return name
}

// isRenewal reports whether the account holds a valid, unexpired
// certificate for exactly these identifiers: one index lookup. Requests
// with rate limits to spend find out with spendUnlessRenewal instead.
func (s *Server) isRenewal(ctx context.Context, accountID string, ids []storage.Identifier) (bool, error) {
	c, err := s.store.LatestCertificate(ctx, accountID, identifierValues(ids))
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return storage.Renews(c, time.Now()), nil
}

// identifierValues are the names of ids, as certificates carry them.
func identifierValues(ids []storage.Identifier) []string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = id.Value
	}
	return names
}

// limitValidation checks, before a validation starts, that the account has
// failed validations of this identifier to spare.
func (s *Server) limitValidation(ctx context.Context, a *storage.Authorization) *Problem {
	c, on := s.failedValidationCheck(a)
	if !on {
		return nil
	}
	return s.spend(ctx, c, 0)
}

// spendFailedValidation records a failed validation against its limit; the
// failure is already stored, so problems are only logged.
func (s *Server) spendFailedValidation(ctx context.Context, a *storage.Authorization) {
	c, on := s.failedValidationCheck(a)
	if !on {
		return
	}
	if _, err := s.store.SpendRateLimit(ctx, c.key, c.limit, 1); err != nil {
		s.log.Warn("failed validation not counted", "limit", c.name, "authz", a.ID, "err", err)
	}
}

func (s *Server) failedValidationCheck(a *storage.Authorization) (limitCheck, bool) {
	name := a.Identifier.Value
	if a.Wildcard {
		name = "*." + name
	}
	return s.limitCheck(LimitFailedValidationsPerAccountAndName, a.AccountID+":"+a.Identifier.Value,
		"too many failed validations of "+name+" for this account", a.AccountID)
}

// eabSubject is the override subject of the account's external account
// ("eab:<kid>"), so that one override covers every ACME account of a tenant.
func eabSubject(acct *storage.Account) string {
	if acct.EABKeyID == "" {
		return ""
	}
	return "eab:" + acct.EABKeyID
}
