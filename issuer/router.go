package issuer

import (
	"fmt"
	"sort"
	"time"
)

// Profile is an orderable product: what newOrder's "profile" names and the
// directory lists in meta.profiles.
type Profile struct {
	Name        string
	Description string
	// Brand is the name of the Issuer that signs this profile's orders.
	Brand string
	// Validity is the certificate lifetime when the order does not ask for
	// one; zero is the brand's default, or the rules' MaxValidity if set.
	Validity time.Duration
	// Deadline is how long a finalized order waits for its brand to issue
	// (days for OV/EV reviews) before it becomes invalid; zero means
	// DefaultDeadline.
	Deadline time.Duration
	// Rules are the product rules of the profile (rules.go), enforced at
	// newOrder, finalize and issuance on top of the brand's Describe.
	Rules Rules
}

// DefaultDeadline is the Deadline of a profile that sets none.
const DefaultDeadline = 24 * time.Hour

// Router maps profiles to the brands that sign them. It is read-only after
// NewRouter, so it needs no locking.
type Router struct {
	profiles       map[string]Profile
	brands         map[string]Issuer
	defaultProfile string
}

// NewRouter checks that every profile names a known brand and has rules
// that can be enforced, and that the default profile exists.
func NewRouter(defaultProfile string, profiles []Profile, brands map[string]Issuer) (*Router, error) {
	r := &Router{profiles: map[string]Profile{}, brands: brands, defaultProfile: defaultProfile}
	for _, p := range profiles {
		if _, ok := brands[p.Brand]; !ok {
			return nil, fmt.Errorf("profile %q: unknown brand %q", p.Name, p.Brand)
		}
		if _, dup := r.profiles[p.Name]; dup {
			return nil, fmt.Errorf("profile %q defined twice", p.Name)
		}
		if err := p.Rules.Validate(); err != nil {
			return nil, fmt.Errorf("profile %q: %w", p.Name, err)
		}
		if max := p.Rules.MaxValidity; max > 0 && p.Validity > max {
			return nil, fmt.Errorf("profile %q: validity %s exceeds its rules' max_validity %s", p.Name, formatDays(p.Validity), formatDays(max))
		}
		if p.Validity == 0 {
			// The brand's default lifetime might exceed the rules' maximum.
			p.Validity = p.Rules.MaxValidity
		}
		r.profiles[p.Name] = p
	}
	if _, ok := r.profiles[defaultProfile]; !ok {
		return nil, fmt.Errorf("default profile %q is not defined", defaultProfile)
	}
	return r, nil
}

// Profile returns the named profile; the empty name is the default profile.
func (r *Router) Profile(name string) (Profile, bool) {
	if name == "" {
		name = r.defaultProfile
	}
	p, ok := r.profiles[name]
	return p, ok
}

// Issuer returns the brand with the given name.
func (r *Router) Issuer(brand string) (Issuer, bool) {
	is, ok := r.brands[brand]
	return is, ok
}

// Descriptions maps each profile name to its description, for the directory.
func (r *Router) Descriptions() map[string]string {
	out := make(map[string]string, len(r.profiles))
	for name, p := range r.profiles {
		out[name] = p.Description
	}
	return out
}

// Names lists the profile names, sorted.
func (r *Router) Names() []string {
	names := make([]string, 0, len(r.profiles))
	for name := range r.profiles {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
