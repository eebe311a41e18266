// Package validationtest holds test helpers for code that drives the
// validation authority: a programmable DNS server on loopback and a builder
// for tls-alpn-01 challenge certificates. It deliberately does not import
// package validation, so validation's own tests can use it too.
package validationtest

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// DNSServer is a DNS server on 127.0.0.1, UDP and TCP on the same port, that
// answers from records the test sets. It answers every name (it is
// authoritative for the whole tree), returns NXDOMAIN for names with no
// records and no names below them, and NODATA for names that exist without
// records of the type asked for. Point validation.Config.Resolver at Addr.
type DNSServer struct {
	tb   testing.TB
	addr string

	mu      sync.RWMutex
	records map[string][]dns.RR // by lower-case FQDN
	rcodes  map[string]int
	drops   map[string]bool
	chase   bool

	udpQueries atomic.Int64
	tcpQueries atomic.Int64
}

// NewDNSServer starts a DNSServer on a free loopback port and stops it when
// the test ends.
func NewDNSServer(tb testing.TB) *DNSServer {
	tb.Helper()
	s := &DNSServer{
		tb:      tb,
		records: map[string][]dns.RR{},
		rcodes:  map[string]int{},
		drops:   map[string]bool{},
	}
	pc, l := listenSamePort(tb)
	s.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: s},
		{Listener: l, Handler: s},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() {
			// Serving ends with an error once Shutdown closes the socket.
			_ = srv.ActivateAndServe()
		}()
		<-started
		tb.Cleanup(func() { _ = srv.Shutdown() })
	}
	return s
}

// listenSamePort finds a port free for both UDP and TCP; another process may
// take the TCP side between the two binds, hence the retries.
func listenSamePort(tb testing.TB) (net.PacketConn, net.Listener) {
	tb.Helper()
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("validationtest: listening on UDP: %v", err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l
		}
		lastErr = err
		pc.Close()
	}
	tb.Fatalf("validationtest: no port free for both UDP and TCP: %v", lastErr)
	return nil, nil
}

// Addr returns the server's address as HOST:PORT.
func (s *DNSServer) Addr() string { return s.addr }

// Queries returns how many queries arrived over UDP and over TCP, which lets
// tests see the truncation fallback happen.
func (s *DNSServer) Queries() (udp, tcp int64) {
	return s.udpQueries.Load(), s.tcpQueries.Load()
}

// AddRR adds a record; the typed helpers below cover the common cases.
func (s *DNSServer) AddRR(rr dns.RR) {
	name := dns.CanonicalName(rr.Header().Name)
	rr.Header().Name = name
	if rr.Header().Class == 0 {
		rr.Header().Class = dns.ClassINET
	}
	if rr.Header().Ttl == 0 {
		rr.Header().Ttl = 60
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[name] = append(s.records[name], rr)
}

// AddRecord adds a record written in zone-file syntax, such as
// "example.com. 60 IN CAA 0 issue \"acmegw.test\"".
func (s *DNSServer) AddRecord(zoneLine string) {
	s.tb.Helper()
	rr, err := dns.NewRR(zoneLine)
	if err != nil || rr == nil {
		s.tb.Fatalf("validationtest: bad record %q: %v", zoneLine, err)
	}
	s.AddRR(rr)
}

func hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: dns.CanonicalName(name), Rrtype: t, Class: dns.ClassINET, Ttl: 60}
}

// AddTXT adds one TXT record per value at name.
func (s *DNSServer) AddTXT(name string, values ...string) {
	for _, v := range values {
		s.AddRR(&dns.TXT{Hdr: hdr(name, dns.TypeTXT), Txt: splitTXT(v)})
	}
}

// splitTXT honours the 255-byte limit of one character-string, as real zone
// data would.
func splitTXT(v string) []string {
	var out []string
	for len(v) > 255 {
		out = append(out, v[:255])
		v = v[255:]
	}
	return append(out, v)
}

// AddA adds A records at name.
func (s *DNSServer) AddA(name string, ips ...string) {
	s.tb.Helper()
	for _, ip := range ips {
		a, err := netip.ParseAddr(ip)
		if err != nil || !a.Is4() {
			s.tb.Fatalf("validationtest: AddA(%q): %q is not an IPv4 address", name, ip)
		}
		s.AddRR(&dns.A{Hdr: hdr(name, dns.TypeA), A: net.IP(a.AsSlice())})
	}
}

// AddAAAA adds AAAA records at name.
func (s *DNSServer) AddAAAA(name string, ips ...string) {
	s.tb.Helper()
	for _, ip := range ips {
		a, err := netip.ParseAddr(ip)
		if err != nil || !a.Is6() || a.Is4In6() {
			s.tb.Fatalf("validationtest: AddAAAA(%q): %q is not an IPv6 address", name, ip)
		}
		s.AddRR(&dns.AAAA{Hdr: hdr(name, dns.TypeAAAA), AAAA: net.IP(a.AsSlice())})
	}
}

// AddCNAME makes name an alias of target.
func (s *DNSServer) AddCNAME(name, target string) {
	s.AddRR(&dns.CNAME{Hdr: hdr(name, dns.TypeCNAME), Target: dns.CanonicalName(target)})
}

// AddCAA adds a CAA record at name.
func (s *DNSServer) AddCAA(name string, flag uint8, tag, value string) {
	s.AddRR(&dns.CAA{Hdr: hdr(name, dns.TypeCAA), Flag: flag, Tag: tag, Value: value})
}

// Remove deletes every record at name, and any SetRcode or SetDrop for it.
func (s *DNSServer) Remove(name string) {
	name = dns.CanonicalName(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, name)
	delete(s.rcodes, name)
	delete(s.drops, name)
}

// RemoveTXT deletes the TXT record with value at name, leaving the others;
// ACME clients clean up one challenge at a time.
func (s *DNSServer) RemoveTXT(name, value string) {
	name = dns.CanonicalName(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.records[name][:0]
	for _, rr := range s.records[name] {
		if t, ok := rr.(*dns.TXT); ok && strings.Join(t.Txt, "") == value {
			continue
		}
		kept = append(kept, rr)
	}
	if len(kept) == 0 {
		delete(s.records, name)
	} else {
		s.records[name] = kept
	}
}

// SetRcode makes every query for name fail with rcode (for example
// dns.RcodeServerFailure or dns.RcodeRefused); dns.RcodeSuccess undoes it.
func (s *DNSServer) SetRcode(name string, rcode int) {
	name = dns.CanonicalName(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if rcode == dns.RcodeSuccess {
		delete(s.rcodes, name)
	} else {
		s.rcodes[name] = rcode
	}
}

// SetDrop makes the server ignore queries for name, so that clients time
// out.
func (s *DNSServer) SetDrop(name string, drop bool) {
	name = dns.CanonicalName(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if drop {
		s.drops[name] = true
	} else {
		delete(s.drops, name)
	}
}

// SetChaseCNAME chooses whether answers include the records that a CNAME
// points to, as a recursive resolver's would (true), or only the CNAME, as
// an authoritative server for another zone would (false, the default).
func (s *DNSServer) SetChaseCNAME(chase bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chase = chase
}

// maxChase stops CNAME loops in the test data from hanging the server.
const maxChase = 16

// ServeDNS implements dns.Handler.
func (s *DNSServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	udp := w.LocalAddr().Network() == "udp"
	if udp {
		s.udpQueries.Add(1)
	} else {
		s.tcpQueries.Add(1)
	}
	m := new(dns.Msg)
	if len(r.Question) != 1 {
		m.SetRcode(r, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	m.SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = true
	q := r.Question[0]
	name := dns.CanonicalName(q.Name)

	s.mu.RLock()
	if s.drops[name] {
		s.mu.RUnlock()
		return
	}
	if rc, ok := s.rcodes[name]; ok {
		s.mu.RUnlock()
		m.Rcode = rc
		_ = w.WriteMsg(m)
		return
	}
	cur := name
	for range maxChase {
		var cname *dns.CNAME
		for _, rr := range s.records[cur] {
			if c, ok := rr.(*dns.CNAME); ok && q.Qtype != dns.TypeCNAME {
				cname = c
			}
		}
		if cname != nil {
			m.Answer = append(m.Answer, dns.Copy(cname))
			if !s.chase {
				break
			}
			cur = dns.CanonicalName(cname.Target)
			continue
		}
		for _, rr := range s.records[cur] {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, dns.Copy(rr))
			}
		}
		if len(m.Answer) == 0 && !s.existsLocked(cur) {
			m.Rcode = dns.RcodeNameError
		}
		break
	}
	s.mu.RUnlock()

	size := dns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
		size = int(opt.UDPSize())
	}
	if udp {
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// existsLocked reports whether name has records or names below it (an
// empty non-terminal), the difference between NODATA and NXDOMAIN.
func (s *DNSServer) existsLocked(name string) bool {
	if len(s.records[name]) > 0 {
		return true
	}
	for n := range s.records {
		if strings.HasSuffix(n, "."+name) {
			return true
		}
	}
	return false
}

// String describes the server for test logs.
func (s *DNSServer) String() string { return fmt.Sprintf("validationtest.DNSServer(%s)", s.addr) }
