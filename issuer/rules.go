package issuer

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// Rules are a profile's product rules (DESIGN.md, "Rules the gateway
// enforces"): what the product sold under the profile accepts, on top of
// what its brand's Describe says. The zero value adds nothing.
type Rules struct {
	// Wildcard and IP, when set to false, forbid wildcard names and IP
	// addresses even if the brand issues them; nil (or true) leaves it to
	// the brand's Describe.
	Wildcard *bool
	IP       *bool
	// MaxNames, when positive, caps the names of one order below the
	// brand's own maximum.
	MaxNames int
	// KeyTypes lists the CSR keys accepted ("rsa2048", "rsa3072",
	// "rsa4096", "rsa8192", "ec256", "ec384"); empty accepts the gateway's
	// defaults (RSA 2048 to 8192 bits, ECDSA P-256 and P-384).
	KeyTypes []string
	// MaxValidity, when positive, caps the lifetime an order may ask for
	// below the brand's Describe().MaxValidity.
	MaxValidity time.Duration
	// BlockedSuffixes are domain suffixes the product does not issue for
	// (".edu", ".gov", ".bank"): a name matches when it ends with the
	// suffix or is the suffix without its leading dot.
	BlockedSuffixes []string
	// BlockedWords refuse names that contain them.
	BlockedWords []string
	// ReviewWords send orders for names that contain them to manual review
	// ("acmegw review approve|reject") before the brand is asked.
	ReviewWords []string
	// Quota bounds the certificates of a free product.
	Quota Quota
}

// Quota bounds how many certificates a profile issues per Period: per
// account and per registered domain. Zero counts are no bound.
type Quota struct {
	PerAccount          int
	PerRegisteredDomain int
	Period              time.Duration
}

// On reports whether the quota bounds anything.
func (q Quota) On() bool { return q.PerAccount > 0 || q.PerRegisteredDomain > 0 }

// KeyTypes the rules know, in the order they are listed in messages.
var knownKeyTypes = []string{"rsa2048", "rsa3072", "rsa4096", "rsa8192", "ec256", "ec384"}

// Violation is a rule an order breaks: which rule (its configuration key)
// and why, in words for the client.
type Violation struct {
	Rule   string // "wildcard", "ip", "max_names", "blocked_suffixes", "blocked_words", "max_validity", "key_types"
	Name   string // the identifier at fault, if one is
	Detail string
}

func (v *Violation) Error() string { return v.Detail }

// Validate reports rules that cannot be enforced.
func (r Rules) Validate() error {
	if r.MaxNames < 0 {
		return fmt.Errorf("rules: max_names %d is negative", r.MaxNames)
	}
	if r.MaxValidity < 0 {
		return fmt.Errorf("rules: max_validity %v is negative", r.MaxValidity)
	}
	for _, k := range r.KeyTypes {
		if !slices.Contains(knownKeyTypes, k) {
			return fmt.Errorf("rules: unknown key type %q; known: %s", k, strings.Join(knownKeyTypes, ", "))
		}
	}
	for what, list := range map[string][]string{"blocked_suffixes": r.BlockedSuffixes, "blocked_words": r.BlockedWords, "review_words": r.ReviewWords} {
		for _, s := range list {
			if strings.Trim(strings.TrimSpace(s), ".") == "" {
				return fmt.Errorf("rules: %s has an empty entry", what)
			}
		}
	}
	q := r.Quota
	if q.PerAccount < 0 || q.PerRegisteredDomain < 0 {
		return fmt.Errorf("rules: quota counts must not be negative")
	}
	if q.On() && q.Period <= 0 {
		return fmt.Errorf("rules: quota needs a positive period (e.g. 365d)")
	}
	return nil
}

// Product is what the profile offers: the brand's product p narrowed by the rules.
func (r Rules) Product(p Product) Product {
	if r.Wildcard != nil && !*r.Wildcard {
		p.Wildcard = false
	}
	if r.IP != nil && !*r.IP {
		p.IP = false
	}
	p.MaxNames = minPositive(p.MaxNames, r.MaxNames)
	p.MaxValidity = minPositive(p.MaxValidity, r.MaxValidity)
	return p
}

func minPositive[T int | time.Duration](a, b T) T {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}

// CheckIdentifiers checks an order's identifiers against the profile named
// profile, whose brand describes p: wildcards, IP addresses, the number of
// names, blocked suffixes and blocked words. Names are compared in lower
// case; a wildcard is matched by its base name.
func (r Rules) CheckIdentifiers(profile string, p Product, ids []storage.Identifier) *Violation {
	p = r.Product(p)
	for _, id := range ids {
		if id.Type == "ip" {
			if !p.IP {
				return &Violation{Rule: "ip", Name: id.Value, Detail: fmt.Sprintf("profile %q does not issue certificates for IP addresses (%s)", profile, id.Value)}
			}
			continue
		}
		if strings.HasPrefix(id.Value, "*.") && !p.Wildcard {
			return &Violation{Rule: "wildcard", Name: id.Value, Detail: fmt.Sprintf("profile %q does not issue wildcard certificates (%s)", profile, id.Value)}
		}
	}
	if p.MaxNames > 0 && len(ids) > p.MaxNames {
		return &Violation{Rule: "max_names", Detail: fmt.Sprintf("profile %q allows at most %d names, this order has %d", profile, p.MaxNames, len(ids))}
	}
	for _, id := range ids {
		if id.Type == "ip" {
			continue
		}
		name := strings.ToLower(strings.TrimPrefix(id.Value, "*."))
		if s, ok := matchSuffix(name, r.BlockedSuffixes); ok {
			return &Violation{Rule: "blocked_suffixes", Name: id.Value, Detail: fmt.Sprintf("profile %q does not issue for %s names (%s)", profile, s, id.Value)}
		}
		if w, ok := matchWord(name, r.BlockedWords); ok {
			return &Violation{Rule: "blocked_words", Name: id.Value, Detail: fmt.Sprintf("profile %q does not issue for names containing %q (%s)", profile, w, id.Value)}
		}
	}
	return nil
}

// ReviewWord returns the first review word an identifier contains and that
// identifier, or false when the order needs no manual review.
func (r Rules) ReviewWord(ids []storage.Identifier) (word, name string, ok bool) {
	if len(r.ReviewWords) == 0 {
		return "", "", false
	}
	for _, id := range ids {
		if id.Type == "ip" {
			continue
		}
		if w, ok := matchWord(strings.ToLower(strings.TrimPrefix(id.Value, "*.")), r.ReviewWords); ok {
			return w, id.Value, true
		}
	}
	return "", "", false
}

// CheckValidity checks a requested lifetime against the profile's maximum
// (the rules' MaxValidity capped by the brand's p.MaxValidity).
func (r Rules) CheckValidity(profile string, p Product, requested time.Duration) *Violation {
	max := r.Product(p).MaxValidity
	if max <= 0 || requested <= max {
		return nil
	}
	return &Violation{Rule: "max_validity", Detail: fmt.Sprintf("the requested validity of %s exceeds profile %q's maximum of %s", formatDays(requested), profile, formatDays(max))}
}

// CheckKey checks a CSR's public key against KeyTypes; empty KeyTypes
// accept any key (the gateway's own checks still apply).
func (r Rules) CheckKey(profile string, pub any) *Violation {
	if len(r.KeyTypes) == 0 {
		return nil
	}
	kt := KeyType(pub)
	if slices.Contains(r.KeyTypes, kt) {
		return nil
	}
	return &Violation{Rule: "key_types", Detail: fmt.Sprintf("profile %q accepts only %s keys; this CSR's key is %s", profile, strings.Join(r.KeyTypes, ", "), kt)}
}

// KeyType names a public key as KeyTypes do: "rsa2048", "ec256", ...
func KeyType(pub any) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return fmt.Sprintf("ec%d", k.Curve.Params().BitSize)
	case ed25519.PublicKey:
		return "ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// matchSuffix reports the first of suffixes that name ends with (".edu"
// matches "a.edu" and "edu", not "aedu"), as written with a leading dot.
func matchSuffix(name string, suffixes []string) (string, bool) {
	for _, s := range suffixes {
		bare := strings.Trim(strings.ToLower(strings.TrimSpace(s)), ".")
		if bare == "" {
			continue
		}
		if name == bare || strings.HasSuffix(name, "."+bare) {
			return "." + bare, true
		}
	}
	return "", false
}

// matchWord reports the first of words that name contains.
func matchWord(name string, words []string) (string, bool) {
	for _, w := range words {
		lw := strings.ToLower(strings.TrimSpace(w))
		if lw != "" && strings.Contains(name, lw) {
			return w, true
		}
	}
	return "", false
}

// formatDays writes whole days as "200d" and anything else as Go does.
func formatDays(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// The CA/Browser Forum ballot SC-081 steps for the maximum lifetime of a
// publicly trusted TLS certificate.
var (
	sc081Step1 = time.Date(2026, time.March, 15, 0, 0, 0, 0, time.UTC)
	sc081Step2 = time.Date(2027, time.March, 15, 0, 0, 0, 0, time.UTC)
	sc081Step3 = time.Date(2029, time.March, 15, 0, 0, 0, 0, time.UTC)
)

// PublicMaxValidity is the longest lifetime a publicly trusted TLS
// certificate issued at t may have (CA/Browser Forum ballot SC-081): 398
// days before 2026-03-15, 200 days from then, 100 days from 2027-03-15 and
// 47 days from 2029-03-15. Public brands report it (or less) as their
// Describe().MaxValidity.
func PublicMaxValidity(t time.Time) time.Duration {
	const day = 24 * time.Hour
	switch {
	case t.Before(sc081Step1):
		return 398 * day
	case t.Before(sc081Step2):
		return 200 * day
	case t.Before(sc081Step3):
		return 100 * day
	}
	return 47 * day
}
