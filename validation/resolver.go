package validation

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// MaxCNAMEHops bounds how many CNAMEs a lookup follows, so that a loop or an
// absurd chain cannot keep a validation worker busy.
const MaxCNAMEHops = 10

const (
	// ednsUDPSize is the DNS flag day 2020 recommendation: large enough for
	// typical answers, small enough to avoid IP fragmentation.
	ednsUDPSize = 1232
	// udpAttempts and udpAttemptTimeout retry lost UDP datagrams within the
	// caller's deadline instead of spending it all on one packet.
	udpAttempts       = 3
	udpAttemptTimeout = 3 * time.Second
)

// Resolver is a DNS stub resolver. It sends recursive queries to one server
// with github.com/miekg/dns (UDP, falling back to TCP on truncation) and
// follows CNAME chains itself, so it also works against authoritative-only
// test servers. Without a usable server it falls back to Go's system
// resolver.
type Resolver struct {
	server string // HOST:PORT; empty means net.DefaultResolver
	udp    *dns.Client
	tcp    *dns.Client
}

// NewResolver returns a Resolver that queries server (HOST:PORT). An empty
// server means the first nameserver of /etc/resolv.conf, or Go's system
// resolver when that file cannot be read.
func NewResolver(server string) *Resolver {
	if server == "" {
		if cc, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil && len(cc.Servers) > 0 {
			server = net.JoinHostPort(cc.Servers[0], cc.Port)
		}
	}
	return &Resolver{
		server: server,
		udp:    &dns.Client{Net: "udp", ReadTimeout: udpAttemptTimeout, UDPSize: ednsUDPSize},
		tcp:    &dns.Client{Net: "tcp"},
	}
}

// Server returns the HOST:PORT the Resolver queries, or "" when it uses Go's
// system resolver.
func (r *Resolver) Server() string { return r.server }

// dnsErrorKind classifies a failed lookup; callers care most about whether
// the name simply has no such records (the user's mistake) or whether DNS
// itself failed (possibly transient).
type dnsErrorKind int

const (
	kindNXDomain dnsErrorKind = iota
	kindNoData
	kindRcode
	kindTimeout
	kindNetwork
	kindTooManyCNAMEs
	kindBadResponse
)

// DNSError is a failed DNS lookup. Its message is meant for ACME clients, so
// it names the query and says whether the name does not exist, has no such
// records, or whether the lookup itself failed.
type DNSError struct {
	Name  string // the name queried, without the trailing dot
	QType string // "TXT", "A", "AAAA", ...
	Rcode int    // the response code for rcode errors, else -1
	Err   error  // the underlying network error, if any
	kind  dnsErrorKind
}

// Error is phrased for ACME clients, in the style of Boulder's "DNS problem"
// details.
func (e *DNSError) Error() string {
	switch e.kind {
	case kindNXDomain:
		return fmt.Sprintf("NXDOMAIN looking up %s for %s - check that a DNS record exists for this domain", e.QType, e.Name)
	case kindNoData:
		return fmt.Sprintf("No %s records found for %s", e.QType, e.Name)
	case kindRcode:
		return fmt.Sprintf("%s looking up %s for %s - the domain's nameservers may be malfunctioning",
			dns.RcodeToString[e.Rcode], e.QType, e.Name)
	case kindTimeout:
		return fmt.Sprintf("query timed out looking up %s for %s", e.QType, e.Name)
	case kindTooManyCNAMEs:
		return fmt.Sprintf("too many CNAMEs (more than %d) looking up %s for %s", MaxCNAMEHops, e.QType, e.Name)
	case kindBadResponse:
		return fmt.Sprintf("malformed response looking up %s for %s: %v", e.QType, e.Name, e.Err)
	}
	return fmt.Sprintf("networking error looking up %s for %s: %v", e.QType, e.Name, e.Err)
}

// Unwrap returns the network error, if any, so errors.Is sees timeouts.
func (e *DNSError) Unwrap() error { return e.Err }

// NotFound reports whether the name does not exist (NXDOMAIN) or has no
// records of the type asked for; every other DNSError is a failure of DNS
// itself (SERVFAIL, REFUSED, timeout, network error, CNAME loop).
func (e *DNSError) NotFound() bool { return e.kind == kindNXDomain || e.kind == kindNoData }

// Timeout reports whether the lookup timed out.
func (e *DNSError) Timeout() bool { return e.kind == kindTimeout }

func newDNSError(name string, qtype uint16, kind dnsErrorKind, rcode int, err error) *DNSError {
	return &DNSError{Name: strings.TrimSuffix(name, "."), QType: dns.TypeToString[qtype], Rcode: rcode, Err: err, kind: kind}
}

// Lookup returns the records of type qtype at name, following CNAMEs (at most
// MaxCNAMEHops) whether the server chased them in its answer or not. It
// returns a *DNSError when there are no such records or the lookup fails.
// Lookup needs a DNS server; with Go's system resolver it supports only TXT,
// A and AAAA.
func (r *Resolver) Lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	name = dns.CanonicalName(name)
	if _, ok := dns.IsDomainName(name); !ok {
		return nil, newDNSError(name, qtype, kindBadResponse, -1, fmt.Errorf("%q is not a valid domain name", name))
	}
	if r.server == "" {
		return r.lookupSystem(ctx, name, qtype)
	}
	target := name
	hops := 0
	for {
		resp, err := r.exchange(ctx, target, qtype)
		if err != nil {
			return nil, classifyNetErr(name, qtype, err)
		}
		if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
			return nil, newDNSError(target, qtype, kindRcode, resp.Rcode, nil)
		}
		queried := target
		// Walk the chain inside this answer first: recursive servers
		// include the whole chain, which saves us the extra queries.
		for {
			next := ""
			for _, rr := range resp.Answer {
				if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, target) {
					next = dns.CanonicalName(c.Target)
					break
				}
			}
			if next == "" || qtype == dns.TypeCNAME {
				break
			}
			if hops++; hops > MaxCNAMEHops {
				return nil, newDNSError(name, qtype, kindTooManyCNAMEs, -1, nil)
			}
			target = next
		}
		// An NXDOMAIN after a chain applies to the chain's last name
		// (RFC 6604), which is the name worth reporting.
		if resp.Rcode == dns.RcodeNameError {
			return nil, newDNSError(target, qtype, kindNXDomain, resp.Rcode, nil)
		}
		var out []dns.RR
		for _, rr := range resp.Answer {
			if rr.Header().Rrtype == qtype && strings.EqualFold(rr.Header().Name, target) {
				out = append(out, rr)
			}
		}
		if len(out) > 0 {
			return out, nil
		}
		// A CNAME whose target was not in the answer (an authoritative
		// server for another zone) means we must ask for the target.
		if target != queried {
			continue
		}
		return nil, newDNSError(target, qtype, kindNoData, dns.RcodeSuccess, nil)
	}
}

// exchange sends one query over UDP, retrying lost datagrams, and repeats it
// over TCP when the UDP answer was truncated.
func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	m.SetEdns0(ednsUDPSize, false)

	var resp *dns.Msg
	var err error
	for attempt := 0; attempt < udpAttempts; attempt++ {
		resp, _, err = r.udp.ExchangeContext(ctx, m, r.server)
		if err == nil || ctx.Err() != nil || !isTimeout(err) {
			break
		}
	}
	if err == nil && resp.Truncated {
		resp, _, err = r.tcp.ExchangeContext(ctx, m, r.server)
	}
	if err != nil {
		return nil, err
	}
	// The ID is checked by miekg/dns; the question guards against answers
	// meant for another query landing on a reused port.
	if len(resp.Question) != 1 || resp.Question[0].Qtype != qtype || !strings.EqualFold(resp.Question[0].Name, name) {
		return nil, fmt.Errorf("response from %s does not match the question %s %s", r.server, name, dns.TypeToString[qtype])
	}
	return resp, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func classifyNetErr(name string, qtype uint16, err error) *DNSError {
	if isTimeout(err) {
		return newDNSError(name, qtype, kindTimeout, -1, err)
	}
	return newDNSError(name, qtype, kindNetwork, -1, err)
}

// lookupSystem is the fallback when no DNS server is known; Go's resolver
// hides the difference between NXDOMAIN and NODATA, so both are NXDOMAIN here.
func (r *Resolver) lookupSystem(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	hdr := func(t uint16) dns.RR_Header { return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET} }
	var out []dns.RR
	switch qtype {
	case dns.TypeTXT:
		txts, err := net.DefaultResolver.LookupTXT(ctx, name)
		if err != nil {
			return nil, classifySystemErr(name, qtype, err)
		}
		for _, t := range txts {
			out = append(out, &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: []string{t}})
		}
	case dns.TypeA, dns.TypeAAAA:
		network := "ip4"
		if qtype == dns.TypeAAAA {
			network = "ip6"
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, network, name)
		if err != nil {
			return nil, classifySystemErr(name, qtype, err)
		}
		for _, ip := range ips {
			if qtype == dns.TypeA {
				out = append(out, &dns.A{Hdr: hdr(qtype), A: net.IP(ip.Unmap().AsSlice())})
			} else {
				out = append(out, &dns.AAAA{Hdr: hdr(qtype), AAAA: net.IP(ip.AsSlice())})
			}
		}
	default:
		return nil, newDNSError(name, qtype, kindNetwork, -1,
			errors.New("the system resolver cannot look up this type; configure a DNS server"))
	}
	if len(out) == 0 {
		return nil, newDNSError(name, qtype, kindNoData, dns.RcodeSuccess, nil)
	}
	return out, nil
}

func classifySystemErr(name string, qtype uint16, err error) *DNSError {
	var de *net.DNSError
	switch {
	case errors.As(err, &de) && de.IsNotFound:
		return newDNSError(name, qtype, kindNXDomain, dns.RcodeNameError, err)
	case isTimeout(err):
		return newDNSError(name, qtype, kindTimeout, -1, err)
	}
	return newDNSError(name, qtype, kindNetwork, -1, err)
}

// LookupTXT returns the TXT records at name, each record's strings joined
// (RFC 8555 §8.4 values fit in one string, but long values may be split).
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.Lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out, nil
}

// LookupIP returns the AAAA and A addresses of name, IPv6 first (as Boulder
// prefers). It succeeds when either family has addresses; otherwise it
// returns the more serious of the two errors, so a SERVFAIL is not hidden
// behind the other family's NODATA.
func (r *Resolver) LookupIP(ctx context.Context, name string) ([]netip.Addr, error) {
	type result struct {
		rrs []dns.RR
		err error
	}
	var v6, v4 result
	done := make(chan struct{})
	go func() {
		defer close(done)
		v6.rrs, v6.err = r.Lookup(ctx, name, dns.TypeAAAA)
	}()
	v4.rrs, v4.err = r.Lookup(ctx, name, dns.TypeA)
	<-done

	var out []netip.Addr
	for _, rr := range v6.rrs {
		if ip, ok := netip.AddrFromSlice(rr.(*dns.AAAA).AAAA); ok {
			out = append(out, ip)
		}
	}
	for _, rr := range v4.rrs {
		if ip, ok := netip.AddrFromSlice(rr.(*dns.A).A); ok {
			out = append(out, ip.Unmap())
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	var e4, e6 *DNSError
	errors.As(v4.err, &e4)
	errors.As(v6.err, &e6)
	switch {
	case e4 != nil && !e4.NotFound():
		return nil, e4
	case e6 != nil && !e6.NotFound():
		return nil, e6
	case e4 != nil && e4.kind == kindNXDomain:
		return nil, e4
	case e6 != nil && e6.kind == kindNXDomain:
		return nil, e6
	}
	return nil, &DNSError{Name: strings.TrimSuffix(dns.CanonicalName(name), "."), QType: "A or AAAA", Rcode: dns.RcodeSuccess, kind: kindNoData}
}
