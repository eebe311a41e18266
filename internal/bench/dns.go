package bench

import (
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// TXTRecords is where the load generator publishes dns-01 answers. The
// bench's own DNSServer implements it, and so does
// validationtest.DNSServer, which lets tests share a gateway's DNS server.
type TXTRecords interface {
	AddTXT(name string, values ...string)
	RemoveTXT(name, value string)
}

// DNSServer is a minimal authoritative DNS server for the whole tree, on
// UDP and TCP at one loopback port: it answers TXT queries from the records
// the bench publishes and every other query with an empty NOERROR answer
// (so CAA lookups find no CAA and permit issuance). The server under test
// uses it as its resolver.
type DNSServer struct {
	addr    string
	servers []*dns.Server

	mu  sync.RWMutex
	txt map[string][]string // by lower-case FQDN
}

// ListenDNS starts a DNSServer on addr (HOST:PORT; port 0 picks a port free
// for both UDP and TCP).
func ListenDNS(addr string) (*DNSServer, error) {
	pc, l, err := listenSamePort(addr)
	if err != nil {
		return nil, err
	}
	s := &DNSServer{addr: pc.LocalAddr().String(), txt: map[string][]string{}}
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: s},
		{Listener: l, Handler: s},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		errc := make(chan error, 1)
		go func() { errc <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-errc:
			s.Close()
			pc.Close()
			l.Close()
			return nil, fmt.Errorf("dns server: %w", err)
		}
		s.servers = append(s.servers, srv)
	}
	return s, nil
}

func listenSamePort(addr string) (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns server: %w", err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		lastErr = err
		if _, port, _ := net.SplitHostPort(addr); port != "0" {
			break // a fixed port: retrying cannot help
		}
	}
	return nil, nil, fmt.Errorf("dns server: %w", lastErr)
}

// Addr is the server's HOST:PORT.
func (s *DNSServer) Addr() string { return s.addr }

// Close stops the server.
func (s *DNSServer) Close() {
	for _, srv := range s.servers {
		_ = srv.Shutdown()
	}
	s.servers = nil
}

// AddTXT publishes TXT values at name.
func (s *DNSServer) AddTXT(name string, values ...string) {
	name = dns.CanonicalName(name)
	s.mu.Lock()
	s.txt[name] = append(s.txt[name], values...)
	s.mu.Unlock()
}

// RemoveTXT withdraws one TXT value from name.
func (s *DNSServer) RemoveTXT(name, value string) {
	name = dns.CanonicalName(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.txt[name]
	for i, v := range vs {
		if v == value {
			vs = append(vs[:i], vs[i+1:]...)
			break
		}
	}
	if len(vs) == 0 {
		delete(s.txt, name)
	} else {
		s.txt[name] = vs
	}
}

// Len is the number of names holding TXT records.
func (s *DNSServer) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.txt)
}

// ServeDNS implements dns.Handler.
func (s *DNSServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
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
	if q.Qtype == dns.TypeTXT {
		name := dns.CanonicalName(q.Name)
		s.mu.RLock()
		for _, v := range s.txt[name] {
			m.Answer = append(m.Answer, &dns.TXT{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 0},
				Txt: splitTXT(v),
			})
		}
		s.mu.RUnlock()
	}
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
		if w.LocalAddr().Network() == "udp" {
			m.Truncate(int(opt.UDPSize()))
		}
	} else if w.LocalAddr().Network() == "udp" {
		m.Truncate(dns.MinMsgSize)
	}
	_ = w.WriteMsg(m)
}

func splitTXT(v string) []string {
	if len(v) <= 255 {
		return []string{v}
	}
	var out []string
	for len(v) > 255 {
		out = append(out, v[:255])
		v = v[255:]
	}
	return append(out, v)
}

// challengeName is where dns-01 looks for identifier's TXT record.
func challengeName(identifier string) string {
	return "_acme-challenge." + strings.TrimPrefix(identifier, "*.")
}
