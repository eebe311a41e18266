package validation

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/acmegw/acmegw/validation/validationtest"
)

func dns01(id string) Challenge {
	return Challenge{Type: "dns-01", IdentifierType: "dns", Identifier: id, Token: testToken, KeyAuthorization: testKeyAuth}
}

func TestDNS01TXTValue(t *testing.T) {
	// RFC 8555 §8.4: base64url(SHA-256), no padding: 43 characters.
	got := DNS01TXTValue("token.thumbprint")
	if len(got) != 43 || got[len(got)-1] == '=' {
		t.Errorf("got %q", got)
	}
	if DNS01Name("*.Example.COM") != "_acme-challenge.example.com" {
		t.Errorf("DNS01Name = %q", DNS01Name("*.Example.COM"))
	}
}

func TestDNS01(t *testing.T) {
	srv := validationtest.NewDNSServer(t)
	good := DNS01TXTValue(testKeyAuth)
	srv.AddTXT("_acme-challenge.ok.example.test", good)
	srv.AddTXT("_acme-challenge.many.example.test", "stale-value-from-last-renewal", good)
	srv.AddTXT("_acme-challenge.wrong.example.test", "not-the-digest", "another")
	srv.AddA("noTXT.example.test", "192.0.2.1")
	srv.AddTXT("_acme-challenge.empty.example.test") // no values: the name does not exist
	srv.AddA("_acme-challenge.nodata.example.test", "192.0.2.1")
	srv.SetRcode("_acme-challenge.servfail.example.test", dns.RcodeServerFailure)
	srv.SetDrop("_acme-challenge.slow.example.test", true)
	// A delegation of the challenge name to a zone the gateway or a DNS
	// provider controls, two hops deep.
	srv.AddCNAME("_acme-challenge.delegated.example.test", "ok.acme-delegation.test")
	srv.AddCNAME("ok.acme-delegation.test", "final.acme-zone.test")
	srv.AddTXT("final.acme-zone.test", good)
	srv.AddCNAME("_acme-challenge.delegated-wrong.example.test", "wrong.acme-zone.test")
	srv.AddTXT("wrong.acme-zone.test", "nope")

	v := newTestValidator(t, srv, func(c *Config) { c.Timeout = time.Second })
	tests := []struct {
		id     string
		typ    string // "" for success
		detail string
	}{
		{"ok.example.test", "", ""},
		{"OK.Example.Test.", "", ""},
		{"*.ok.example.test", "", ""},
		{"many.example.test", "", ""},
		{"delegated.example.test", "", ""},
		{"wrong.example.test", "unauthorized", `Incorrect TXT record "`},
		{"delegated-wrong.example.test", "unauthorized", `Incorrect TXT record "nope" found at _acme-challenge.delegated-wrong.example.test`},
		{"notxt.example.test", "unauthorized", "No TXT record found at _acme-challenge.notxt.example.test"},
		{"empty.example.test", "unauthorized", "No TXT record found at _acme-challenge.empty.example.test"},
		{"nodata.example.test", "unauthorized", "No TXT record found at _acme-challenge.nodata.example.test"},
		{"servfail.example.test", "dns", "DNS problem: SERVFAIL looking up TXT for _acme-challenge.servfail.example.test"},
		{"slow.example.test", "dns", "DNS problem: query timed out looking up TXT for _acme-challenge.slow.example.test"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			err := v.Validate(t.Context(), dns01(tt.id))
			if tt.typ == "" {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				return
			}
			wantError(t, err, tt.typ, tt.detail)
		})
	}

	t.Run("several wrong records", func(t *testing.T) {
		wantError(t, v.Validate(t.Context(), dns01("wrong.example.test")), "unauthorized",
			"found at _acme-challenge.wrong.example.test (and 1 more)")
	})
	t.Run("ip identifier", func(t *testing.T) {
		ch := dns01("192.0.2.1")
		ch.IdentifierType = "ip"
		wantError(t, v.Validate(t.Context(), ch), "malformed", "dns-01")
	})
	t.Run("record removed", func(t *testing.T) {
		srv.RemoveTXT("_acme-challenge.ok.example.test", good)
		wantError(t, v.Validate(t.Context(), dns01("ok.example.test")), "unauthorized", "No TXT record found")
	})
}

func TestDNS01ShowsOnlyTheStartOfLongRecords(t *testing.T) {
	srv := validationtest.NewDNSServer(t)
	long := ""
	for range 100 {
		long += "0123456789"
	}
	srv.AddTXT("_acme-challenge.long.example.test", long)
	err := newTestValidator(t, srv, nil).Validate(t.Context(), dns01("long.example.test"))
	wantError(t, err, "unauthorized", `"`+long[:64]+`"`)
	if len(err.Error()) > 200 {
		t.Errorf("detail is %d bytes long", len(err.Error()))
	}
}
