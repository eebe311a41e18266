package validation

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// DNS01TXTValue returns the TXT record value that proves keyAuthorization
// for dns-01 (RFC 8555 §8.4): base64url(SHA-256(keyAuthorization)), unpadded.
func DNS01TXTValue(keyAuthorization string) string {
	sum := sha256.Sum256([]byte(keyAuthorization))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// DNS01Name returns the name whose TXT records dns-01 checks for identifier;
// a wildcard is validated at its base name (RFC 8555 §8.4).
func DNS01Name(identifier string) string {
	return "_acme-challenge." + strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(identifier), "*."), ".")
}

func (v *Validator) validateDNS01(ctx context.Context, ch Challenge) error {
	if ch.IdentifierType != "dns" {
		return &Error{Type: "malformed", Detail: fmt.Sprintf("dns-01 cannot validate a %q identifier", ch.IdentifierType)}
	}
	name := DNS01Name(ch.Identifier)
	txts, err := v.resolver.LookupTXT(ctx, name)
	if err != nil {
		var de *DNSError
		if errors.As(err, &de) && de.NotFound() {
			return &Error{Type: "unauthorized", Detail: fmt.Sprintf("No TXT record found at %s", name)}
		}
		return &Error{Type: "dns", Detail: "DNS problem: " + err.Error()}
	}
	want := []byte(DNS01TXTValue(ch.KeyAuthorization))
	for _, t := range txts {
		// Constant time because the expected value is derived from the
		// account key; no need to leak how much of a guess was right.
		if subtle.ConstantTimeCompare([]byte(t), want) == 1 {
			return nil
		}
	}
	detail := fmt.Sprintf("Incorrect TXT record %q found at %s", truncate(txts[0], 64), name)
	if len(txts) > 1 {
		detail += fmt.Sprintf(" (and %d more)", len(txts)-1)
	}
	return &Error{Type: "unauthorized", Detail: detail}
}

// truncate shortens attacker-controlled text before it goes into a problem
// document, keeping error responses small.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
