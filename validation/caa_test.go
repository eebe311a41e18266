package validation

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/acmegw/acmegw/validation/validationtest"
)

const (
	caaIssuer  = "acmegw.example"
	caaAccount = "https://acme.example/acme/acct/1"
)

// caaRequest is the usual request in these tests: a dns-01 validation of
// www.example.test by caaAccount for a brand whose identity is caaIssuer.
func caaRequest(name string) CAARequest {
	return CAARequest{Name: name, IssuerDomains: []string{caaIssuer}, AccountURI: caaAccount, Method: "dns-01"}
}

func TestCheckCAA(t *testing.T) {
	const www = "www.example.test"
	tests := []struct {
		name  string
		setup func(s *validationtest.DNSServer)
		edit  func(r *CAARequest)
		// short gives the validator a short timeout for dropped queries.
		short bool
		// wantType is "" for a pass; want lists parts of the detail.
		wantType string
		want     []string
	}{
		{
			name:  "no CAA anywhere",
			setup: func(s *validationtest.DNSServer) { s.AddA(www, "192.0.2.1") },
		},
		{
			name:  "issue matches",
			setup: func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "issue", caaIssuer) },
		},
		{
			name:     "issue names another CA",
			setup:    func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "issue", "other-ca.example") },
			wantType: "caa",
			want: []string{
				`CAA record for www.example.test prevents issuance: found "0 issue \"other-ca.example\""; ` +
					`add "0 issue \"acmegw.example\"" to allow it`,
			},
		},
		{
			name: "one of several issue records matches",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", "other-ca.example")
				s.AddCAA(www, 0, "issue", caaIssuer)
			},
		},
		{
			name: "several issue records, none matching",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", "other-ca.example")
				s.AddCAA(www, 0, "issue", "third-ca.example")
			},
			wantType: "caa",
			want:     []string{`found "0 issue \"other-ca.example\""; 1 other issue record does not allow it either; add`},
		},
		{
			name:     `issue ";" forbids all`,
			setup:    func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "issue", ";") },
			wantType: "caa",
			want:     []string{`found "0 issue \";\"", which forbids issuance by every CA`},
		},
		{
			name:     `empty issue value forbids all`,
			setup:    func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "issue", "") },
			wantType: "caa",
			want:     []string{"forbids issuance by every CA"},
		},

		// issue and issuewild (RFC 8659 §4.3).
		{
			name: "wildcard uses issuewild over issue",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", "other-ca.example")
				s.AddCAA(www, 0, "issuewild", caaIssuer)
			},
			edit: func(r *CAARequest) { r.Wildcard = true },
		},
		{
			name: "wildcard refused by issuewild although issue allows",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", caaIssuer)
				s.AddCAA(www, 0, "issuewild", "other-ca.example")
			},
			edit:     func(r *CAARequest) { r.Wildcard = true },
			wantType: "caa",
			want: []string{
				`CAA record for www.example.test prevents issuance for *.www.example.test: found "0 issuewild \"other-ca.example\""`,
				`add "0 issuewild \"acmegw.example\""`,
			},
		},
		{
			name: `wildcard refused by issuewild ";"`,
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", caaIssuer)
				s.AddCAA(www, 0, "issuewild", ";")
			},
			edit:     func(r *CAARequest) { r.Wildcard = true },
			wantType: "caa",
			want:     []string{"forbids issuance by every CA"},
		},
		{
			name:  "wildcard falls back to issue",
			setup: func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "issue", caaIssuer) },
			edit:  func(r *CAARequest) { r.Wildcard = true },
		},
		{
			name:     "wildcard refused by issue without issuewild",
			setup:    func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "issue", "other-ca.example") },
			edit:     func(r *CAARequest) { r.Wildcard = true },
			wantType: "caa",
			want:     []string{`found "0 issue \"other-ca.example\""`},
		},
		{
			name: "non-wildcard ignores issuewild",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", "other-ca.example")
				s.AddCAA(www, 0, "issuewild", caaIssuer)
			},
			wantType: "caa",
			want:     []string{`found "0 issue \"other-ca.example\""`},
		},
		{
			name:  "non-wildcard with only issuewild is unrestricted",
			setup: func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "issuewild", ";") },
		},
		{
			name:  `"*." prefix in Name means wildcard`,
			setup: func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "issuewild", ";") },
			edit:  func(r *CAARequest) { r.Name = "*." + www },
			// The detail shows the wildcard, so the prefix was understood.
			wantType: "caa",
			want:     []string{"prevents issuance for *.www.example.test"},
		},

		// Tree climbing (RFC 8659 §3).
		{
			name: "CAA at the parent only",
			setup: func(s *validationtest.DNSServer) {
				s.AddA(www, "192.0.2.1")
				s.AddCAA("example.test", 0, "issue", "other-ca.example")
			},
			wantType: "caa",
			want:     []string{`CAA record for example.test prevents issuance for www.example.test: found "0 issue \"other-ca.example\""`},
		},
		{
			name: "CAA at the parent allows",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA("example.test", 0, "issue", caaIssuer)
			},
		},
		{
			name: "CAA at the grandparent with an empty intermediate",
			setup: func(s *validationtest.DNSServer) {
				// b.example.test exists only as an empty non-terminal
				// (NODATA), a.b.example.test has no CAA, and the name
				// itself does not exist at all (NXDOMAIN).
				s.AddA("a.b.example.test", "192.0.2.1")
				s.AddCAA("example.test", 0, "issue", "other-ca.example")
			},
			edit:     func(r *CAARequest) { r.Name = "x.a.b.example.test" },
			wantType: "caa",
			want:     []string{"CAA record for example.test prevents issuance for x.a.b.example.test"},
		},
		{
			name: "CAA at the TLD",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA("test", 0, "issue", "other-ca.example")
			},
			wantType: "caa",
			want:     []string{"CAA record for test prevents issuance for www.example.test"},
		},
		{
			name: "the closest set wins over a forbidding parent",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", caaIssuer)
				s.AddCAA("example.test", 0, "issue", ";")
			},
		},
		{
			name: "the closest set wins over an allowing parent",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", "other-ca.example")
				s.AddCAA("example.test", 0, "issue", caaIssuer)
			},
			wantType: "caa",
			want:     []string{"CAA record for www.example.test prevents issuance:"},
		},
		{
			name: "iodef-only node stops the climb",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "iodef", "mailto:security@example.test")
				s.AddCAA("example.test", 0, "issue", ";")
			},
		},

		// CNAMEs: the alias's target answers for the name, but the climb
		// goes on from the name's own parent.
		{
			name: "CNAME at the name pointing to a name with CAA",
			setup: func(s *validationtest.DNSServer) {
				s.AddCNAME(www, "cdn.provider.test")
				s.AddCAA("cdn.provider.test", 0, "issue", "other-ca.example")
				s.AddCAA("example.test", 0, "issue", caaIssuer)
			},
			wantType: "caa",
			want: []string{
				`CAA record for www.example.test (an alias of cdn.provider.test) prevents issuance: found "0 issue \"other-ca.example\""`,
			},
		},
		{
			name: "CNAME target allows",
			setup: func(s *validationtest.DNSServer) {
				s.AddCNAME(www, "cdn.provider.test")
				s.AddCAA("cdn.provider.test", 0, "issue", caaIssuer)
				s.AddCAA("example.test", 0, "issue", ";")
			},
		},
		{
			name: "CNAME chain",
			setup: func(s *validationtest.DNSServer) {
				s.AddCNAME(www, "a.provider.test")
				s.AddCNAME("a.provider.test", "b.provider.test")
				s.AddCAA("b.provider.test", 0, "issue", ";")
			},
			wantType: "caa",
			want:     []string{"(an alias of b.provider.test)"},
		},
		{
			name: "CNAME target without CAA climbs the name's parent, not the target's",
			setup: func(s *validationtest.DNSServer) {
				s.AddCNAME(www, "cdn.provider.test")
				s.AddA("cdn.provider.test", "192.0.2.1")
				s.AddCAA("provider.test", 0, "issue", ";")
				s.AddCAA("example.test", 0, "issue", caaIssuer)
			},
		},
		{
			name: "dangling CNAME climbs the name's parent",
			setup: func(s *validationtest.DNSServer) {
				s.AddCNAME(www, "gone.provider.test")
				s.AddCAA("provider.test", 0, "issue", caaIssuer)
				s.AddCAA("example.test", 0, "issue", "other-ca.example")
			},
			wantType: "caa",
			want:     []string{"CAA record for example.test prevents issuance for www.example.test"},
		},
		{
			name: "CNAME loop fails closed",
			setup: func(s *validationtest.DNSServer) {
				s.AddCNAME(www, "loop.example.test")
				s.AddCNAME("loop.example.test", www)
			},
			wantType: "dns",
			want:     []string{"too many CNAMEs", "looking up CAA for www.example.test"},
		},

		// Property tags and flags (RFC 8659 §4.1).
		{
			name: "critical unknown tag refuses",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", caaIssuer)
				s.AddCAA(www, 128, "tbs", "unknown")
			},
			wantType: "caa",
			want: []string{
				`CAA record for www.example.test prevents issuance: found "128 tbs \"unknown\"", a critical property this CA does not understand`,
			},
		},
		{
			name: "critical unknown tag without any issue refuses",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 128, "future", "x")
			},
			wantType: "caa",
			want:     []string{"critical property"},
		},
		{
			name:     "flag 1 is taken as critical, as Boulder does",
			setup:    func(s *validationtest.DNSServer) { s.AddCAA(www, 1, "tbs", "unknown") },
			wantType: "caa",
			want:     []string{`"1 tbs \"unknown\"", a critical property`},
		},
		{
			name: "critical known tags are fine",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 128, "issue", caaIssuer)
				s.AddCAA(www, 128, "iodef", "mailto:security@example.test")
				s.AddCAA(www, 128, "issuemail", ";")
			},
		},
		{
			name: "non-critical unknown tag is ignored",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", caaIssuer)
				s.AddCAA(www, 0, "tbs", "unknown")
			},
		},
		{
			name: "non-critical unknown tag alone does not restrict",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "tbs", "unknown")
				s.AddCAA("example.test", 0, "issue", ";")
			},
		},
		{
			name:  "iodef only",
			setup: func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "iodef", "mailto:security@example.test") },
		},
		{
			name:     "tags are case-insensitive",
			setup:    func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "ISSUE", "other-ca.example") },
			wantType: "caa",
			want:     []string{`found "0 ISSUE \"other-ca.example\""`},
		},

		// RFC 8657 parameters.
		{
			name:  "accounturi matches",
			setup: func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "issue", caaIssuer+"; accounturi="+caaAccount) },
		},
		{
			name: "accounturi names another account",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", caaIssuer+"; accounturi=https://acme.example/acme/acct/2")
			},
			wantType: "caa",
			want: []string{
				`found "0 issue \"acmegw.example; accounturi=https://acme.example/acme/acct/2\"", whose accounturi is not this ACME account (` + caaAccount + `)`,
				`add "0 issue \"acmegw.example; accounturi=` + caaAccount + `\"" to allow this account`,
			},
		},
		{
			name:     "accounturi is compared exactly",
			setup:    func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "issue", caaIssuer+"; accounturi="+caaAccount+"/") },
			wantType: "caa",
			want:     []string{"whose accounturi is not this ACME account"},
		},
		{
			name:     "accounturi with no account in the request",
			setup:    func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "issue", caaIssuer+"; accounturi=") },
			edit:     func(r *CAARequest) { r.AccountURI = "" },
			wantType: "caa",
			want:     []string{"accounturi"},
		},
		{
			name: "validationmethods includes the method",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", caaIssuer+"; validationmethods=http-01,dns-01")
			},
		},
		{
			name: "validationmethods excludes the method",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", caaIssuer+"; validationmethods=http-01,tls-alpn-01")
			},
			wantType: "caa",
			want: []string{
				`whose validationmethods does not include dns-01; validate with one of http-01, tls-alpn-01, or add dns-01 to its validationmethods to allow it`,
			},
		},
		{
			name: "the most specific failing record is reported",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", "other-ca.example")
				s.AddCAA(www, 0, "issue", caaIssuer+"; validationmethods=http-01")
			},
			wantType: "caa",
			want:     []string{"whose validationmethods does not include dns-01; 1 other issue record does not allow it either; validate with http-01, or add dns-01"},
		},
		{
			name: "both parameters, generous white space, unknown parameter",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", " \t"+caaIssuer+" ;  accounturi = "+caaAccount+" ;cansignhttpexchanges=yes;  validationmethods = http-01 , dns-01 ; ")
			},
		},
		{
			name: "both parameters, method excluded",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", caaIssuer+"; accounturi="+caaAccount+"; validationmethods=http-01")
			},
			edit:     func(r *CAARequest) { r.Method = "tls-alpn-01" },
			wantType: "caa",
			want:     []string{"does not include tls-alpn-01"},
		},

		// Issuer domain names.
		{
			name:  "issuer domain is case-insensitive",
			setup: func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "issue", "AcmeGW.EXAMPLE") },
		},
		{
			name:  "configured issuer domain is case-insensitive too",
			setup: func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "issue", caaIssuer) },
			edit:  func(r *CAARequest) { r.IssuerDomains = []string{"ACMEGW.Example."} },
		},
		{
			name:  "brand with two identities, record names the second",
			setup: func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "issue", "pki.brand.example") },
			edit:  func(r *CAARequest) { r.IssuerDomains = []string{caaIssuer, "pki.brand.example"} },
		},
		{
			name:     "brand with two identities, record names neither",
			setup:    func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "issue", "other-ca.example") },
			edit:     func(r *CAARequest) { r.IssuerDomains = []string{caaIssuer, "pki.brand.example"} },
			wantType: "caa",
			want:     []string{`add "0 issue \"acmegw.example\""`},
		},
		{
			name:  "brand without a CAA identity skips the check",
			setup: func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "issue", ";") },
			edit:  func(r *CAARequest) { r.IssuerDomains = nil },
		},
		{
			name: "a malformed record does not spoil a good one",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", "acmegw.example; accounturi")
				s.AddCAA(www, 0, "issue", caaIssuer)
			},
		},

		// DNS failures fail closed; NXDOMAIN and NODATA climb.
		{
			name:     "SERVFAIL at the name",
			setup:    func(s *validationtest.DNSServer) { s.SetRcode(www, dns.RcodeServerFailure) },
			wantType: "dns",
			want:     []string{"SERVFAIL looking up CAA for www.example.test"},
		},
		{
			name:     "REFUSED at the name",
			setup:    func(s *validationtest.DNSServer) { s.SetRcode(www, dns.RcodeRefused) },
			wantType: "dns",
			want:     []string{"REFUSED looking up CAA for www.example.test"},
		},
		{
			name: "SERVFAIL at the parent of a name without CAA",
			setup: func(s *validationtest.DNSServer) {
				s.AddA(www, "192.0.2.1")
				s.SetRcode("example.test", dns.RcodeServerFailure)
			},
			wantType: "dns",
			want:     []string{"SERVFAIL looking up CAA for example.test", "while checking CAA for www.example.test"},
		},
		{
			name: "SERVFAIL at the CNAME target",
			setup: func(s *validationtest.DNSServer) {
				s.AddCNAME(www, "cdn.provider.test")
				s.SetRcode("cdn.provider.test", dns.RcodeServerFailure)
			},
			wantType: "dns",
			want:     []string{"SERVFAIL looking up CAA for cdn.provider.test", "(while checking CAA for www.example.test)"},
		},
		{
			name: "SERVFAIL above the relevant set does not matter",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", caaIssuer)
				s.SetRcode("example.test", dns.RcodeServerFailure)
				s.SetRcode("test", dns.RcodeServerFailure)
			},
		},
		{
			name:     "timeout at the name",
			setup:    func(s *validationtest.DNSServer) { s.SetDrop(www, true) },
			short:    true,
			wantType: "dns",
			want:     []string{"timed out looking up CAA for www.example.test"},
		},
		{
			name: "timeout at the parent of a name without CAA",
			setup: func(s *validationtest.DNSServer) {
				s.AddA(www, "192.0.2.1")
				s.SetDrop("example.test", true)
			},
			short:    true,
			wantType: "dns",
			want:     []string{"timed out looking up CAA for example.test"},
		},
		{
			name: "timeout above the relevant set does not matter",
			setup: func(s *validationtest.DNSServer) {
				s.AddCAA(www, 0, "issue", caaIssuer)
				s.SetDrop("example.test", true)
			},
			short: true,
		},

		// Names.
		{
			name:  "name is case- and dot-insensitive",
			setup: func(s *validationtest.DNSServer) { s.AddCAA(www, 0, "issue", ";") },
			edit:  func(r *CAARequest) { r.Name = "WWW.Example.Test." },
			// The node is reported in lower case, so the lookup was too.
			wantType: "caa",
			want:     []string{"CAA record for www.example.test prevents issuance:"},
		},
		{
			name:  "IP address has no CAA",
			setup: func(s *validationtest.DNSServer) { s.AddCAA("1.2.0.192", 0, "issue", ";") },
			edit:  func(r *CAARequest) { r.Name = "192.0.2.1" },
		},
		{
			name:     "not a DNS name",
			edit:     func(r *CAARequest) { r.Name = "a..b" },
			wantType: "malformed",
			want:     []string{`"a..b"`},
		},
		{
			name:     "escaped dot",
			edit:     func(r *CAARequest) { r.Name = `a\.b.example.test` },
			wantType: "malformed",
		},
		{
			name:     "two wildcard labels",
			edit:     func(r *CAARequest) { r.Name = "*.*.example.test" },
			wantType: "malformed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := validationtest.NewDNSServer(t)
			if tt.setup != nil {
				tt.setup(srv)
			}
			timeout := 5 * time.Second
			if tt.short {
				timeout = 500 * time.Millisecond
			}
			v := newTestValidator(t, srv, func(c *Config) { c.Timeout = timeout })
			req := caaRequest(www)
			if tt.edit != nil {
				tt.edit(&req)
			}
			start := time.Now()
			err := v.CheckCAA(t.Context(), req)
			t.Logf("CheckCAA: %v", err)
			if tt.wantType == "" {
				if err != nil {
					t.Fatalf("got %v, want a pass", err)
				}
			} else {
				wantError(t, err, tt.wantType, tt.want...)
			}
			// Even a dropped query must not hold a check beyond the
			// validator's timeout.
			if d := time.Since(start); d > timeout+time.Second {
				t.Errorf("took %v with a %v timeout", d, timeout)
			}
		})
	}
}

// TestCheckCAAChasedCNAME repeats the alias cases against a server that
// includes the target's records in its answer, as a recursive resolver
// does, since the Resolver takes a different path for those.
func TestCheckCAAChasedCNAME(t *testing.T) {
	srv := validationtest.NewDNSServer(t)
	srv.SetChaseCNAME(true)
	srv.AddCNAME("www.example.test", "cdn.provider.test")
	srv.AddCAA("cdn.provider.test", 0, "issue", "other-ca.example")
	srv.AddCNAME("ok.example.test", "ok.provider.test")
	srv.AddCAA("ok.provider.test", 0, "issue", caaIssuer)
	srv.AddCNAME("dangling.example.test", "gone.provider.test")
	srv.AddCAA("provider.test", 0, "issue", caaIssuer)
	srv.AddCAA("example.test", 0, "issue", ";")
	v := newTestValidator(t, srv, nil)

	err := v.CheckCAA(t.Context(), caaRequest("www.example.test"))
	wantError(t, err, "caa", "CAA record for www.example.test (an alias of cdn.provider.test) prevents issuance")
	if err := v.CheckCAA(t.Context(), caaRequest("ok.example.test")); err != nil {
		t.Errorf("alias with an allowing target: %v", err)
	}
	err = v.CheckCAA(t.Context(), caaRequest("dangling.example.test"))
	wantError(t, err, "caa", "CAA record for example.test prevents issuance for dangling.example.test")
}

// TestCheckCAAMalformedValues shows that a record whose value breaks the
// grammar authorizes no one, whatever issuer it seems to name.
func TestCheckCAAMalformedValues(t *testing.T) {
	values := []string{
		"acmegw.example; accounturi",                // parameter without "="
		"acmegw.example; =value",                    // parameter without a tag
		"acmegw.example; bad_tag=1",                 // "_" in a tag
		"acmegw.example; accounturi=a b",            // space inside a value
		"acmegw.example; validationmethods=",        // no method
		"acmegw.example; validationmethods=dns-01,", // empty method
		"acmegw.example; validationmethods=dns_01",  // invalid method
		"acmegw.example; accounturi=" + caaAccount + "; accounturi=" + caaAccount,
		"acmegw.example; validationmethods=dns-01; validationmethods=dns-01",
		"acmegw .example",
		"acmegw.example.",
		"-acmegw.example",
		"acmegw..example",
		"acmegw.example extra",
		"acmégw.example",
		"\"acmegw.example\"",
	}
	for _, value := range values {
		t.Run(value, func(t *testing.T) {
			t.Parallel()
			srv := validationtest.NewDNSServer(t)
			srv.AddCAA("www.example.test", 0, "issue", value)
			v := newTestValidator(t, srv, nil)
			err := v.CheckCAA(t.Context(), caaRequest("www.example.test"))
			wantError(t, err, "caa", "which is malformed (", "and so authorizes no CA")
		})
	}
}

// TestCheckCAAConcurrent runs checks from many goroutines against one
// Validator, as a worker pool does, for the race detector.
func TestCheckCAAConcurrent(t *testing.T) {
	srv := validationtest.NewDNSServer(t)
	srv.AddCAA("example.test", 0, "issue", caaIssuer)
	srv.AddCAA("deny.example.test", 0, "issue", ";")
	v := newTestValidator(t, srv, nil)
	errs := make(chan error, 40)
	for i := range 40 {
		go func() {
			name := "a.b.c.example.test"
			if i%2 == 1 {
				name = "x.deny.example.test"
			}
			errs <- v.CheckCAA(t.Context(), caaRequest(name))
		}()
	}
	var denied int
	for range 40 {
		if err := <-errs; err != nil {
			wantError(t, err, "caa", "CAA record for deny.example.test")
			denied++
		}
	}
	if denied != 20 {
		t.Errorf("%d of 40 checks denied, want 20", denied)
	}
}
