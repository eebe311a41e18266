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

// splitWildcard separates a newOrder identifier ("*." included) into the
// authorization's identifier and whether it is a wildcard.
func splitWildcard(id storage.Identifier) (storage.Identifier, bool) {
	if id.Type == "dns" && len(id.Value) > 2 && id.Value[:2] == "*." {
		id.Value = id.Value[2:]
		return id, true
	}
	return id, false
}

// authzReuseKeyFor is authzReuseKey for a newOrder identifier.
func authzReuseKeyFor(accountID string, id storage.Identifier) string {
	base, wildcard := splitWildcard(id)
	return authzReuseKey(accountID, base, wildcard)
}

// reusableAuthz returns the account's valid authorization for the
// identifier (as sent in newOrder, "*." included), or nil. Reuse spares
// clients a new validation within the validity the CA/Browser Forum allows
// (AuthzValidity never exceeds it); an unreadable index only costs a new
// validation.
//
// authzID is what the order index holds under the identifier's
// reuseKeyFor, "" for nothing.
func (s *Server) reusableAuthz(ctx context.Context, accountID string, id storage.Identifier, authzID string) *storage.Authorization {
	if authzID == "" {
		return nil
	}
	base, wildcard := splitWildcard(id)
	a, err := s.store.GetAuthorization(ctx, authzID)
	if err != nil || a.AccountID != accountID || a.Identifier != base || a.Wildcard != wildcard {
		return nil
	}
	if s.authzStatus(a) != storage.StatusValid || time.Until(a.Expires) < minReuseLeft {
		return nil
	}
	return a
}

// recordAuthz stores a validation's outcome on the authorization; one that
// became valid is indexed for reuse until it expires in the same round
// trip. An index write that fails alone only costs a later order a new
// validation, so it is logged, not returned.
func (s *Server) recordAuthz(ctx context.Context, a *storage.Authorization) error {
	ttl := time.Until(a.Expires)
	if a.Status != storage.StatusValid || ttl <= 0 {
		return s.store.UpdateAuthorization(ctx, a)
	}
	err, indexErr := s.store.UpdateAuthorizationIndexed(ctx, a, authzReuseKey(a.AccountID, a.Identifier, a.Wildcard), ttl)
	if err == nil && indexErr != nil {
		s.log.Warn("indexing authorization for reuse", "authz", a.ID, "err", indexErr)
	}
	return err
}
