package issuer

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/storage"
)

func dns(names ...string) []storage.Identifier {
	out := make([]storage.Identifier, len(names))
	for i, n := range names {
		out[i] = storage.Identifier{Type: "dns", Value: n}
	}
	return out
}

func TestRulesCheckIdentifiers(t *testing.T) {
	no, yes := false, true
	free := Rules{
		BlockedSuffixes: []string{".edu", "gov", ".co.jp"},
		BlockedWords:    []string{"Bank", "pay"},
	}
	open := Product{Wildcard: true, IP: true, MaxNames: 100}
	for _, tc := range []struct {
		name    string
		rules   Rules
		product Product
		ids     []storage.Identifier
		rule    string // "" for no violation
		detail  []string
	}{
		{"plain name passes", free, open, dns("www.example.com", "*.example.com"), "", nil},
		{"suffix with dot", free, open, dns("a.example.com", "www.x.edu"), "blocked_suffixes", []string{`profile "p" does not issue for .edu names (www.x.edu)`}},
		{"suffix without dot", free, open, dns("city.gov"), "blocked_suffixes", []string{".gov names", "city.gov"}},
		{"the suffix itself", free, open, dns("edu"), "blocked_suffixes", []string{".edu"}},
		{"a wildcard under a suffix", free, open, dns("*.x.edu"), "blocked_suffixes", []string{"*.x.edu"}},
		{"multi-label suffix", free, open, dns("shop.example.co.jp"), "blocked_suffixes", []string{".co.jp"}},
		{"suffix is a whole label", free, open, dns("reedu.example", "xedu"), "", nil},
		{"word, case-insensitive", free, open, dns("mybank.example"), "blocked_words", []string{`names containing "Bank"`, "mybank.example"}},
		{"word inside a label", free, open, dns("www.paypal-login.example"), "blocked_words", []string{`"pay"`}},
		{"IP addresses skip name rules", free, open, []storage.Identifier{{Type: "ip", Value: "192.0.2.1"}}, "", nil},
		{"rules forbid wildcards", Rules{Wildcard: &no}, open, dns("*.example.com"), "wildcard", []string{"wildcard", "*.example.com"}},
		{"rules cannot allow what the brand refuses", Rules{Wildcard: &yes}, Product{}, dns("*.example.com"), "wildcard", nil},
		{"rules forbid IPs", Rules{IP: &no}, open, []storage.Identifier{{Type: "ip", Value: "192.0.2.1"}}, "ip", []string{"IP addresses (192.0.2.1)"}},
		{"brand forbids IPs", Rules{}, Product{Wildcard: true}, []storage.Identifier{{Type: "ip", Value: "2001:db8::1"}}, "ip", nil},
		{"rules cap names", Rules{MaxNames: 2}, open, dns("a.example", "b.example", "c.example"), "max_names", []string{"at most 2 names, this order has 3"}},
		{"brand caps names below the rules", Rules{MaxNames: 5}, Product{MaxNames: 1}, dns("a.example", "b.example"), "max_names", []string{"at most 1 names"}},
		{"within the cap", Rules{MaxNames: 2}, open, dns("a.example", "b.example"), "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.rules.CheckIdentifiers("p", tc.product, tc.ids)
			if tc.rule == "" {
				if v != nil {
					t.Fatalf("violation %+v, want none", v)
				}
				return
			}
			if v == nil || v.Rule != tc.rule {
				t.Fatalf("violation %+v, want rule %s", v, tc.rule)
			}
			if !strings.Contains(v.Detail, `profile "p"`) {
				t.Errorf("detail %q does not name the profile", v.Detail)
			}
			for _, d := range tc.detail {
				if !strings.Contains(v.Detail, d) {
					t.Errorf("detail %q lacks %q", v.Detail, d)
				}
			}
		})
	}
}

func TestRulesReviewWord(t *testing.T) {
	r := Rules{ReviewWords: []string{"Casino", "lottery"}}
	if w, n, ok := r.ReviewWord(dns("www.example.com", "my-casino.example.com")); !ok || w != "Casino" || n != "my-casino.example.com" {
		t.Errorf("ReviewWord = %q, %q, %v", w, n, ok)
	}
	if _, _, ok := r.ReviewWord(dns("www.example.com")); ok {
		t.Error("a plain name needs review")
	}
	if _, _, ok := (Rules{}).ReviewWord(dns("casino.example")); ok {
		t.Error("no review words, yet a review")
	}
}

func TestRulesValidityAndProduct(t *testing.T) {
	day := 24 * time.Hour
	public := Product{Wildcard: true, MaxNames: 100, MaxValidity: 200 * day}
	for _, tc := range []struct {
		rules     Rules
		product   Product
		requested time.Duration
		ok        bool
	}{
		{Rules{}, public, 200 * day, true},
		{Rules{}, public, 201 * day, false},
		{Rules{MaxValidity: 90 * day}, public, 90 * day, true},
		{Rules{MaxValidity: 90 * day}, public, 91 * day, false},
		{Rules{MaxValidity: 400 * day}, public, 201 * day, false}, // capped by the brand
		{Rules{MaxValidity: 30 * day}, Product{}, 31 * day, false},
		{Rules{}, Product{}, 1000 * day, true},
	} {
		v := tc.rules.CheckValidity("p", tc.product, tc.requested)
		if (v == nil) != tc.ok {
			t.Errorf("rules %+v, product %+v, %v: violation %v, want ok=%v", tc.rules, tc.product, tc.requested, v, tc.ok)
		}
		if v != nil && (v.Rule != "max_validity" || !strings.Contains(v.Detail, `profile "p"`)) {
			t.Errorf("violation %+v", v)
		}
	}
	if v := (Rules{MaxValidity: 90 * day}).CheckValidity("p", public, 100*day); v == nil || !strings.Contains(v.Detail, "maximum of 90d") {
		t.Errorf("violation %+v, want it to name 90d", v)
	}
	no := false
	got := Rules{Wildcard: &no, MaxNames: 5, MaxValidity: 90 * day}.Product(public)
	if got.Wildcard || got.MaxNames != 5 || got.MaxValidity != 90*day {
		t.Errorf("narrowed product %+v", got)
	}
}

func TestRulesCheckKey(t *testing.T) {
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		pub  any
		want string
	}{{&ec256.PublicKey, "ec256"}, {&ec384.PublicKey, "ec384"}, {&rsa2048.PublicKey, "rsa2048"}, {edPub, "ed25519"}} {
		if got := KeyType(tc.pub); got != tc.want {
			t.Errorf("KeyType = %q, want %q", got, tc.want)
		}
	}
	r := Rules{KeyTypes: []string{"rsa2048", "ec256"}}
	if v := r.CheckKey("p", &ec256.PublicKey); v != nil {
		t.Errorf("ec256 refused: %v", v)
	}
	if v := r.CheckKey("p", &rsa2048.PublicKey); v != nil {
		t.Errorf("rsa2048 refused: %v", v)
	}
	v := r.CheckKey("p", &ec384.PublicKey)
	if v == nil || v.Rule != "key_types" || !strings.Contains(v.Detail, `profile "p" accepts only rsa2048, ec256 keys; this CSR's key is ec384`) {
		t.Errorf("ec384: %+v", v)
	}
	if v := (Rules{}).CheckKey("p", &ec384.PublicKey); v != nil {
		t.Errorf("no key types, yet refused: %v", v)
	}
}

func TestRulesValidate(t *testing.T) {
	for _, tc := range []struct {
		rules Rules
		err   string
	}{
		{Rules{}, ""},
		{Rules{KeyTypes: []string{"rsa2048", "ec384"}, Quota: Quota{PerAccount: 50, Period: 365 * 24 * time.Hour}}, ""},
		{Rules{KeyTypes: []string{"rsa1024"}}, `unknown key type "rsa1024"`},
		{Rules{MaxNames: -1}, "max_names"},
		{Rules{MaxValidity: -time.Hour}, "max_validity"},
		{Rules{BlockedSuffixes: []string{"."}}, "blocked_suffixes has an empty entry"},
		{Rules{ReviewWords: []string{" "}}, "review_words has an empty entry"},
		{Rules{Quota: Quota{PerRegisteredDomain: 20}}, "quota needs a positive period"},
		{Rules{Quota: Quota{PerAccount: -1, Period: time.Hour}}, "negative"},
	} {
		err := tc.rules.Validate()
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.rules, err, tc.err)
		}
	}
}

func TestRouterChecksRules(t *testing.T) {
	brands := map[string]Issuer{"b": nil}
	_, err := NewRouter("p", []Profile{{Name: "p", Brand: "b", Rules: Rules{KeyTypes: []string{"dsa"}}}}, brands)
	if err == nil || !strings.Contains(err.Error(), `profile "p"`) {
		t.Errorf("unknown key type: %v", err)
	}
	_, err = NewRouter("p", []Profile{{Name: "p", Brand: "b", Validity: 100 * 24 * time.Hour, Rules: Rules{MaxValidity: 90 * 24 * time.Hour}}}, brands)
	if err == nil || !strings.Contains(err.Error(), "exceeds its rules' max_validity 90d") {
		t.Errorf("validity above max_validity: %v", err)
	}
	r, err := NewRouter("p", []Profile{{Name: "p", Brand: "b", Rules: Rules{MaxValidity: 90 * 24 * time.Hour}}}, brands)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := r.Profile("p"); p.Validity != 90*24*time.Hour {
		t.Errorf("validity of a profile with max_validity and no validity: %v, want 90 days", p.Validity)
	}
}

func TestPublicMaxValidity(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		at   string
		want time.Duration
	}{
		{"2026-03-14T23:59:59Z", 398 * day},
		{"2026-03-15T00:00:00Z", 200 * day},
		{"2027-03-14T12:00:00Z", 200 * day},
		{"2027-03-15T00:00:00Z", 100 * day},
		{"2029-03-15T00:00:00Z", 47 * day},
	} {
		at, _ := time.Parse(time.RFC3339, tc.at)
		if got := PublicMaxValidity(at); got != tc.want {
			t.Errorf("PublicMaxValidity(%s) = %v, want %v", tc.at, got, tc.want)
		}
	}
}
