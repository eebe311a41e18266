package validation

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// CAARequest says what CheckCAA should check: whether the brand that will
// sign may issue for one DNS identifier.
type CAARequest struct {
	// Name is the DNS name without "*." (a leading "*." is tolerated and
	// sets Wildcard). IP addresses have no CAA and always pass.
	Name string
	// Wildcard is true when the order asks for "*." + Name, which makes
	// "issuewild" the relevant property when the CAA set has one.
	Wildcard bool
	// IssuerDomains are the CAA identities of the brand that will sign,
	// such as "letsencrypt.org"; a record naming any of them counts. Empty
	// means the brand has no CAA identity configured and CheckCAA does not
	// check at all: a brand without an identity could never satisfy an
	// "issue" record, and the upstream CA behind such a brand does its own
	// CAA check against its own identity.
	IssuerDomains []string
	// AccountURI is the ACME account URL of the requester, compared
	// exactly with an "accounturi" parameter (RFC 8657 §3).
	AccountURI string
	// Method is the challenge type that validated the identifier
	// ("dns-01", "http-01", "tls-alpn-01"), looked up in a
	// "validationmethods" parameter (RFC 8657 §4).
	Method string
}

// caaCriticalFlags are the flag bits that mark a property critical. RFC 8659
// §4.1 defines only 128, but enough zone operators set 1 instead, reading
// the bit numbering the wrong way round, that Boulder treats it as critical
// too; doing the same can only refuse, never permit, issuance.
const caaCriticalFlags = 128 | 1

// knownCAATags are the property tags understood here, so a critical flag on
// them does not stop issuance. Only issue and issuewild restrict issuance;
// the others are reporting or contact information a CA may act on or not.
var knownCAATags = map[string]bool{
	"issue":        true,
	"issuewild":    true,
	"iodef":        true,
	"issuemail":    true, // RFC 9495: S/MIME, irrelevant to TLS
	"issuevmc":     true, // BIMI mark certificates, irrelevant to TLS
	"contactemail": true, // CA/B Forum BR appendix A
	"contactphone": true,
}

// caaVerdict is the outcome of one issue or issuewild record, ordered from
// least to most specific so that an error can report the record that came
// closest to authorizing the request.
type caaVerdict int

const (
	caaOtherIssuer  caaVerdict = iota // names another CA, or none (";")
	caaMalformed                      // value does not parse: authorizes no one
	caaOtherAccount                   // our CA, but accounturi names another account
	caaOtherMethod                    // our CA and account, but validationmethods excludes ours
	caaAuthorizes
)

// CheckCAA checks the CAA records (RFC 8659, with RFC 8657's accounturi
// and validationmethods) for req.Name and returns nil if the brand with
// req.IssuerDomains may issue, or an *Error: Type "caa" when a record
// forbids issuance, "dns" when the records could not be looked up (it fails
// closed: a SERVFAIL or timeout might hide a forbidding record), and
// "malformed" for a name that is not a DNS name.
//
// It looks up CAA at the name and at each parent up to, but not including,
// the root, and uses the first non-empty set (RFC 8659 §3); CNAMEs are
// followed as Resolver.Lookup does, and a name whose chain ends in NXDOMAIN
// or NODATA climbs to the name's own parent, not the target's. It returns
// nil without any lookup when req.IssuerDomains is empty or req.Name is an
// IP address. It needs a configured DNS server: Go's system resolver cannot
// look up CAA, so with it every check fails closed.
//
// See RecheckCAA for when the ACME front end calls it.
func (v *Validator) CheckCAA(ctx context.Context, req CAARequest) error {
	if len(req.IssuerDomains) == 0 {
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(req.Name, "."))
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		name, req.Wildcard = rest, true
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return nil
	}
	// The climb splits at every ".", so zone-file escapes ("\.") are
	// refused with the other characters no ACME identifier contains.
	if _, ok := dns.IsDomainName(name); !ok || name == "" || strings.ContainsAny(name, "*\\") {
		return &Error{Type: "malformed", Detail: fmt.Sprintf("cannot check CAA for %q: not a valid DNS name", req.Name)}
	}
	domains := make([]string, 0, len(req.IssuerDomains))
	for _, d := range req.IssuerDomains {
		domains = append(domains, strings.TrimSuffix(d, "."))
	}
	req.IssuerDomains = domains

	if v.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, v.cfg.Timeout)
		defer cancel()
	}
	set, err := v.relevantCAA(ctx, name)
	if err != nil {
		detail := "DNS problem: " + err.Error()
		// The resolver's message names the node it queried; say which
		// name that was for when the failure was at a parent or alias.
		if de := (*DNSError)(nil); !errors.As(err, &de) || de.Name != name {
			detail += fmt.Sprintf(" (while checking CAA for %s)", name)
		}
		return &Error{Type: "dns", Detail: detail}
	}
	if set == nil {
		return nil
	}
	return set.check(name, req)
}

// caaSet is the relevant CAA RRset of a name: the records found at node
// (which is the name or one of its parents) and, when node is an alias,
// the name the records really live at.
type caaSet struct {
	node  string
	owner string
	rrs   []*dns.CAA
}

// relevantCAA finds the relevant RRset of name (RFC 8659 §3), or nil if no
// node up to the TLD has CAA records. All the lookups start at once, as
// Boulder does, because the climb is otherwise a chain of round trips that
// each may take a resolver timeout; the result is still decided strictly
// bottom-up: a failed lookup counts only if every node below it was empty,
// since its answer might have been the relevant one, and a decided result
// cancels the lookups still running above it.
func (v *Validator) relevantCAA(ctx context.Context, name string) (*caaSet, error) {
	var nodes []string
	for n := name; n != ""; {
		nodes = append(nodes, n)
		_, n, _ = strings.Cut(n, ".")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type result struct {
		i   int
		rrs []dns.RR
		err error
	}
	// Buffered for every lookup so the ones still running when this
	// returns can finish without anyone receiving.
	results := make(chan result, len(nodes))
	for i, n := range nodes {
		go func() {
			rrs, err := v.resolver.Lookup(ctx, n, dns.TypeCAA)
			results <- result{i, rrs, err}
		}()
	}
	got := make([]*result, len(nodes))
	next := 0
	for range nodes {
		r := <-results
		got[r.i] = &r
		for next < len(nodes) && got[next] != nil {
			r := got[next]
			if r.err != nil {
				var de *DNSError
				if errors.As(r.err, &de) && de.NotFound() {
					next++
					continue
				}
				return nil, r.err
			}
			set := &caaSet{node: nodes[next], owner: nodes[next]}
			for _, rr := range r.rrs {
				if c, ok := rr.(*dns.CAA); ok {
					set.rrs = append(set.rrs, c)
				}
			}
			if len(set.rrs) > 0 {
				set.owner = strings.TrimSuffix(dns.CanonicalName(set.rrs[0].Hdr.Name), ".")
			}
			return set, nil
		}
	}
	return nil, nil
}

// check applies the relevant RRset to req (RFC 8659 §4, RFC 8657).
func (s *caaSet) check(name string, req CAARequest) error {
	var issue, issuewild []*dns.CAA
	for _, rr := range s.rrs {
		tag := strings.ToLower(rr.Tag)
		switch {
		case tag == "issue":
			issue = append(issue, rr)
		case tag == "issuewild":
			issuewild = append(issuewild, rr)
		case !knownCAATags[tag] && rr.Flag&caaCriticalFlags != 0:
			return &Error{Type: "caa", Detail: fmt.Sprintf(
				"%s: found %q, a critical property this CA does not understand (RFC 8659 §4.1); remove it or clear its critical flag to allow issuance",
				s.prevents(name, req.Wildcard), formatCAA(rr))}
		}
	}
	// issuewild is ignored for non-wildcard names, and replaces issue for
	// wildcards when present (RFC 8659 §4.3).
	relevant, tag := issue, "issue"
	if req.Wildcard && len(issuewild) > 0 {
		relevant, tag = issuewild, "issuewild"
	}
	// A set with only iodef, issuewild (for a plain name) or unknown
	// non-critical properties places no restriction on issuance.
	if len(relevant) == 0 {
		return nil
	}
	var best *dns.CAA
	var bestVerdict caaVerdict
	var bestValue caaIssueValue
	var bestErr error
	for _, rr := range relevant {
		iv, err := parseCAAIssueValue(rr.Value)
		verdict := caaMalformed
		if err == nil {
			verdict = iv.authorizes(req.IssuerDomains, req.AccountURI, req.Method)
		}
		if verdict == caaAuthorizes {
			return nil
		}
		if best == nil || verdict > bestVerdict {
			best, bestVerdict, bestValue, bestErr = rr, verdict, iv, err
		}
	}

	found := fmt.Sprintf("found %q", formatCAA(best))
	others := ""
	switch n := len(relevant) - 1; {
	case n == 1:
		others = fmt.Sprintf("; 1 other %s record does not allow it either", tag)
	case n > 1:
		others = fmt.Sprintf("; %d other %s records do not allow it either", n, tag)
	}
	domain := req.IssuerDomains[0]
	var why, fix string
	switch bestVerdict {
	case caaOtherIssuer:
		if bestValue.domain == "" {
			why = ", which forbids issuance by every CA"
		}
		fix = fmt.Sprintf("add %q to allow it", fmt.Sprintf("0 %s %q", tag, domain))
	case caaMalformed:
		why = fmt.Sprintf(", which is malformed (%v) and so authorizes no CA", bestErr)
		fix = fmt.Sprintf("add %q to allow it", fmt.Sprintf("0 %s %q", tag, domain))
	case caaOtherAccount:
		if req.AccountURI == "" {
			// Not reachable from the ACME front end, which always knows
			// the account, but the message must not suggest "accounturi=".
			why = ", whose accounturi cannot match a request without an account"
			fix = "remove the accounturi parameter to allow it"
			break
		}
		why = fmt.Sprintf(", whose accounturi is not this ACME account (%s)", req.AccountURI)
		fix = fmt.Sprintf("add %q to allow this account",
			fmt.Sprintf("0 %s %q", tag, bestValue.domain+"; accounturi="+req.AccountURI))
	case caaOtherMethod:
		why = fmt.Sprintf(", whose validationmethods does not include %s", req.Method)
		allowed := bestValue.methods[0]
		if len(bestValue.methods) > 1 {
			allowed = "one of " + strings.Join(bestValue.methods, ", ")
		}
		fix = fmt.Sprintf("validate with %s, or add %s to its validationmethods to allow it", allowed, req.Method)
	}
	return &Error{Type: "caa", Detail: fmt.Sprintf("%s: %s%s%s; %s", s.prevents(name, req.Wildcard), found, why, others, fix)}
}

// prevents starts every refusal: it names the node whose records decided,
// the alias target they came from, and the requested name when that is not
// the node itself, so the domain owner knows which zone to edit.
func (s *caaSet) prevents(name string, wildcard bool) string {
	var b strings.Builder
	b.WriteString("CAA record for ")
	b.WriteString(s.node)
	if s.owner != s.node {
		fmt.Fprintf(&b, " (an alias of %s)", s.owner)
	}
	b.WriteString(" prevents issuance")
	if wildcard {
		name = "*." + name
	}
	if name != s.node {
		fmt.Fprintf(&b, " for %s", name)
	}
	return b.String()
}

// formatCAA renders a record in zone-file style, shortened because its
// contents come from the domain's zone and end up in a problem document.
func formatCAA(rr *dns.CAA) string {
	return fmt.Sprintf("%d %s %q", rr.Flag, truncate(rr.Tag, 32), truncate(rr.Value, 128))
}
