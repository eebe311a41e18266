package aliyuntest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// maxCNAMEHops bounds CNAME chains, so a loop in test data ends.
const maxCNAMEHops = 8

// dnsTimeout bounds one DNS exchange of the DCV check.
const dnsTimeout = 2 * time.Second

// lookupTXT returns the TXT strings at name as the resolver at server
// (HOST:PORT) answers, following CNAMEs: within one answer, as a recursive
// resolver returns the chain, and by asking again for the target when the
// server answered only the CNAME, as an authoritative server for another
// zone does. That is how a delegated _dnsauth record (a CNAME into a zone
// acmegw answers) is seen by a real CA. No records: nil and no error.
func lookupTXT(ctx context.Context, server, name string) ([]string, error) {
	cur := dns.CanonicalName(name)
	for range maxCNAMEHops {
		in, err := exchange(ctx, server, cur, dns.TypeTXT)
		if err != nil {
			return nil, err
		}
		switch in.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeNameError:
			return nil, nil
		default:
			return nil, fmt.Errorf("TXT %s: %s", cur, dns.RcodeToString[in.Rcode])
		}
		// Walk the chain the answer carries.
		start := cur
		for range maxCNAMEHops {
			moved := false
			for _, rr := range in.Answer {
				if c, ok := rr.(*dns.CNAME); ok && dns.CanonicalName(c.Hdr.Name) == cur {
					cur = dns.CanonicalName(c.Target)
					moved = true
					break
				}
			}
			if !moved {
				break
			}
		}
		var txt []string
		for _, rr := range in.Answer {
			if t, ok := rr.(*dns.TXT); ok && dns.CanonicalName(t.Hdr.Name) == cur {
				txt = append(txt, strings.Join(t.Txt, ""))
			}
		}
		if len(txt) > 0 || cur == start {
			return txt, nil
		}
		// Only the CNAME came back: ask for its target.
	}
	return nil, fmt.Errorf("TXT %s: CNAME chain longer than %d", name, maxCNAMEHops)
}

// exchange asks over UDP and again over TCP when the answer is truncated.
func exchange(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	m.SetEdns0(4096, false)
	ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	defer cancel()
	in, _, err := (&dns.Client{Net: "udp", Timeout: dnsTimeout}).ExchangeContext(ctx, m, server)
	if err == nil && in.Truncated {
		in, _, err = (&dns.Client{Net: "tcp", Timeout: dnsTimeout}).ExchangeContext(ctx, m, server)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s via %s: %w", dns.TypeToString[qtype], name, server, err)
	}
	return in, nil
}
