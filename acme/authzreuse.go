package acme

import (
	"context"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// minReuseLeft is how long a reused authorization must stay valid: an order
// whose authorization expires before it is finalized would fail.
const minReuseLeft = 24 * time.Hour

// authzReuseKey names an account's latest valid authorization for one
// identifier. Wildcards are kept apart: a wildcard authorization must have
// been proven by dns-01, which a plain one need not.
func authzReuseKey(accountID string, id storage.Identifier, wildcard bool) string {
	w := ""
	if wildcard {
		w = "*"
	}
	return "authz|" + accountID + "|" + id.Type + ":" + w + id.Value
}

// reusableAuthz returns the account's valid authorization for the
// identifier (as sent in newOrder, "*." included), or nil. Reuse spares
// clients a new validation within the validity the CA/Browser Forum allows
// (AuthzValidity never exceeds it); an unreadable index only costs a new
// validation.
func (s *Server) reusableAuthz(ctx context.Context, accountID string, id storage.Identifier) *storage.Authorization {
	base, wildcard := id, false
	if id.Type == "dns" && len(id.Value) > 2 && id.Value[:2] == "*." {
		base.Value, wildcard = id.Value[2:], true
	}
	authzID, err := s.store.GetOrderKey(ctx, authzReuseKey(accountID, base, wildcard))
	if err != nil {
		return nil
	}
	a, err := s.store.GetAuthorization(ctx, authzID)
	if err != nil || a.AccountID != accountID || a.Identifier != base || a.Wildcard != wildcard {
		return nil
	}
	if s.authzStatus(a) != storage.StatusValid || time.Until(a.Expires) < minReuseLeft {
		return nil
	}
	return a
}

// rememberAuthz indexes a newly valid authorization for reuse until it expires.
func (s *Server) rememberAuthz(ctx context.Context, a *storage.Authorization) {
	ttl := time.Until(a.Expires)
	if ttl <= 0 {
		return
	}
	if err := s.store.SetOrderKey(ctx, authzReuseKey(a.AccountID, a.Identifier, a.Wildcard), a.ID, ttl); err != nil {
		s.log.Warn("indexing authorization for reuse", "authz", a.ID, "err", err)
	}
}
