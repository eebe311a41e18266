package validation

import (
	"fmt"
	"testing"
	"time"

	"github.com/acmegw/acmegw/validation/validationtest"
)

func TestCAACheckStale(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fresh := func(edit func(*CAACheck)) CAACheck {
		c := CAACheck{
			Request:              caaRequest("www.example.test"),
			CheckedAt:            now.Add(-time.Hour),
			CheckedIssuerDomains: []string{caaIssuer},
		}
		if edit != nil {
			edit(&c)
		}
		return c
	}
	tests := []struct {
		name   string
		check  CAACheck
		maxAge time.Duration
		want   bool
	}{
		{"checked an hour ago", fresh(nil), 0, false},
		{"never checked", fresh(func(c *CAACheck) { c.CheckedAt = time.Time{} }), 0, true},
		{"just under the default age", fresh(func(c *CAACheck) { c.CheckedAt = now.Add(-DefaultCAARecheckAge + time.Second) }), 0, false},
		{"at the default age", fresh(func(c *CAACheck) { c.CheckedAt = now.Add(-DefaultCAARecheckAge) }), 0, true},
		{"configured age", fresh(func(c *CAACheck) { c.CheckedAt = now.Add(-2 * time.Hour) }), 90 * time.Minute, true},
		{"configured age is capped at 8 hours", fresh(func(c *CAACheck) { c.CheckedAt = now.Add(-9 * time.Hour) }), 24 * time.Hour, true},
		{"8 hours allowed when configured", fresh(func(c *CAACheck) { c.CheckedAt = now.Add(-7*time.Hour - 59*time.Minute) }), 8 * time.Hour, false},
		{"slightly in the future (clock skew)", fresh(func(c *CAACheck) { c.CheckedAt = now.Add(10 * time.Second) }), 0, false},
		{"far in the future", fresh(func(c *CAACheck) { c.CheckedAt = now.Add(time.Hour) }), 0, true},
		{"checked for another brand", fresh(func(c *CAACheck) { c.CheckedIssuerDomains = []string{"other-ca.example"} }), 0, true},
		{"checked for a subset of the identities", fresh(func(c *CAACheck) {
			c.Request.IssuerDomains = []string{"alt.example", caaIssuer}
		}), 0, false},
		{"checked for more identities than sign now", fresh(func(c *CAACheck) {
			c.CheckedIssuerDomains = []string{"alt.example", caaIssuer}
		}), 0, true},
		{"identities compared without case", fresh(func(c *CAACheck) { c.CheckedIssuerDomains = []string{"ACMEGW.example"} }), 0, false},
		{"checked without identities", fresh(func(c *CAACheck) { c.CheckedIssuerDomains = nil }), 0, true},
		{"signing brand has no identity", fresh(func(c *CAACheck) {
			c.Request.IssuerDomains = nil
			c.CheckedAt = time.Time{}
		}), 0, false},
	}
	for _, tt := range tests {
		if got := CAACheckStale(tt.check, now, tt.maxAge); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRecheckCAA(t *testing.T) {
	srv := validationtest.NewDNSServer(t)
	srv.AddCAA("allowed.example.test", 0, "issue", caaIssuer)
	srv.AddCAA("denied.example.test", 0, "issue", "other-ca.example")
	srv.AddCAA("denied2.example.test", 0, "issue", ";")
	v := newTestValidator(t, srv, nil)
	now := time.Now()
	check := func(name string, age time.Duration) CAACheck {
		return CAACheck{Request: caaRequest(name), CheckedAt: now.Add(-age), CheckedIssuerDomains: []string{caaIssuer}}
	}

	// A denied name checked recently is trusted: CAA changed after the
	// check may still be honoured until the check is stale.
	if err := v.RecheckCAA(t.Context(), now, 0, []CAACheck{
		check("allowed.example.test", 10*time.Hour),
		check("denied.example.test", time.Hour),
	}); err != nil {
		t.Errorf("fresh denied check was repeated: %v", err)
	}
	err := v.RecheckCAA(t.Context(), now, 0, []CAACheck{
		check("allowed.example.test", 10*time.Hour),
		check("denied.example.test", 10*time.Hour),
		check("denied2.example.test", 10*time.Hour),
	})
	wantError(t, err, "caa", "CAA record for denied.example.test prevents issuance")
	if err := v.RecheckCAA(t.Context(), now, 0, nil); err != nil {
		t.Errorf("empty order: %v", err)
	}

	// An order of a hundred names, all stale, exercises the bound on
	// parallel checks.
	var many []CAACheck
	for i := range 100 {
		many = append(many, check(fmt.Sprintf("n%d.allowed.example.test", i), 9*time.Hour))
	}
	if err := v.RecheckCAA(t.Context(), now, 0, many); err != nil {
		t.Errorf("100 allowed names: %v", err)
	}
	many[73] = check("x.denied2.example.test", 9*time.Hour)
	err = v.RecheckCAA(t.Context(), now, 0, many)
	wantError(t, err, "caa", "CAA record for denied2.example.test prevents issuance for x.denied2.example.test")
}
