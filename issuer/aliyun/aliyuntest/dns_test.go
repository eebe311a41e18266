package aliyuntest

import (
	"context"
	"slices"
	"testing"

	"github.com/acmegw/acmegw/validation/validationtest"
)

// TestLookupTXTFollowsCNAMEs: the DCV check sees a delegated record whether
// the DNS server chases the CNAME itself (a recursive resolver) or answers
// only the CNAME (an authoritative server for another zone).
func TestLookupTXTFollowsCNAMEs(t *testing.T) {
	for _, chase := range []bool{false, true} {
		dns := validationtest.NewDNSServer(t)
		dns.SetChaseCNAME(chase)
		dns.AddCNAME("_dnsauth.example.com", "example.com.dcv.acmegw.test")
		dns.AddCNAME("example.com.dcv.acmegw.test", "final.dcv.acmegw.test")
		dns.AddTXT("final.dcv.acmegw.test", "v1", "v2")
		dns.AddTXT("_dnsauth.direct.test", "plain")

		got, err := lookupTXT(context.Background(), dns.Addr(), "_dnsauth.example.com")
		slices.Sort(got)
		if err != nil || !slices.Equal(got, []string{"v1", "v2"}) {
			t.Errorf("chase=%v: delegated lookup = %v, %v", chase, got, err)
		}
		if got, err := lookupTXT(context.Background(), dns.Addr(), "_dnsauth.direct.test"); err != nil || !slices.Equal(got, []string{"plain"}) {
			t.Errorf("chase=%v: direct lookup = %v, %v", chase, got, err)
		}
		if got, err := lookupTXT(context.Background(), dns.Addr(), "_dnsauth.missing.test"); err != nil || got != nil {
			t.Errorf("chase=%v: missing name = %v, %v; want nothing and no error", chase, got, err)
		}
	}
}

func TestLookupTXTStopsCNAMELoops(t *testing.T) {
	dns := validationtest.NewDNSServer(t)
	dns.AddCNAME("a.loop.test", "b.loop.test")
	dns.AddCNAME("b.loop.test", "a.loop.test")
	if _, err := lookupTXT(context.Background(), dns.Addr(), "a.loop.test"); err == nil {
		t.Errorf("a CNAME loop gave no error")
	}
}
