package tencenttest

import (
	"strings"

	"github.com/miekg/dns"
)

// The record types the fake looks up, named here so that fake.go need not
// know miekg/dns.
const (
	dnsTypeTXT   = dns.TypeTXT
	dnsTypeCNAME = dns.TypeCNAME
)

// txtValues joins each TXT record's character-strings into its value.
func txtValues(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out
}

// cnameTarget is a CNAME record's target in canonical form (lower case, no
// trailing dot), "" for other records.
func cnameTarget(rr dns.RR) string {
	if c, ok := rr.(*dns.CNAME); ok {
		return strings.ToLower(strings.TrimSuffix(c.Target, "."))
	}
	return ""
}
