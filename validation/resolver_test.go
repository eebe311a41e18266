package validation

import (
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/acmegw/acmegw/validation/validationtest"
)

func TestResolverTXT(t *testing.T) {
	srv := validationtest.NewDNSServer(t)
	srv.AddTXT("txt.example.test", "one", "two")
	r := NewResolver(srv.Addr())
	got, err := r.LookupTXT(t.Context(), "TXT.Example.Test")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("got %q", got)
	}
	srv.RemoveTXT("txt.example.test", "one")
	got, err = r.LookupTXT(t.Context(), "txt.example.test.")
	if err != nil || !slices.Equal(got, []string{"two"}) {
		t.Errorf("after RemoveTXT got %q, %v", got, err)
	}
}

func TestResolverErrors(t *testing.T) {
	srv := validationtest.NewDNSServer(t)
	srv.AddA("exists.example.test", "192.0.2.1")
	srv.AddA("deep.parent.example.test", "192.0.2.1")
	srv.SetRcode("servfail.example.test", dns.RcodeServerFailure)
	srv.SetRcode("refused.example.test", dns.RcodeRefused)
	srv.SetDrop("drop.example.test", true)
	r := NewResolver(srv.Addr())

	tests := []struct {
		name     string
		notFound bool
		timeout  bool
		msg      string
	}{
		{"missing.example.test", true, false, "NXDOMAIN looking up TXT for missing.example.test"},
		{"exists.example.test", true, false, "No TXT records found for exists.example.test"},
		{"parent.example.test", true, false, "No TXT records found for parent.example.test"},
		{"servfail.example.test", false, false, "SERVFAIL looking up TXT for servfail.example.test"},
		{"refused.example.test", false, false, "REFUSED looking up TXT for refused.example.test"},
		{"drop.example.test", false, true, "query timed out looking up TXT for drop.example.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.timeout {
				var cancel func()
				ctx, cancel = contextWithTimeout(t, 300*time.Millisecond)
				defer cancel()
			}
			_, err := r.LookupTXT(ctx, tt.name)
			var de *DNSError
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want a *DNSError", err)
			}
			if de.NotFound() != tt.notFound || de.Timeout() != tt.timeout {
				t.Errorf("NotFound=%v Timeout=%v for %q", de.NotFound(), de.Timeout(), err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got %q, want it to contain %q", err, tt.msg)
			}
		})
	}
}

func TestResolverCNAME(t *testing.T) {
	for _, chase := range []bool{false, true} {
		name := "stub resolver follows"
		if chase {
			name = "server chased"
		}
		t.Run(name, func(t *testing.T) {
			srv := validationtest.NewDNSServer(t)
			srv.SetChaseCNAME(chase)
			srv.AddCNAME("a.example.test", "b.example.test")
			srv.AddCNAME("b.example.test", "c.other.test")
			srv.AddTXT("c.other.test", "end")
			srv.AddCNAME("dangling.example.test", "nowhere.other.test")
			srv.AddCNAME("loop1.example.test", "loop2.example.test")
			srv.AddCNAME("loop2.example.test", "loop1.example.test")
			r := NewResolver(srv.Addr())

			got, err := r.LookupTXT(t.Context(), "a.example.test")
			if err != nil || !slices.Equal(got, []string{"end"}) {
				t.Errorf("chain: got %q, %v", got, err)
			}
			_, err = r.LookupTXT(t.Context(), "dangling.example.test")
			if err == nil || !strings.Contains(err.Error(), "NXDOMAIN looking up TXT for nowhere.other.test") {
				t.Errorf("dangling: got %v", err)
			}
			_, err = r.LookupTXT(t.Context(), "loop1.example.test")
			if err == nil || !strings.Contains(err.Error(), "too many CNAMEs") {
				t.Errorf("loop: got %v", err)
			}
			rrs, err := r.Lookup(t.Context(), "a.example.test", dns.TypeCNAME)
			if err != nil || len(rrs) != 1 || rrs[0].(*dns.CNAME).Target != "b.example.test." {
				t.Errorf("CNAME query: got %v, %v", rrs, err)
			}
		})
	}
}

func TestResolverCNAMEBound(t *testing.T) {
	srv := validationtest.NewDNSServer(t)
	// MaxCNAMEHops aliases are fine; one more is refused.
	for i := range MaxCNAMEHops + 1 {
		srv.AddCNAME(hopName(i), hopName(i+1))
	}
	srv.AddTXT(hopName(MaxCNAMEHops+1), "end")
	r := NewResolver(srv.Addr())
	if got, err := r.LookupTXT(t.Context(), hopName(1)); err != nil || len(got) != 1 {
		t.Errorf("%d hops: got %q, %v", MaxCNAMEHops, got, err)
	}
	if _, err := r.LookupTXT(t.Context(), hopName(0)); err == nil || !strings.Contains(err.Error(), "too many CNAMEs") {
		t.Errorf("%d hops: got %v", MaxCNAMEHops+1, err)
	}
}

func hopName(i int) string { return "hop" + string(rune('a'+i)) + ".example.test" }

func TestResolverTruncationFallsBackToTCP(t *testing.T) {
	srv := validationtest.NewDNSServer(t)
	var want []string
	for i := range 12 {
		v := strings.Repeat(string(rune('a'+i)), 200)
		want = append(want, v)
		srv.AddTXT("big.example.test", v)
	}
	got, err := NewResolver(srv.Addr()).LookupTXT(t.Context(), "big.example.test")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("got %d records, want %d", len(got), len(want))
	}
	if udp, tcp := srv.Queries(); udp != 1 || tcp != 1 {
		t.Errorf("queries: udp=%d tcp=%d, want 1 and 1", udp, tcp)
	}
}

func TestResolverLookupIP(t *testing.T) {
	srv := validationtest.NewDNSServer(t)
	srv.AddA("dual.example.test", "192.0.2.1", "192.0.2.2")
	srv.AddAAAA("dual.example.test", "2001:db8::1")
	srv.AddA("v4.example.test", "192.0.2.3")
	srv.AddTXT("noaddr.example.test", "x")
	srv.SetRcode("servfail.example.test", dns.RcodeServerFailure)
	r := NewResolver(srv.Addr())

	got, err := r.LookupIP(t.Context(), "dual.example.test")
	want := []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}
	if err != nil || len(got) != 3 || got[0] != want[0] || !slices.Contains(got, want[1]) || !slices.Contains(got, want[2]) {
		t.Errorf("dual: got %v, %v; want IPv6 first then %v", got, err, want[1:])
	}
	if got, err := r.LookupIP(t.Context(), "v4.example.test"); err != nil || len(got) != 1 || got[0] != netip.MustParseAddr("192.0.2.3") {
		t.Errorf("v4: got %v, %v", got, err)
	}
	for name, msg := range map[string]string{
		"noaddr.example.test":   "No A or AAAA records found for noaddr.example.test",
		"missing.example.test":  "NXDOMAIN looking up A for missing.example.test",
		"servfail.example.test": "SERVFAIL looking up A",
	} {
		if _, err := r.LookupIP(t.Context(), name); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: got %v, want %q", name, err, msg)
		}
	}
}

func TestNewResolverUsesResolvConf(t *testing.T) {
	if r := NewResolver("192.0.2.53:5353"); r.Server() != "192.0.2.53:5353" {
		t.Errorf("explicit server: got %q", r.Server())
	}
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil || len(cc.Servers) == 0 {
		if _, statErr := os.Stat("/etc/resolv.conf"); statErr == nil {
			t.Skipf("unusable /etc/resolv.conf: %v", err)
		}
		if r := NewResolver(""); r.Server() != "" {
			t.Errorf("without resolv.conf got server %q, want the system resolver", r.Server())
		}
		return
	}
	if r := NewResolver(""); !strings.HasPrefix(r.Server(), strings.Trim(cc.Servers[0], "[]")) &&
		!strings.HasPrefix(r.Server(), "["+cc.Servers[0]) {
		t.Errorf("got %q, want the first nameserver %s", r.Server(), cc.Servers[0])
	}
}

func TestSystemResolverFallback(t *testing.T) {
	// With no server, lookups go through Go's resolver; "localhost" needs
	// no network, as Go answers it from /etc/hosts or by itself.
	r := &Resolver{}
	ips, err := r.LookupIP(t.Context(), "localhost")
	if err != nil || len(ips) == 0 {
		t.Skipf("system resolver cannot resolve localhost here: %v", err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			t.Errorf("localhost resolved to %s", ip)
		}
	}
	if _, err := r.Lookup(t.Context(), "example.test", dns.TypeCAA); err == nil {
		t.Error("CAA through the system resolver did not fail")
	}
}
