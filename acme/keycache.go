package acme

import (
	"github.com/go-jose/go-jose/v4"

	"github.com/acmegw/acmegw/internal/bytecache"
	"github.com/acmegw/acmegw/storage"
)

// keyCache maps an account key as stored (Account.KeyJWK) to the parsed key,
// so that a "kid" request does not decode the JWK again. Only parsing is
// cached: the account record itself is read from the store on every request,
// so a deactivation or key rollover on any instance takes effect at once (a
// new key is new bytes, hence a new entry). A few thousand active accounts
// fit (bytecache's default bound); beyond that the least recently used keys
// are parsed again. Its zero value is ready to use, and it is safe for
// concurrent use.
type keyCache struct {
	parsed bytecache.Cache[*jose.JSONWebKey]
}

// get returns the parsed form of jwk. The key is shared: callers must not
// modify it. Unreadable keys are not cached.
func (c *keyCache) get(jwk []byte) (*jose.JSONWebKey, error) {
	if k, ok := c.parsed.Get(jwk); ok {
		return k, nil
	}
	k := new(jose.JSONWebKey)
	if err := k.UnmarshalJSON(jwk); err != nil {
		return nil, err
	}
	c.parsed.Put(jwk, k)
	return k, nil
}

// accountKey returns the account's parsed public key, from the cache when
// it was parsed before. The key is shared: callers must not modify it.
func (s *Server) accountKey(acct *storage.Account) (*jose.JSONWebKey, error) {
	return s.keys.get(acct.KeyJWK)
}
