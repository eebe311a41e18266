package acme

import (
	"net/netip"
	"strings"

	"github.com/acmegw/acmegw/storage"
)

// checkIdentifiers validates newOrder identifiers and drops exact duplicates,
// keeping the client's order and spelling: lego refuses an order whose
// identifiers came back changed, so nothing is rewritten, only refused.
func checkIdentifiers(ids []storage.Identifier, max int) ([]storage.Identifier, *Problem) {
	if len(ids) == 0 {
		return nil, malformed("newOrder needs at least one identifier")
	}
	seen := make(map[storage.Identifier]bool, len(ids))
	out := make([]storage.Identifier, 0, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if p := checkIdentifier(id); p != nil {
			p.Identifier = &storage.Identifier{Type: id.Type, Value: id.Value}
			return nil, p
		}
		out = append(out, id)
	}
	if len(out) > max {
		return nil, rejectedIdentifier("an order may have at most %d identifiers, this one has %d", max, len(out))
	}
	return out, nil
}

func checkIdentifier(id storage.Identifier) *Problem {
	switch id.Type {
	case "dns":
		return checkDNSName(id.Value)
	case "ip":
		addr, err := netip.ParseAddr(id.Value)
		if err != nil || addr.Zone() != "" {
			return malformed("ip identifier %q is not an IP address", id.Value)
		}
		// A certificate encodes an IPv4-mapped address as plain IPv4, so
		// such an order could never be finalized: ask for the IPv4 form.
		if addr.Is4In6() {
			return rejectedIdentifier("ip identifier %q is an IPv4-mapped IPv6 address; send the IPv4 address %q", id.Value, addr.Unmap().String())
		}
		if addr.String() != id.Value {
			return rejectedIdentifier("ip identifier %q is not in canonical form; send %q (RFC 8738)", id.Value, addr.String())
		}
		return nil
	}
	return unsupportedIdentifier("identifier type %q is not supported; use \"dns\" or \"ip\"", id.Type)
}

// checkDNSName applies the rules a public CA applies to a dNSName: LDH labels
// in lower case, a wildcard only as the whole leftmost label, no IP addresses.
func checkDNSName(name string) *Problem {
	base, wildcard := strings.CutPrefix(name, "*.")
	switch {
	case name == "":
		return malformed("dns identifier is empty")
	case len(name) > 253:
		return rejectedIdentifier("dns identifier %q is longer than 253 characters", name)
	case strings.HasSuffix(name, "."):
		return rejectedIdentifier("dns identifier %q ends with a dot; send it without the trailing dot", name)
	case strings.Contains(base, "*"):
		if wildcard {
			return rejectedIdentifier("dns identifier %q: a wildcard may only be a single \"*\" as the whole leftmost label", name)
		}
		return rejectedIdentifier("dns identifier %q: \"*\" is allowed only as the whole leftmost label, as in \"*.example.com\"", name)
	}
	if _, err := netip.ParseAddr(base); err == nil {
		return rejectedIdentifier("dns identifier %q is an IP address; use an identifier of type \"ip\"", name)
	}
	labels := strings.Split(base, ".")
	if len(labels) < 2 {
		return rejectedIdentifier("dns identifier %q has a single label; a certificate needs a fully qualified name", name)
	}
	for _, l := range labels {
		if p := checkLabel(name, l); p != nil {
			return p
		}
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return rejectedIdentifier("dns identifier %q ends in an all-numeric label, which is not a domain name", name)
	}
	return nil
}

func checkLabel(name, l string) *Problem {
	if l == "" {
		return rejectedIdentifier("dns identifier %q has an empty label", name)
	}
	if len(l) > 63 {
		return rejectedIdentifier("dns identifier %q has a label longer than 63 characters", name)
	}
	for _, c := range l {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
		case c >= 'A' && c <= 'Z':
			return rejectedIdentifier("dns identifier %q has upper-case letters; send it in lower case (%q)", name, strings.ToLower(name))
		case c > 0x7f:
			return rejectedIdentifier("dns identifier %q is not ASCII; send internationalized names in punycode (xn--)", name)
		default:
			return rejectedIdentifier("dns identifier %q contains %q; only letters, digits and hyphens are allowed in a label", name, c)
		}
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return rejectedIdentifier("dns identifier %q has a label that starts or ends with a hyphen", name)
	}
	if len(l) >= 4 && l[2:4] == "--" && !strings.HasPrefix(l, "xn--") {
		return rejectedIdentifier("dns identifier %q has a label with \"--\" in positions 3-4 that is not punycode (xn--)", name)
	}
	return nil
}
