package storage

import "slices"

// Stores hand out and keep private deep copies: callers routinely modify a
// record they got back (to build the next version for an Update), and such
// edits must never reach the stored state, a cache, or other callers.

// Clone returns a deep copy of a.
func (a *Account) Clone() *Account {
	c := *a
	c.KeyJWK = slices.Clone(a.KeyJWK)
	c.Contact = slices.Clone(a.Contact)
	return &c
}

// Clone returns a deep copy of o.
func (o *Order) Clone() *Order {
	c := *o
	c.Identifiers = slices.Clone(o.Identifiers)
	c.AuthzIDs = slices.Clone(o.AuthzIDs)
	c.Error = o.Error.Clone()
	if o.Review != nil {
		r := *o.Review
		c.Review = &r
	}
	return &c
}

// Clone returns a deep copy of a, its challenges included.
func (a *Authorization) Clone() *Authorization {
	c := *a
	c.CAAIdentities = slices.Clone(a.CAAIdentities)
	if a.Challenges != nil {
		c.Challenges = make([]Challenge, len(a.Challenges))
		for i, ch := range a.Challenges {
			ch.Error = ch.Error.Clone()
			c.Challenges[i] = ch
		}
	}
	return &c
}

// Clone returns a deep copy of cert.
func (cert *Certificate) Clone() *Certificate {
	c := *cert
	c.ChainPEM = slices.Clone(cert.ChainPEM)
	if cert.AlternateChains != nil {
		c.AlternateChains = make([][]byte, len(cert.AlternateChains))
		for i, chain := range cert.AlternateChains {
			c.AlternateChains[i] = slices.Clone(chain)
		}
	}
	c.Names = slices.Clone(cert.Names)
	return &c
}

// Clone returns a deep copy of p; nil for nil.
func (p *Problem) Clone() *Problem {
	if p == nil {
		return nil
	}
	c := *p
	if p.Identifier != nil {
		id := *p.Identifier
		c.Identifier = &id
	}
	return &c
}
