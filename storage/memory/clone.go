package memory

import "github.com/acmegw/acmegw/storage"

// The store hands out and keeps private deep copies: callers routinely mutate
// the record they got back (to build the next version for an Update), and
// such edits must never leak into the stored state or into other callers.

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}

func cloneIdentifier(id *storage.Identifier) *storage.Identifier {
	if id == nil {
		return nil
	}
	c := *id
	return &c
}

func cloneProblem(p *storage.Problem) *storage.Problem {
	if p == nil {
		return nil
	}
	c := *p
	c.Identifier = cloneIdentifier(p.Identifier)
	return &c
}

func cloneAccount(a *storage.Account) *storage.Account {
	c := *a
	c.KeyJWK = cloneBytes(a.KeyJWK)
	c.Contact = cloneStrings(a.Contact)
	return &c
}

func cloneOrder(o *storage.Order) *storage.Order {
	c := *o
	if o.Identifiers != nil {
		c.Identifiers = append([]storage.Identifier{}, o.Identifiers...)
	}
	c.AuthzIDs = cloneStrings(o.AuthzIDs)
	c.Error = cloneProblem(o.Error)
	if o.Review != nil {
		r := *o.Review
		c.Review = &r
	}
	return &c
}

func cloneAuthorization(a *storage.Authorization) *storage.Authorization {
	c := *a
	c.CAAIdentities = cloneStrings(a.CAAIdentities)
	if a.Challenges != nil {
		c.Challenges = make([]storage.Challenge, len(a.Challenges))
		for i, ch := range a.Challenges {
			ch.Error = cloneProblem(ch.Error)
			c.Challenges[i] = ch
		}
	}
	return &c
}

func cloneCertificate(cert *storage.Certificate) *storage.Certificate {
	c := *cert
	c.ChainPEM = cloneBytes(cert.ChainPEM)
	if cert.AlternateChains != nil {
		c.AlternateChains = make([][]byte, len(cert.AlternateChains))
		for i, chain := range cert.AlternateChains {
			c.AlternateChains[i] = cloneBytes(chain)
		}
	}
	c.Names = cloneStrings(cert.Names)
	return &c
}
