package validation

import (
	"fmt"
	"net/netip"
)

// AddressError is an address refused by the address policy.
type AddressError struct {
	Addr   netip.Addr
	Reason string // what kind of address it is, e.g. "a loopback address"
}

// Error says what kind of address was refused and how an operator running a
// private CA can allow it.
func (e *AddressError) Error() string {
	return fmt.Sprintf("%s is %s; validation of private addresses is disabled (--validation-allow-private)", e.Addr, e.Reason)
}

type reservedPrefix struct {
	prefix netip.Prefix
	reason string
}

// reserved lists the IANA IPv4 and IPv6 special-purpose address registries
// (plus multicast and the reserved 240/4), the ranges a publicly trusted CA
// must never connect to: reaching them would let an ACME client make the
// gateway probe its own network, or "prove" control of a name with an
// address nobody on the Internet owns.
var reserved = func() []reservedPrefix {
	list := []struct{ cidr, reason string }{
		{"0.0.0.0/8", `in "this network" (0.0.0.0/8)`},
		{"10.0.0.0/8", "a private address (RFC 1918)"},
		{"100.64.0.0/10", "a shared (CGNAT) address (RFC 6598)"},
		{"127.0.0.0/8", "a loopback address"},
		{"169.254.0.0/16", "a link-local address"},
		{"172.16.0.0/12", "a private address (RFC 1918)"},
		{"192.0.0.0/24", "an IETF protocol assignment address (RFC 6890)"},
		{"192.0.2.0/24", "a documentation address (TEST-NET-1)"},
		{"192.31.196.0/24", "an AS112 address (RFC 7535)"},
		{"192.52.193.0/24", "an AMT address (RFC 7450)"},
		{"192.88.99.0/24", "a deprecated 6to4 relay anycast address (RFC 7526)"},
		{"192.168.0.0/16", "a private address (RFC 1918)"},
		{"192.175.48.0/24", "an AS112 direct delegation address (RFC 7534)"},
		{"198.18.0.0/15", "a benchmarking address (RFC 2544)"},
		{"198.51.100.0/24", "a documentation address (TEST-NET-2)"},
		{"203.0.113.0/24", "a documentation address (TEST-NET-3)"},
		{"224.0.0.0/4", "a multicast address"},
		{"255.255.255.255/32", "the limited broadcast address"},
		{"240.0.0.0/4", "a reserved address (240.0.0.0/4)"},

		{"::/128", "the unspecified address"},
		{"::1/128", "a loopback address"},
		{"::/96", "an IPv4-compatible address (deprecated, RFC 4291)"},
		{"::ffff:0:0/96", "an IPv4-mapped address"},
		{"64:ff9b::/96", "a NAT64 translation address (RFC 6052)"},
		{"64:ff9b:1::/48", "a local-use NAT64 translation address (RFC 8215)"},
		{"100::/64", "a discard-only address (RFC 6666)"},
		{"2001:db8::/32", "a documentation address"},
		{"2001::/23", "an IETF protocol assignment address (Teredo, ORCHID, benchmarking; RFC 2928)"},
		{"2002::/16", "a 6to4 address (RFC 3056)"},
		{"3fff::/20", "a documentation address (RFC 9637)"},
		{"5f00::/16", "an SRv6 SID address (RFC 9602)"},
		{"fc00::/7", "a private (unique local) address"},
		{"fe80::/10", "a link-local address"},
		{"ff00::/8", "a multicast address"},
	}
	out := make([]reservedPrefix, len(list))
	for i, e := range list {
		out[i] = reservedPrefix{netip.MustParsePrefix(e.cidr), e.reason}
	}
	return out
}()

// globalUnicast6 is the only IPv6 space IANA has allocated for global
// unicast; anything outside it cannot be a real Internet host.
var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// CheckAddress returns an *AddressError when ip is loopback, private,
// link-local, multicast, documentation or any other special-purpose address
// that a public CA must not connect to, and nil when ip is a public unicast
// address. IPv4-mapped IPv6 addresses are judged as the IPv4 address they
// carry, and zoned addresses are always refused.
func CheckAddress(ip netip.Addr) error {
	if !ip.IsValid() {
		return &AddressError{Addr: ip, Reason: "not a valid IP address"}
	}
	if ip.Zone() != "" {
		return &AddressError{Addr: ip, Reason: "a scoped (zoned) address"}
	}
	ip = ip.Unmap()
	// The list is checked in order so that the most specific, most
	// helpful reason wins (2001:db8::/32 before 2001::/23).
	for _, r := range reserved {
		if r.prefix.Contains(ip) {
			return &AddressError{Addr: ip, Reason: r.reason}
		}
	}
	if ip.Is6() && !globalUnicast6.Contains(ip) {
		return &AddressError{Addr: ip, Reason: "outside the IPv6 global unicast space (2000::/3)"}
	}
	return nil
}
