package validation

import (
	"errors"
	"fmt"
	"strings"
)

// caaIssueValue is the parsed value of an "issue" or "issuewild" property
// (RFC 8659 §4.2): an issuer domain name, empty when the record forbids
// issuance by every CA, and optional parameters.
type caaIssueValue struct {
	domain string // lower case; "" for the value ";"
	// accountURI and methods hold RFC 8657's parameters; the has* flags
	// tell an absent parameter (no restriction) from an empty one (which
	// nothing satisfies).
	accountURI    string
	hasAccountURI bool
	methods       []string
	hasMethods    bool
}

// parseCAAIssueValue parses an issue or issuewild value:
//
//	issue-value = *WSP [issuer-domain-name *WSP] [";" *WSP [parameters *WSP]]
//	parameters  = (parameter *WSP ";" *WSP parameters) / parameter
//	parameter   = tag *WSP "=" *WSP value
//
// It is a little more lenient than the grammar about white space (around
// commas in validationmethods, and empty parameters between two ";"),
// because such records state their owner's intent unambiguously. Anything
// else that breaks the grammar is an error, and the caller treats the record
// as authorizing nobody (RFC 8659 §4.2), so a typo can only ever refuse
// issuance, never allow it.
func parseCAAIssueValue(v string) (caaIssueValue, error) {
	var out caaIssueValue
	domain, params, _ := strings.Cut(v, ";")
	domain = trimWSP(domain)
	if domain != "" && !isCAADomain(domain) {
		return out, fmt.Errorf("issuer domain name %q is not a valid domain name", domain)
	}
	out.domain = strings.ToLower(domain)
	// ";" cannot appear in a parameter's tag or value, so splitting on it
	// is exact.
	for _, p := range strings.Split(params, ";") {
		p = trimWSP(p)
		if p == "" {
			continue
		}
		tag, value, ok := strings.Cut(p, "=")
		if !ok {
			return out, fmt.Errorf("parameter %q is not tag=value", p)
		}
		tag, value = trimWSP(tag), trimWSP(value)
		if !isCAALabel(tag) {
			return out, fmt.Errorf("parameter tag %q is not valid", tag)
		}
		// validationmethods is checked method by method below, which
		// also lets it tolerate spaces after its commas.
		if !strings.EqualFold(tag, "validationmethods") && !isCAAParamValue(value) {
			return out, fmt.Errorf("value of parameter %s contains spaces or control characters", tag)
		}
		// RFC 8657 defines each parameter once; a record with two is
		// ambiguous about which restriction its owner meant, so it is
		// malformed rather than resolved by picking one.
		switch strings.ToLower(tag) {
		case "accounturi":
			if out.hasAccountURI {
				return out, errors.New("accounturi appears more than once")
			}
			out.accountURI, out.hasAccountURI = value, true
		case "validationmethods":
			if out.hasMethods {
				return out, errors.New("validationmethods appears more than once")
			}
			out.hasMethods = true
			methods, err := parseCAAMethods(value, p)
			if err != nil {
				return out, err
			}
			out.methods = methods
		}
		// Other parameters belong to other CAs (RFC 8659 §4.2 leaves
		// their meaning to the issuer named), so they are ignored.
	}
	return out, nil
}

// parseCAAMethods splits a validationmethods value (RFC 8657 §4):
// label *("," label). raw is the whole parameter, for the error message.
func parseCAAMethods(value, raw string) ([]string, error) {
	if value == "" {
		return nil, fmt.Errorf("validationmethods in %q lists no method", raw)
	}
	var out []string
	for m := range strings.SplitSeq(value, ",") {
		m = trimWSP(m)
		if !isCAALabel(m) {
			return nil, fmt.Errorf("validationmethods in %q has the invalid method %q", raw, m)
		}
		out = append(out, m)
	}
	return out, nil
}

// authorizes reports whether the value lets an issuer with one of domains
// issue for account accountURI after validating with method. It returns a
// verdict rather than a bool so the error can say which condition failed.
func (iv caaIssueValue) authorizes(domains []string, accountURI, method string) caaVerdict {
	if iv.domain == "" || !containsFold(domains, iv.domain) {
		return caaOtherIssuer
	}
	// An empty accounturi cannot name an account; comparing it with an
	// empty request field must not turn it into a match.
	if iv.hasAccountURI && (iv.accountURI == "" || iv.accountURI != accountURI) {
		return caaOtherAccount
	}
	if iv.hasMethods && !containsFold(iv.methods, method) {
		return caaOtherMethod
	}
	return caaAuthorizes
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func trimWSP(s string) string { return strings.Trim(s, " \t") }

// isCAADomain checks issuer-domain-name = label *("." label) of RFC 8659
// §4.2. It is stricter than a DNS name (no "_", no trailing dot) because
// that is what the RFC allows and what issuers publish.
func isCAADomain(s string) bool {
	for l := range strings.SplitSeq(s, ".") {
		if !isCAALabel(l) {
			return false
		}
	}
	return true
}

// isCAALabel checks label = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT)), the
// syntax RFC 8659 and RFC 8657 share for domain labels, parameter tags and
// validation method names.
func isCAALabel(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isCAAParamValue checks value = *(%x21-3A / %x3C-7E): printable ASCII
// without space (";" has already been split off).
func isCAAParamValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ';' {
			return false
		}
	}
	return true
}
