package validation

import (
	"slices"
	"testing"
)

func TestParseCAAIssueValue(t *testing.T) {
	tests := []struct {
		value      string
		domain     string
		accountURI string // "-" for absent
		methods    []string
		hasMethods bool
	}{
		{"letsencrypt.org", "letsencrypt.org", "-", nil, false},
		{"LetsEncrypt.ORG", "letsencrypt.org", "-", nil, false},
		{"  letsencrypt.org\t", "letsencrypt.org", "-", nil, false},
		{";", "", "-", nil, false},
		{"", "", "-", nil, false},
		{" ; ", "", "-", nil, false},
		{"letsencrypt.org;", "letsencrypt.org", "-", nil, false},
		{"letsencrypt.org; ;", "letsencrypt.org", "-", nil, false},
		{"ca.example; accounturi=https://ca.example/acct/1", "ca.example", "https://ca.example/acct/1", nil, false},
		// "=" may appear in a value: only the first one splits.
		{"ca.example;accounturi=https://ca.example/a?id=1", "ca.example", "https://ca.example/a?id=1", nil, false},
		{"ca.example; AccountURI=x", "ca.example", "x", nil, false},
		{"ca.example; accounturi=", "ca.example", "", nil, false},
		{"ca.example; validationmethods=dns-01", "ca.example", "-", []string{"dns-01"}, true},
		{"ca.example; validationmethods = dns-01 , http-01 ", "ca.example", "-", []string{"dns-01", "http-01"}, true},
		{"ca.example; validationmethods=ca-custom,dns-01", "ca.example", "-", []string{"ca-custom", "dns-01"}, true},
		{"ca.example; cansignhttpexchanges=yes; policy=ev", "ca.example", "-", nil, false},
		{"; accounturi=https://ca.example/acct/1", "", "https://ca.example/acct/1", nil, false},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", "-", nil, false},
		{"0ca.example", "0ca.example", "-", nil, false},
	}
	for _, tt := range tests {
		iv, err := parseCAAIssueValue(tt.value)
		if err != nil {
			t.Errorf("%q: %v", tt.value, err)
			continue
		}
		account := "-"
		if iv.hasAccountURI {
			account = iv.accountURI
		}
		if iv.domain != tt.domain || account != tt.accountURI || iv.hasMethods != tt.hasMethods || !slices.Equal(iv.methods, tt.methods) {
			t.Errorf("%q: got domain %q, accounturi %q, methods %q (%v)", tt.value, iv.domain, account, iv.methods, iv.hasMethods)
		}
	}
}

func TestParseCAAIssueValueErrors(t *testing.T) {
	for _, v := range []string{
		"ca.example; accounturi",
		"ca.example; =x",
		"ca.example; -tag=x",
		"ca.example; tag-=x",
		"ca.example; t_g=x",
		"ca.example; accounturi=a b",
		"ca.example; accounturi=a\x00b",
		"ca.example; accounturi=é",
		"ca.example; accounturi=a; accounturi=a",
		"ca.example; validationmethods=",
		"ca.example; validationmethods=dns-01,",
		"ca.example; validationmethods=,dns-01",
		"ca.example; validationmethods=dns_01",
		"ca.example; validationmethods=dns-01; validationmethods=http-01",
		"ca .example",
		"ca.example.",
		".ca.example",
		"ca..example",
		"-ca.example",
		"ca-.example",
		"ca_1.example",
		"ca.example extra",
		"\"ca.example\"",
		"*.ca.example",
	} {
		if iv, err := parseCAAIssueValue(v); err == nil {
			t.Errorf("%q parsed as %+v, want an error", v, iv)
		}
	}
}

func TestCAAIssueValueAuthorizes(t *testing.T) {
	domains := []string{"ca.example", "Alt.Example"}
	tests := []struct {
		value   string
		account string
		method  string
		want    caaVerdict
	}{
		{"ca.example", "a1", "dns-01", caaAuthorizes},
		{"alt.example", "a1", "dns-01", caaAuthorizes},
		{"other.example", "a1", "dns-01", caaOtherIssuer},
		{";", "a1", "dns-01", caaOtherIssuer},
		{"ca.example; accounturi=a1", "a1", "dns-01", caaAuthorizes},
		{"ca.example; accounturi=a1", "A1", "dns-01", caaOtherAccount},
		{"ca.example; accounturi=a1", "", "dns-01", caaOtherAccount},
		{"ca.example; accounturi=", "", "dns-01", caaOtherAccount},
		{"ca.example; validationmethods=http-01,dns-01", "a1", "dns-01", caaAuthorizes},
		{"ca.example; validationmethods=http-01", "a1", "dns-01", caaOtherMethod},
		{"ca.example; validationmethods=http-01", "a1", "", caaOtherMethod},
		{"ca.example; accounturi=a2; validationmethods=http-01", "a1", "http-01", caaOtherAccount},
		{"other.example; accounturi=a1", "a1", "dns-01", caaOtherIssuer},
	}
	for _, tt := range tests {
		iv, err := parseCAAIssueValue(tt.value)
		if err != nil {
			t.Fatalf("%q: %v", tt.value, err)
		}
		if got := iv.authorizes(domains, tt.account, tt.method); got != tt.want {
			t.Errorf("%q for account %q, method %q: got verdict %d, want %d", tt.value, tt.account, tt.method, got, tt.want)
		}
	}
}
