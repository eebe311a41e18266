package dcv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Defaults of DelegatedConfig.
const (
	// DefaultTTL is the TTL of the answers a DelegatedZone gives, and of
	// its negative answers: short, so that a brand that looked before the
	// record was published sees it soon after.
	DefaultTTL = 60 * time.Second
	// DefaultRecordLifetime is how long a published record lives in the
	// store if nobody unpublishes it: a little past the 30-day deadline of
	// an OV/EV order, so a record is never lost while its order can still
	// be validated, and never kept forever after a crash.
	DefaultRecordLifetime = 31 * 24 * time.Hour
)

// DefaultLabels are the record labels Instructions asks a domain owner to
// delegate: "_dnsauth" is where Tencent, Alibaba and DigiCert's
// dns-txt-token look.
var DefaultLabels = []string{"_dnsauth"}

// queryTimeout bounds the store lookup behind one DNS query; a resolver
// retries after about that long anyway.
const queryTimeout = 2 * time.Second

// entType marks an empty non-terminal: a name of the zone with no records of
// its own but with records below it (example.com.<zone> when
// _dnsauth.example.com.<zone> exists). Such a name must answer NOERROR, not
// NXDOMAIN: a resolver that minimises query names (RFC 9156) asks for it
// first and, told NXDOMAIN, would take the whole subtree as absent (RFC
// 8020). The marker is never served.
const entType = "ENT"

// DelegatedConfig configures a DelegatedZone.
type DelegatedConfig struct {
	// Zone is the zone acmegw answers, e.g. "dcv.acmegw.example". Its
	// parent must delegate it (NS records) to the addresses Listen is
	// reachable at.
	Zone string
	// Listen is the UDP and TCP address of the authoritative server, ":53"
	// in production; a port of 0 picks one port free for both.
	Listen string
	// NS are the zone's name servers, as the parent's NS records name
	// them; the first is the SOA's primary. At least one is required.
	NS []string
	// Glue gives the addresses of name servers named inside Zone (e.g.
	// "ns1.dcv.acmegw.example"), which the zone must then answer itself.
	Glue map[string][]netip.Addr
	// TTL is the TTL of answers and of negative answers; DefaultTTL if 0.
	TTL time.Duration
	// RecordLifetime bounds how long a record stays published without
	// Unpublish; DefaultRecordLifetime if 0.
	RecordLifetime time.Duration
	// Store holds the published records; a MemoryStore if nil. Use a
	// RedisStore when several acmegw instances serve the zone.
	Store RecordStore
	// CheckDelegation makes Publish first verify, through Resolver, that
	// the domain owner's CNAME into the zone exists, and fail with a
	// *DelegationError naming the exact record to add if it does not,
	// instead of letting the brand's check fail later with a vaguer reason.
	CheckDelegation bool
	// Resolver is the recursive resolver (HOST:PORT, or HOST for port 53)
	// CheckDelegation asks; the first server of /etc/resolv.conf if empty.
	Resolver string
	// Labels are the record labels Instructions lists; DefaultLabels if
	// empty.
	Labels []string
	// Logger receives store failures met while answering; slog.Default()
	// if nil.
	Logger *slog.Logger
}

// DelegatedZone is the "delegated" Publisher: an authoritative DNS server
// for one zone that serves the brands' DCV records.
//
// The domain owner adds once, at their own DNS operator, a CNAME from the
// brand's record name into the zone; from then on every brand validation of
// that domain is answered by acmegw, with no DNS credential in the gateway.
// The mapping is one rule, with no exception: the record name R is served at
//
//	R.<zone>        e.g. _dnsauth.example.com → _dnsauth.example.com.dcv.acmegw.example
//
// It is one-to-one (two record names never share a target), needs no state
// to compute, and tells whoever reads the zone which record it stands for.
// Target computes it and Instructions writes the owner's records out.
//
// Delegation fits record names fixed per domain (_dnsauth, _acme-challenge).
// It cannot serve names a brand makes up per order (DigiCert's
// dns-cname-token uses a random label), since the owner would need a new
// CNAME each time: use a dns-provider Publisher for those. A CNAME-type
// record is served too, but a brand that asks for the CNAME at R itself sees
// the owner's delegation CNAME, not the brand's value; prefer TXT methods
// with delegation.
type DelegatedZone struct {
	cfg      DelegatedConfig
	zone     string // canonical, no trailing dot
	zoneFQDN string // with the trailing dot, as answers carry it
	store    RecordStore
	resolver string
	labels   []string
	log      *slog.Logger

	soa  *dns.SOA
	ns   []dns.RR
	glue map[string][]dns.RR // by FQDN

	mu      sync.Mutex
	servers []*dns.Server
	addr    string
	done    chan struct{} // closed by Close, ends the Start context watcher
}

var (
	_ Publisher   = (*DelegatedZone)(nil)
	_ Service     = (*DelegatedZone)(nil)
	_ dns.Handler = (*DelegatedZone)(nil)
)

// NewDelegatedZone checks cfg and returns a zone that accepts Publish at
// once; Start serves it over DNS. An instance that only publishes (into a
// shared Store) need never Start.
func NewDelegatedZone(cfg DelegatedConfig) (*DelegatedZone, error) {
	zone := canonical(cfg.Zone)
	if zone == "" {
		return nil, errors.New("dcv: delegated: zone is required")
	}
	if _, ok := dns.IsDomainName(zone + "."); !ok || !strings.Contains(zone, ".") {
		return nil, fmt.Errorf("dcv: delegated: zone %q is not a valid DNS name below a TLD", cfg.Zone)
	}
	if len(cfg.NS) == 0 {
		return nil, fmt.Errorf("dcv: delegated: zone %s needs at least one name server (ns) for its SOA and NS records", zone)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.RecordLifetime <= 0 {
		cfg.RecordLifetime = DefaultRecordLifetime
	}
	z := &DelegatedZone{
		cfg:      cfg,
		zone:     zone,
		zoneFQDN: zone + ".",
		store:    cfg.Store,
		labels:   cfg.Labels,
		log:      cfg.Logger,
		glue:     map[string][]dns.RR{},
	}
	if z.store == nil {
		z.store = NewMemoryStore()
	}
	if len(z.labels) == 0 {
		z.labels = DefaultLabels
	}
	if z.log == nil {
		z.log = slog.Default()
	}
	ttl := uint32(cfg.TTL / time.Second)
	for _, ns := range cfg.NS {
		n := canonical(ns)
		if _, ok := dns.IsDomainName(n + "."); !ok || n == "" {
			return nil, fmt.Errorf("dcv: delegated: name server %q is not a valid DNS name", ns)
		}
		z.ns = append(z.ns, &dns.NS{
			Hdr: dns.RR_Header{Name: z.zoneFQDN, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: ttl},
			Ns:  n + ".",
		})
	}
	z.soa = &dns.SOA{
		Hdr: dns.RR_Header{Name: z.zoneFQDN, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:  z.ns[0].(*dns.NS).Ns,
		// RFC 2142's conventional mailbox; nobody writes to it.
		Mbox: "hostmaster." + z.zoneFQDN,
		// The serial stays 1: records change through the store, not by
		// zone transfer, and every instance must answer the same SOA.
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  604800,
		Minttl:  ttl,
	}
	for host, addrs := range cfg.Glue {
		h := canonical(host)
		if !dns.IsSubDomain(z.zoneFQDN, h+".") {
			return nil, fmt.Errorf("dcv: delegated: glue for %s, which is outside zone %s (only in-zone name servers need it here)", host, zone)
		}
		for _, a := range addrs {
			hdr := dns.RR_Header{Name: h + ".", Class: dns.ClassINET, Ttl: ttl}
			if a.Is4() {
				hdr.Rrtype = dns.TypeA
				z.glue[hdr.Name] = append(z.glue[hdr.Name], &dns.A{Hdr: hdr, A: net.IP(a.AsSlice())})
			} else {
				hdr.Rrtype = dns.TypeAAAA
				z.glue[hdr.Name] = append(z.glue[hdr.Name], &dns.AAAA{Hdr: hdr, AAAA: net.IP(a.AsSlice())})
			}
		}
	}
	if cfg.CheckDelegation {
		z.resolver = cfg.Resolver
		if z.resolver == "" {
			rc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
			if err != nil || len(rc.Servers) == 0 {
				return nil, fmt.Errorf("dcv: delegated: check_delegation needs a resolver, and none was configured or found in /etc/resolv.conf: %v", err)
			}
			z.resolver = net.JoinHostPort(rc.Servers[0], rc.Port)
		}
		z.resolver = withPort(z.resolver)
	}
	return z, nil
}

// Method implements Publisher.
func (z *DelegatedZone) Method() string { return MethodDelegated }

// Zone returns the zone's name, lower-case and without the trailing dot.
func (z *DelegatedZone) Zone() string { return z.zone }

// Target returns the name the domain owner's CNAME at r.Name must point to
// (without the trailing dot): r.Name followed by the zone.
func (z *DelegatedZone) Target(r Record) string {
	return canonical(r.Name) + "." + z.zone
}

// Instructions returns the text to give the owner of domain (a leading
// "*." is ignored: a wildcard is validated at its base name) so that
// acmegw can answer brand validation for it: the CNAME records to add, once.
func (z *DelegatedZone) Instructions(domain string) string {
	d := strings.TrimPrefix(canonical(domain), "*.")
	var b strings.Builder
	fmt.Fprintf(&b, "To let acmegw answer certificate authorities' domain validation for %s,\n", d)
	fmt.Fprintf(&b, "add once at the DNS operator of %s:\n\n", d)
	for _, l := range z.labels {
		name := l + "." + d
		fmt.Fprintf(&b, "    %s.  CNAME  %s.\n", name, z.Target(Record{Name: name}))
	}
	b.WriteString("\nKeep no other record (TXT included) at those names: a name with a CNAME can hold nothing else.\n")
	fmt.Fprintf(&b, "They also cover *.%s, and can stay in place for every later order.\n", d)
	return b.String()
}

// DelegationError reports that the domain owner's CNAME into the zone is
// missing or points elsewhere. Its message names the exact record to add.
type DelegationError struct {
	// Name is the brand's record name, e.g. "_dnsauth.example.com".
	Name string
	// Want is the CNAME target the zone serves it at.
	Want string
	// Got is the CNAME target found, or "" when there is none.
	Got string
	// Resolver is the resolver that was asked, and Rcode its answer code.
	Resolver string
	Rcode    string
}

// Error implements error.
func (e *DelegationError) Error() string {
	add := fmt.Sprintf("%s. CNAME %s.", e.Name, e.Want)
	if e.Got == "" {
		return fmt.Sprintf("dcv: delegated: %s has no CNAME into the acmegw zone (resolver %s answered %s); the domain owner must add once: %s",
			e.Name, e.Resolver, e.Rcode, add)
	}
	return fmt.Sprintf("dcv: delegated: %s is a CNAME to %s. instead of %s.; the domain owner must change it to: %s",
		e.Name, e.Got, e.Want, add)
}

// CheckDelegation asks the configured resolver for the CNAME at r.Name and
// returns a *DelegationError unless it points to Target(r). Publish calls it
// when DelegatedConfig.CheckDelegation is set; onboarding tools may call it
// directly.
func (z *DelegatedZone) CheckDelegation(ctx context.Context, r Record) error {
	rec, err := normalize(r)
	if err != nil {
		return err
	}
	resolver := z.resolver
	if resolver == "" {
		return errors.New("dcv: delegated: no resolver configured for checking delegations")
	}
	want := z.Target(rec)
	m := new(dns.Msg)
	m.SetQuestion(rec.Name+".", dns.TypeCNAME)
	m.SetEdns0(1232, false)
	resp, err := exchange(ctx, &dns.Client{}, m, resolver)
	if err != nil {
		return fmt.Errorf("dcv: delegated: looking up the CNAME at %s through %s: %w", rec.Name, resolver, err)
	}
	if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		return fmt.Errorf("dcv: delegated: looking up the CNAME at %s through %s: answer %s", rec.Name, resolver, dns.RcodeToString[resp.Rcode])
	}
	var got string
	for _, rr := range resp.Answer {
		if c, ok := rr.(*dns.CNAME); ok && canonical(c.Hdr.Name) == rec.Name {
			got = canonical(c.Target)
		}
	}
	if got == want {
		return nil
	}
	return &DelegationError{Name: rec.Name, Want: want, Got: got, Resolver: resolver, Rcode: dns.RcodeToString[resp.Rcode]}
}

// Publish implements Publisher: it stores the value at Target(r), where
// every instance serving the zone answers it.
func (z *DelegatedZone) Publish(ctx context.Context, r Record) error {
	rec, owner, err := z.prepare(r)
	if err != nil {
		return err
	}
	if z.cfg.CheckDelegation {
		if err := z.CheckDelegation(ctx, rec); err != nil {
			return err
		}
	}
	// A name holds either one CNAME or other records (RFC 1034 3.6.2);
	// refusing here beats serving a broken answer. Two instances racing
	// on one name could still both write, which the brand then sees as a
	// failed check, not as a wrong certificate.
	cur, err := z.store.Get(ctx, owner)
	if err != nil {
		return fmt.Errorf("dcv: delegated: publishing %s %s: %w", rec.Type, rec.Name, err)
	}
	for _, c := range cur {
		switch {
		case c.Type == entType:
		case rec.Type == TypeCNAME && c.Type == TypeCNAME && c.Value != rec.Value:
			return fmt.Errorf("dcv: delegated: %s already has a CNAME to %s; a name holds one CNAME", rec.Name, c.Value)
		case (rec.Type == TypeCNAME) != (c.Type == TypeCNAME):
			return fmt.Errorf("dcv: delegated: %s already has a %s record; a CNAME cannot share a name with other records", rec.Name, c.Type)
		}
	}
	// Ancestors first, so that no resolver ever sees the record while one
	// of its parents still answers NXDOMAIN.
	marker := entMarker(rec)
	for _, a := range z.ancestors(owner) {
		if err := z.store.Put(ctx, a, entType, marker, z.cfg.RecordLifetime); err != nil {
			return fmt.Errorf("dcv: delegated: publishing %s %s: %w", rec.Type, rec.Name, err)
		}
	}
	if err := z.store.Put(ctx, owner, rec.Type, rec.Value, z.cfg.RecordLifetime); err != nil {
		return fmt.Errorf("dcv: delegated: publishing %s %s: %w", rec.Type, rec.Name, err)
	}
	return nil
}

// Unpublish implements Publisher. Other values at the same name stay.
func (z *DelegatedZone) Unpublish(ctx context.Context, r Record) error {
	rec, owner, err := z.prepare(r)
	if err != nil {
		return err
	}
	if err := z.store.Delete(ctx, owner, rec.Type, rec.Value); err != nil {
		return fmt.Errorf("dcv: delegated: unpublishing %s %s: %w", rec.Type, rec.Name, err)
	}
	marker := entMarker(rec)
	for _, a := range z.ancestors(owner) {
		if err := z.store.Delete(ctx, a, entType, marker); err != nil {
			return fmt.Errorf("dcv: delegated: unpublishing %s %s: %w", rec.Type, rec.Name, err)
		}
	}
	return nil
}

// prepare normalizes r and returns the store name it is served at.
func (z *DelegatedZone) prepare(r Record) (Record, string, error) {
	rec, err := normalize(r)
	if err != nil {
		return Record{}, "", err
	}
	if dns.IsSubDomain(z.zoneFQDN, rec.Name+".") {
		return Record{}, "", fmt.Errorf("dcv: delegated: record name %s is inside the zone %s itself; pass the brand's record name", rec.Name, z.zone)
	}
	owner := z.Target(rec)
	if _, ok := dns.IsDomainName(owner + "."); !ok || len(owner) > 253 {
		return Record{}, "", fmt.Errorf("dcv: delegated: %s is too long to be served below %s (%d characters, 253 at most)", rec.Name, z.zone, len(owner))
	}
	return rec, owner, nil
}

// ancestors lists the names strictly between owner and the apex.
func (z *DelegatedZone) ancestors(owner string) []string {
	rel := strings.TrimSuffix(owner, "."+z.zone)
	var out []string
	for {
		_, rest, ok := strings.Cut(rel, ".")
		if !ok {
			return out
		}
		rel = rest
		out = append(out, rel+"."+z.zone)
	}
}

// entMarker identifies one record among the markers its ancestors hold, so
// that unpublishing one record leaves the others' markers in place.
func entMarker(r Record) string {
	sum := sha256.Sum256([]byte(r.Name + "\x00" + r.Type + "\x00" + r.Value))
	return hex.EncodeToString(sum[:12])
}

// Start binds Listen over UDP and TCP and serves the zone until Close or
// until ctx ends, whichever comes first. It returns once both listeners
// accept queries.
func (z *DelegatedZone) Start(ctx context.Context) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.servers != nil {
		return fmt.Errorf("dcv: delegated: zone %s is already being served on %s", z.zone, z.addr)
	}
	if z.cfg.Listen == "" {
		return fmt.Errorf("dcv: delegated: zone %s has no listen address", z.zone)
	}
	pc, l, err := listenBoth(z.cfg.Listen)
	if err != nil {
		return fmt.Errorf("dcv: delegated: serving zone %s: %w", z.zone, err)
	}
	servers := []*dns.Server{
		{PacketConn: pc, Handler: z, UDPSize: dns.DefaultMsgSize},
		{Listener: l, Handler: z},
	}
	for i, srv := range servers {
		started := make(chan struct{})
		failed := make(chan error, 1)
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { failed <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-failed:
			for _, s := range servers[:i] {
				_ = s.Shutdown()
			}
			pc.Close()
			l.Close()
			return fmt.Errorf("dcv: delegated: serving zone %s on %s: %w", z.zone, pc.LocalAddr(), err)
		}
	}
	z.servers = servers
	z.addr = pc.LocalAddr().String()
	z.done = make(chan struct{})
	go func(done chan struct{}) {
		select {
		case <-ctx.Done():
			_ = z.Close()
		case <-done:
		}
	}(z.done)
	return nil
}

// listenBoth binds addr for UDP and TCP on the same port. For port 0 it
// retries, since another process may take the TCP port between the binds.
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen address %q: %w", addr, err)
	}
	attempts := 1
	if port == "0" {
		attempts = 20
	}
	var lastErr error
	for range attempts {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l, nil
		}
		lastErr = err
		pc.Close()
	}
	return nil, nil, lastErr
}

// Addr returns the address the zone is served on (the UDP and TCP port are
// the same), or "" before Start.
func (z *DelegatedZone) Addr() string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.addr
}

// Close stops serving. Published records stay in the store.
func (z *DelegatedZone) Close() error {
	z.mu.Lock()
	servers := z.servers
	z.servers = nil
	if z.done != nil {
		close(z.done)
		z.done = nil
	}
	z.mu.Unlock()
	var errs []error
	for _, s := range servers {
		if err := s.Shutdown(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dcv: delegated: stopping zone %s: %w", z.zone, err)
	}
	return nil
}

// ServeDNS implements dns.Handler: authoritative answers (AA set) for the
// zone, REFUSED for any other name, since the server is no resolver.
func (z *DelegatedZone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	switch {
	case req.Opcode != dns.OpcodeQuery:
		m.SetRcode(req, dns.RcodeNotImplemented)
		_ = w.WriteMsg(m)
		return
	case len(req.Question) != 1:
		m.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	m.SetReply(req)
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	if (q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY) || !dns.IsSubDomain(z.zoneFQDN, name) {
		m.Rcode = dns.RcodeRefused
	} else {
		m.Authoritative = true
		z.answer(m, name, q.Qtype)
	}
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = int(max(opt.UDPSize(), dns.MinMsgSize))
		m.SetEdns0(min(uint16(size), dns.DefaultMsgSize), false)
	}
	if w.LocalAddr().Network() == "udp" {
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// answer fills m for name, a name inside the zone.
func (z *DelegatedZone) answer(m *dns.Msg, name string, qtype uint16) {
	if name == z.zoneFQDN {
		switch qtype {
		case dns.TypeSOA:
			m.Answer = append(m.Answer, z.soa)
		case dns.TypeNS:
			m.Answer = append(m.Answer, z.ns...)
			for _, ns := range z.ns {
				m.Extra = append(m.Extra, z.glue[ns.(*dns.NS).Ns]...)
			}
		case dns.TypeANY:
			m.Answer = append(append(m.Answer, z.soa), z.ns...)
		default:
			m.Ns = append(m.Ns, z.soa)
		}
		return
	}
	if glue, ok := z.glue[name]; ok {
		for _, rr := range glue {
			if rr.Header().Rrtype == qtype || qtype == dns.TypeANY {
				m.Answer = append(m.Answer, rr)
			}
		}
		if len(m.Answer) == 0 {
			m.Ns = append(m.Ns, z.soa)
		}
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	recs, err := z.store.Get(ctx, canonical(name))
	if err != nil {
		// SERVFAIL makes resolvers try another name server (another
		// acmegw instance) rather than cache a wrong negative answer.
		z.log.Error("dcv: delegated zone lookup failed", "zone", z.zone, "name", canonical(name), "err", err)
		m.Rcode = dns.RcodeServerFailure
		m.Authoritative = false
		return
	}
	var cname *StoredRecord
	for i := range recs {
		if recs[i].Type == TypeCNAME {
			cname = &recs[i]
		}
	}
	ttl := z.cfg.TTL
	switch {
	case cname != nil && qtype != dns.TypeCNAME:
		// The CNAME answers every type (RFC 1034 3.6.2). Its target lies
		// outside the zone in practice, so it is not chased here.
		m.Answer = append(m.Answer, newRR(name, TypeCNAME, cname.Value, ttl))
	default:
		for _, r := range recs {
			if r.Type == entType {
				continue
			}
			if qtype == dns.TypeANY || dns.StringToType[r.Type] == qtype {
				m.Answer = append(m.Answer, newRR(name, r.Type, r.Value, ttl))
			}
		}
	}
	if len(m.Answer) == 0 {
		if len(recs) == 0 {
			m.Rcode = dns.RcodeNameError
		}
		// The SOA tells resolvers how long to cache the negative answer.
		m.Ns = append(m.Ns, z.soa)
	}
}
