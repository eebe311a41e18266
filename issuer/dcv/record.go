package dcv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// The record types a Publisher can write. Brands ask for nothing else: TXT
// for token methods (Tencent/Alibaba _dnsauth, DigiCert dns-txt-token) and
// CNAME for DigiCert's dns-cname-token.
const (
	TypeTXT   = "TXT"
	TypeCNAME = "CNAME"
)

// normalize checks a Record a brand adapter handed over and puts it into the
// one form every Publisher works with: lower-case names without the trailing
// dot, an upper-case type, a CNAME value as a name. Checking here, before any
// DNS write, turns an adapter bug into a clear error instead of a half-made
// change at the DNS operator.
func normalize(r Record) (Record, error) {
	name := canonical(r.Name)
	switch {
	case name == "":
		return Record{}, errors.New("dcv: record has no name")
	case !strings.Contains(name, "."):
		// A brand API may hand out a bare label (Alibaba's RecordDomain
		// can read "_dnsauth"); guessing the parent would risk publishing
		// at the wrong name, so the adapter must qualify it.
		return Record{}, fmt.Errorf("dcv: record name %q is not fully qualified", r.Name)
	case strings.ContainsAny(name, `*\ `):
		return Record{}, fmt.Errorf("dcv: record name %q has a character a DCV record name cannot have", r.Name)
	}
	if _, ok := dns.IsDomainName(name + "."); !ok {
		return Record{}, fmt.Errorf("dcv: record name %q is not a valid DNS name", r.Name)
	}
	out := Record{
		Domain: strings.TrimPrefix(canonical(r.Domain), "*."),
		Name:   name,
		Type:   strings.ToUpper(strings.TrimSpace(r.Type)),
		Value:  r.Value,
	}
	switch out.Type {
	case TypeTXT:
		if out.Value == "" {
			return Record{}, fmt.Errorf("dcv: TXT record %s has an empty value", name)
		}
	case TypeCNAME:
		out.Value = canonical(r.Value)
		if _, ok := dns.IsDomainName(out.Value + "."); !ok || out.Value == "" {
			return Record{}, fmt.Errorf("dcv: CNAME record %s points to %q, which is not a valid DNS name", name, r.Value)
		}
	default:
		return Record{}, fmt.Errorf("dcv: record %s has type %q; only TXT and CNAME are supported", name, r.Type)
	}
	return out, nil
}

// canonical lower-cases a name and drops the trailing dot: the form Record
// uses, and the form keys are stored under.
func canonical(name string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
}

// splitTXT cuts a value into the 255-byte character-strings one TXT record
// is made of, escaping the backslash that miekg/dns would otherwise read as
// the start of an escape sequence when packing.
func splitTXT(v string) []string {
	var out []string
	for len(v) > 255 {
		out = append(out, escapeTXT(v[:255]))
		v = v[255:]
	}
	return append(out, escapeTXT(v))
}

func escapeTXT(s string) string { return strings.ReplaceAll(s, `\`, `\\`) }

// newRR builds the resource record for a normalized Record at owner.
func newRR(owner, typ, value string, ttl time.Duration) dns.RR {
	hdr := dns.RR_Header{Name: dns.Fqdn(owner), Class: dns.ClassINET, Ttl: uint32(ttl / time.Second)}
	if typ == TypeCNAME {
		hdr.Rrtype = dns.TypeCNAME
		return &dns.CNAME{Hdr: hdr, Target: dns.Fqdn(value)}
	}
	hdr.Rrtype = dns.TypeTXT
	return &dns.TXT{Hdr: hdr, Txt: splitTXT(value)}
}

// defaultExchangeTimeout bounds one DNS exchange when the caller's context
// has no deadline, so a dead server cannot hang a brand job.
const defaultExchangeTimeout = 10 * time.Second

// exchange sends m to server over UDP and retries over TCP when the answer
// is truncated, as any resolver would. c carries TSIG settings when needed.
// A response may come back together with an error (a TSIG failure), so both
// are returned.
func exchange(ctx context.Context, c *dns.Client, m *dns.Msg, server string) (*dns.Msg, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultExchangeTimeout)
		defer cancel()
	}
	udp := *c
	if udp.Net == "" {
		udp.Net = "udp"
	}
	resp, _, err := udp.ExchangeContext(ctx, m, server)
	if err == nil && resp != nil && resp.Truncated && udp.Net == "udp" {
		tcp := *c
		tcp.Net = "tcp"
		resp, _, err = tcp.ExchangeContext(ctx, m, server)
	}
	return resp, err
}

// withPort adds the DNS port to a server given as a bare host.
func withPort(server string) string {
	if _, _, err := net.SplitHostPort(server); err == nil {
		return server
	}
	return net.JoinHostPort(strings.Trim(server, "[]"), "53")
}
