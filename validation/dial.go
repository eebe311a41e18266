package validation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/miekg/dns"
)

// identifier is a challenge's identifier after syntax checks: name is set
// for "dns", ip for "ip".
type identifier struct {
	name string
	ip   netip.Addr
}

func (id identifier) isIP() bool { return id.ip.IsValid() }

func (id identifier) String() string {
	if id.isIP() {
		return id.ip.String()
	}
	return id.name
}

// parseIdentifier rejects identifiers that the ACME layer should never have
// accepted; the validator double-checks because it is the component that
// actually opens connections.
func (v *Validator) parseIdentifier(ch Challenge) (identifier, error) {
	switch ch.IdentifierType {
	case "dns":
		name := strings.ToLower(strings.TrimSuffix(ch.Identifier, "."))
		if strings.HasPrefix(name, "*.") {
			return identifier{}, &Error{Type: "malformed", Detail: fmt.Sprintf("%s cannot validate the wildcard %q; use dns-01", ch.Type, ch.Identifier)}
		}
		if _, err := netip.ParseAddr(name); err == nil {
			return identifier{}, &Error{Type: "malformed", Detail: fmt.Sprintf("%q is an IP address, not a DNS name", ch.Identifier)}
		}
		if _, ok := dns.IsDomainName(name); !ok || name == "" {
			return identifier{}, &Error{Type: "malformed", Detail: fmt.Sprintf("%q is not a valid DNS name", ch.Identifier)}
		}
		return identifier{name: name}, nil
	case "ip":
		ip, err := netip.ParseAddr(ch.Identifier)
		if err != nil || ip.Zone() != "" {
			return identifier{}, &Error{Type: "malformed", Detail: fmt.Sprintf("%q is not a valid IP address", ch.Identifier)}
		}
		ip = ip.Unmap()
		if err := v.checkAddr(ip); err != nil {
			return identifier{}, &Error{Type: "rejectedIdentifier", Detail: err.Error()}
		}
		return identifier{ip: ip}, nil
	}
	return identifier{}, &Error{Type: "malformed", Detail: fmt.Sprintf("unsupported identifier type %q", ch.IdentifierType)}
}

// addresses resolves host (a name or an IP literal) and returns the addresses
// to try, in order: the first allowed IPv6 address, then the first allowed
// IPv4 address, as Boulder does. Every address is put through the address
// policy here, and callers dial only what this returns, so no later
// re-resolution can swap in an address that was never checked.
func (v *Validator) addresses(ctx context.Context, host string) ([]netip.Addr, error) {
	var all []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		all = []netip.Addr{ip.Unmap()}
	} else {
		ips, err := v.resolver.LookupIP(ctx, host)
		if err != nil {
			return nil, &Error{Type: "dns", Detail: "DNS problem: " + err.Error()}
		}
		all = ips
	}
	var v6, v4 netip.Addr
	var refused error
	for _, ip := range all {
		if err := v.checkAddr(ip); err != nil {
			if refused == nil {
				refused = err
			}
			continue
		}
		if ip.Is4() && !v4.IsValid() {
			v4 = ip
		} else if ip.Is6() && !v6.IsValid() {
			v6 = ip
		}
	}
	var out []netip.Addr
	if v6.IsValid() {
		out = append(out, v6)
	}
	if v4.IsValid() {
		out = append(out, v4)
	}
	if len(out) == 0 {
		if refused != nil {
			if _, err := netip.ParseAddr(host); err == nil {
				return nil, &Error{Type: "connection", Detail: refused.Error()}
			}
			var ae *AddressError
			if errors.As(refused, &ae) {
				return nil, &Error{Type: "connection", Detail: fmt.Sprintf(
					"%s resolves to %s, which is %s; validation of private addresses is disabled (--validation-allow-private)",
					host, ae.Addr, ae.Reason)}
			}
			return nil, &Error{Type: "connection", Detail: fmt.Sprintf("%s resolves to a refused address: %v", host, refused)}
		}
		return nil, &Error{Type: "dns", Detail: fmt.Sprintf("No valid IP addresses found for %s", host)}
	}
	return out, nil
}

// describeNetErr turns a network error into words an ACME client's operator
// can act on; connected tells a timeout while connecting (usually a
// firewall) from one after connecting (a slow server).
func describeNetErr(err error, connected bool) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "Connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "Connection reset by peer"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "No route to host"
	case errors.Is(err, syscall.ENETUNREACH):
		return "Network unreachable"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		if connected {
			return "Timeout after connect (your server may be slow or overloaded)"
		}
		return "Timeout during connect (likely firewall problem)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "Connection closed by the server"
	}
	return innermost(err).Error()
}

// innermost drops the layers of *url.Error and *net.OpError, whose
// messages repeat the URL and addresses that the caller already reports.
func innermost(err error) error {
	for {
		switch e := err.(type) {
		case *url.Error:
			err = e.Err
		case *net.OpError:
			err = e.Err
		default:
			return err
		}
	}
}
