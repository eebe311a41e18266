package acme

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmegw/acmegw/storage"
)

// eabAlgs are the MAC algorithms RFC 8555 §7.3.4 allows for the binding.
var eabAlgs = []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512}

// verifyEAB checks newAccount's externalAccountBinding: a JWS over the new
// account's key, MACed with the EAB key named by its "kid" and addressed to
// the newAccount URL. It returns the key the account will be bound to.
func (s *Server) verifyEAB(ctx context.Context, raw json.RawMessage, url string, accountKey *jose.JSONWebKey) (*storage.EABKey, *Problem) {
	var flat struct {
		Protected string `json:"protected"`
	}
	if err := json.Unmarshal(raw, &flat); err != nil || flat.Protected == "" {
		return nil, malformed("externalAccountBinding is not a JWS in flattened JSON form")
	}
	hdrJSON, err := base64.RawURLEncoding.DecodeString(flat.Protected)
	if err != nil {
		return nil, malformed("externalAccountBinding protected header is not base64url")
	}
	var hdr struct {
		Alg   string `json:"alg"`
		KID   string `json:"kid"`
		URL   string `json:"url"`
		Nonce string `json:"nonce"`
	}
	if err := json.Unmarshal(hdrJSON, &hdr); err != nil {
		return nil, malformed("externalAccountBinding protected header is not JSON")
	}
	switch {
	case hdr.Alg != string(jose.HS256) && hdr.Alg != string(jose.HS384) && hdr.Alg != string(jose.HS512):
		return nil, badSignatureAlgorithm("externalAccountBinding must be MACed with HS256, HS384 or HS512, not %q", hdr.Alg)
	case hdr.KID == "":
		return nil, malformed("externalAccountBinding has no \"kid\"")
	case hdr.Nonce != "":
		return nil, malformed("externalAccountBinding must not carry a \"nonce\" (RFC 8555 §7.3.4)")
	case hdr.URL != url:
		return nil, malformed("externalAccountBinding \"url\" %q must be the newAccount URL %q", hdr.URL, url)
	}
	key, err := s.store.GetEABKey(ctx, hdr.KID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, unauthorized("external account key id %q is not known here", hdr.KID)
	}
	if err != nil {
		return nil, storeProblem("loading external account key", err)
	}
	if key.Status != storage.StatusValid {
		return nil, unauthorized("external account key id %q is %s", hdr.KID, key.Status)
	}
	jws, err := jose.ParseSigned(string(raw), eabAlgs)
	if err != nil {
		return nil, malformed("parsing externalAccountBinding: %v", err)
	}
	payload, err := jws.Verify(key.HMACKey)
	if err != nil {
		return nil, unauthorized("externalAccountBinding MAC does not verify with the key of %q; check the MAC key (base64url, as issued)", hdr.KID)
	}
	var bound jose.JSONWebKey
	if err := bound.UnmarshalJSON(payload); err != nil {
		return nil, malformed("externalAccountBinding payload is not a JWK: %v", err)
	}
	boundTP, err1 := thumbprint(&bound)
	acctTP, err2 := thumbprint(accountKey)
	if err1 != nil || err2 != nil || boundTP != acctTP {
		return nil, unauthorized("externalAccountBinding binds another key than the account's")
	}
	return key, nil
}

// accountEAB is the EAB key an account is bound to, or nil for an unbound
// account. A revoked key cuts off every account bound to it.
func (s *Server) accountEAB(ctx context.Context, acct *storage.Account) (*storage.EABKey, *Problem) {
	if acct.EABKeyID == "" {
		if s.cfg.ExternalAccountRequired {
			return nil, unauthorized("this server requires External Account Binding and this account has none; register a new account with an EAB key")
		}
		return nil, nil
	}
	key, err := s.store.GetEABKey(ctx, acct.EABKeyID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, unauthorized("the external account %q of this account no longer exists", acct.EABKeyID)
	}
	if err != nil {
		return nil, storeProblem("loading external account key", err)
	}
	if key.Status != storage.StatusValid {
		return nil, unauthorized("the external account %q of this account is %s", key.KID, key.Status)
	}
	return key, nil
}

// checkEntitlement applies an EAB key's profile and domain lists to an order.
func checkEntitlement(key *storage.EABKey, profile string, ids []storage.Identifier) *Problem {
	if key == nil {
		return nil
	}
	if len(key.Profiles) > 0 && !contains(key.Profiles, profile) {
		return unauthorized("external account %q may not order profile %q; it may order: %s", key.KID, profile, strings.Join(key.Profiles, ", "))
	}
	if len(key.Domains) == 0 {
		return nil
	}
	for _, id := range ids {
		if !identifierAllowed(key.Domains, id) {
			p := rejectedIdentifier("external account %q may not order %s; it may order: %s", key.KID, id.Value, strings.Join(key.Domains, ", "))
			p.Identifier = &storage.Identifier{Type: id.Type, Value: id.Value}
			return p
		}
	}
	return nil
}

// identifierAllowed matches an identifier against EAB domain patterns:
// "a.example" exactly, "*.a.example" anything below a.example (wildcards
// included), an IP address exactly, or a CIDR prefix.
func identifierAllowed(patterns []string, id storage.Identifier) bool {
	for _, p := range patterns {
		if id.Type == "ip" {
			addr, err := netip.ParseAddr(id.Value)
			if err != nil {
				return false
			}
			if pfx, err := netip.ParsePrefix(p); err == nil && pfx.Contains(addr) {
				return true
			}
			if a, err := netip.ParseAddr(p); err == nil && a == addr {
				return true
			}
			continue
		}
		if p == id.Value {
			return true
		}
		if suffix, ok := strings.CutPrefix(p, "*."); ok && strings.HasSuffix(id.Value, "."+suffix) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
