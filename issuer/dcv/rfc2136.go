package dcv

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Defaults of RFC2136Config.
const (
	// DefaultRFC2136TTL is the TTL of records written by dynamic update.
	DefaultRFC2136TTL = 60 * time.Second
	// DefaultTSIGAlgorithm is the TSIG algorithm used when none is set.
	DefaultTSIGAlgorithm = "hmac-sha256"
	// tsigFudge is the clock skew TSIG tolerates (RFC 8945's recommended 300 s).
	tsigFudge = 300
)

// RFC2136Config configures an RFC2136 Publisher.
type RFC2136Config struct {
	// Nameserver is the primary server accepting updates, HOST:PORT or
	// HOST (port 53).
	Nameserver string
	// Zone is the zone to update, e.g. "example.com". If empty, the zone
	// of each record is found by asking Nameserver for the SOA of the
	// record's name, which suits a server that holds many zones.
	Zone string
	// TSIGKey is the TSIG key's name, e.g. "acmegw-key". Empty means
	// unsigned updates, for servers that allow updates by address only.
	TSIGKey string
	// TSIGSecret is the key's secret, base64 as BIND's tsig-keygen prints
	// it. It never appears in errors or logs.
	TSIGSecret string
	// TSIGAlgorithm is hmac-sha256 (default), hmac-sha512, hmac-sha384,
	// hmac-sha224 or hmac-sha1.
	TSIGAlgorithm string
	// TTL of the records written; DefaultRFC2136TTL if 0.
	TTL time.Duration
	// Timeout bounds each exchange with Nameserver when the caller's
	// context has no deadline; 10 s if 0.
	Timeout time.Duration
	// TCP sends updates over TCP instead of UDP (with TCP fallback).
	TCP bool
}

// RFC2136 is a dns-provider Publisher that writes records by RFC 2136
// dynamic update, signed with TSIG (RFC 8945).
type RFC2136 struct {
	server  string
	zone    string // canonical, "" to discover
	key     string // FQDN, "" for unsigned
	secret  string
	alg     string // FQDN form, as miekg/dns names algorithms
	ttl     time.Duration
	timeout time.Duration
	net     string
}

var _ Publisher = (*RFC2136)(nil)

// tsigAlgorithms maps the names operators write (BIND's) to miekg/dns's.
// HMAC-MD5 is left out on purpose: miekg/dns no longer signs with it.
var tsigAlgorithms = map[string]string{
	"hmac-sha1":   dns.HmacSHA1,
	"hmac-sha224": dns.HmacSHA224,
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
}

// NewRFC2136 checks cfg and returns the Publisher. It does not contact the
// server, so a server down at start-up does not stop acmegw.
func NewRFC2136(cfg RFC2136Config) (*RFC2136, error) {
	if cfg.Nameserver == "" {
		return nil, errors.New("dcv: rfc2136: nameserver is required")
	}
	p := &RFC2136{
		server:  withPort(cfg.Nameserver),
		zone:    canonical(cfg.Zone),
		ttl:     cfg.TTL,
		timeout: cfg.Timeout,
		net:     "udp",
	}
	if cfg.TCP {
		p.net = "tcp"
	}
	if p.ttl <= 0 {
		p.ttl = DefaultRFC2136TTL
	}
	if p.timeout <= 0 {
		p.timeout = defaultExchangeTimeout
	}
	if p.zone != "" {
		if _, ok := dns.IsDomainName(p.zone + "."); !ok {
			return nil, fmt.Errorf("dcv: rfc2136: zone %q is not a valid DNS name", cfg.Zone)
		}
	}
	switch {
	case cfg.TSIGKey == "" && cfg.TSIGSecret == "":
	case cfg.TSIGKey == "":
		return nil, errors.New("dcv: rfc2136: a TSIG secret is set but no TSIG key name")
	case cfg.TSIGSecret == "":
		return nil, fmt.Errorf("dcv: rfc2136: TSIG key %q has no secret", cfg.TSIGKey)
	default:
		// Checked now so that a mistyped secret fails at start-up, not at
		// the first order; the error never repeats the secret.
		if _, err := base64.StdEncoding.DecodeString(cfg.TSIGSecret); err != nil {
			return nil, fmt.Errorf("dcv: rfc2136: the secret of TSIG key %q is not valid base64", cfg.TSIGKey)
		}
		name := strings.ToLower(cfg.TSIGAlgorithm)
		if name == "" {
			name = DefaultTSIGAlgorithm
		}
		alg, ok := tsigAlgorithms[strings.TrimSuffix(name, ".")]
		if !ok {
			return nil, fmt.Errorf("dcv: rfc2136: TSIG algorithm %q is not supported (use hmac-sha256, hmac-sha512, hmac-sha384, hmac-sha224 or hmac-sha1)", cfg.TSIGAlgorithm)
		}
		p.key = dns.CanonicalName(cfg.TSIGKey)
		p.secret = cfg.TSIGSecret
		p.alg = alg
	}
	return p, nil
}

// Method implements Publisher.
func (p *RFC2136) Method() string { return MethodDNSProvider }

// String describes the Publisher for logs, without the secret.
func (p *RFC2136) String() string {
	return fmt.Sprintf("rfc2136(server=%s zone=%q key=%q)", p.server, p.zone, strings.TrimSuffix(p.key, "."))
}

// Publish implements Publisher: an update adding the record. Adding a
// record that exists is a no-op (RFC 2136 3.4.2.2), so a retried Publish is
// harmless; a CNAME replaces the name's CNAME.
func (p *RFC2136) Publish(ctx context.Context, r Record) error {
	return p.update(ctx, r, true)
}

// Unpublish implements Publisher: an update deleting this one record, so
// other values at the same name (another order's) stay.
func (p *RFC2136) Unpublish(ctx context.Context, r Record) error {
	return p.update(ctx, r, false)
}

func (p *RFC2136) update(ctx context.Context, r Record, add bool) error {
	rec, err := normalize(r)
	if err != nil {
		return err
	}
	what := "adding"
	if !add {
		what = "deleting"
	}
	what = fmt.Sprintf("%s %s %s", what, rec.Type, rec.Name)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	zone := p.zone
	if zone == "" {
		if zone, err = p.findZone(ctx, rec.Name); err != nil {
			return fmt.Errorf("dcv: rfc2136: %s: %w", what, err)
		}
	} else if !dns.IsSubDomain(zone+".", rec.Name+".") {
		return fmt.Errorf("dcv: rfc2136: %s: the name is not inside the configured zone %s", what, zone)
	}
	m := new(dns.Msg)
	m.SetUpdate(zone + ".")
	rr := newRR(rec.Name, rec.Type, rec.Value, p.ttl)
	if add {
		m.Insert([]dns.RR{rr})
	} else {
		m.Remove([]dns.RR{rr})
	}
	c := &dns.Client{Net: p.net}
	if p.key != "" {
		m.SetTsig(p.key, p.alg, tsigFudge, time.Now().Unix())
		c.TsigSecret = map[string]string{p.key: p.secret}
	}
	resp, err := exchange(ctx, c, m, p.server)
	if resp != nil && resp.Rcode != dns.RcodeSuccess {
		// A refusal is reported from the rcode even when the unsigned
		// error answer also failed TSIG verification: the rcode is what
		// tells the operator what to fix.
		return fmt.Errorf("dcv: rfc2136: %s in zone %s at %s: %s", what, zone, p.server, p.explain(resp, zone))
	}
	if err != nil {
		if errors.Is(err, dns.ErrSig) || errors.Is(err, dns.ErrTime) || errors.Is(err, dns.ErrSecret) {
			return fmt.Errorf("dcv: rfc2136: %s in zone %s at %s: the server's answer did not carry a valid signature for TSIG key %q (%v); the update may or may not have been applied",
				what, zone, p.server, strings.TrimSuffix(p.key, "."), err)
		}
		return fmt.Errorf("dcv: rfc2136: %s in zone %s at %s: %w", what, zone, p.server, err)
	}
	return nil
}

// explain turns an update's error rcode, and the TSIG error it may carry,
// into what the operator has to change.
func (p *RFC2136) explain(resp *dns.Msg, zone string) string {
	key := strings.TrimSuffix(p.key, ".")
	rcode := dns.RcodeToString[resp.Rcode]
	if t := resp.IsTsig(); t != nil && t.Error != dns.RcodeSuccess {
		alg := strings.TrimSuffix(p.alg, ".")
		switch t.Error {
		case dns.RcodeBadSig:
			return fmt.Sprintf("%s/BADSIG: the server rejected the signature; the secret or the algorithm (%s) of TSIG key %q differs from the server's", rcode, alg, key)
		case dns.RcodeBadKey:
			return fmt.Sprintf("%s/BADKEY: the server does not know TSIG key %q with algorithm %s", rcode, key, alg)
		case dns.RcodeBadTime:
			return fmt.Sprintf("%s/BADTIME: this machine's clock and the server's differ by more than %d seconds", rcode, tsigFudge)
		default:
			return fmt.Sprintf("%s, TSIG error %s", rcode, dns.RcodeToString[int(t.Error)])
		}
	}
	switch resp.Rcode {
	case dns.RcodeNotAuth:
		if key == "" {
			return fmt.Sprintf("NOTAUTH: the server is not authoritative for zone %s or wants a TSIG key", zone)
		}
		return fmt.Sprintf("NOTAUTH: the server is not authoritative for zone %s or does not accept TSIG key %q", zone, key)
	case dns.RcodeRefused:
		if key == "" {
			return "REFUSED: unsigned updates from this address are not allowed (allow-update / update-policy)"
		}
		return fmt.Sprintf("REFUSED: TSIG key %q may not update this name (allow-update / update-policy)", key)
	case dns.RcodeNotZone:
		return fmt.Sprintf("NOTZONE: the name is not inside zone %s", zone)
	default:
		return rcode
	}
}

// findZone finds the zone holding name by asking the server for its SOA: an
// authoritative server answers with the SOA of the apex, in the answer
// section at the apex and in the authority section below it.
func (p *RFC2136) findZone(ctx context.Context, name string) (string, error) {
	m := new(dns.Msg)
	m.SetQuestion(name+".", dns.TypeSOA)
	m.RecursionDesired = false
	resp, err := exchange(ctx, &dns.Client{Net: p.net}, m, p.server)
	if err != nil {
		return "", fmt.Errorf("finding the zone of %s at %s: %w", name, p.server, err)
	}
	for _, rr := range append(resp.Answer, resp.Ns...) {
		if soa, ok := rr.(*dns.SOA); ok && dns.IsSubDomain(soa.Hdr.Name, name+".") {
			return canonical(soa.Hdr.Name), nil
		}
	}
	return "", fmt.Errorf("finding the zone of %s: %s holds no zone above it (answer %s); set zone", name, p.server, dns.RcodeToString[resp.Rcode])
}
