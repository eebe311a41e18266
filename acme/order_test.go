package acme_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewOrderIdentifiers(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		tooMany := make([]ident, 101)
		for i := range tooMany {
			tooMany[i] = ident{"dns", fmt.Sprintf("n%d.example.com", i)}
		}
		for _, c := range []struct {
			name  string
			ids   any // what goes into "identifiers"
			typ   string
			bad   *ident // the identifier the problem must name
			hints []string
		}{
			{"double wildcard", dnsIDs("*.*.a.com"), "rejectedIdentifier", &ident{"dns", "*.*.a.com"}, []string{"leftmost label"}},
			{"partial wildcard", dnsIDs("a*.a.com"), "rejectedIdentifier", &ident{"dns", "a*.a.com"}, []string{"leftmost label"}},
			{"wildcard not leftmost", dnsIDs("a.*.a.com"), "rejectedIdentifier", &ident{"dns", "a.*.a.com"}, nil},
			{"mixed case", dnsIDs("Example.com"), "rejectedIdentifier", &ident{"dns", "Example.com"}, []string{"lower case", `"example.com"`}},
			{"trailing dot", dnsIDs("example.com."), "rejectedIdentifier", &ident{"dns", "example.com."}, []string{"trailing dot"}},
			{"IPv4 as dns", dnsIDs("1.2.3.4"), "rejectedIdentifier", &ident{"dns", "1.2.3.4"}, []string{`type "ip"`}},
			{"IPv6 as dns", dnsIDs("::1"), "rejectedIdentifier", &ident{"dns", "::1"}, nil},
			{"non-ASCII", dnsIDs("bücher.de"), "rejectedIdentifier", &ident{"dns", "bücher.de"}, []string{"punycode"}},
			{"underscore", dnsIDs("foo_bar.example.com"), "rejectedIdentifier", &ident{"dns", "foo_bar.example.com"}, []string{`'_'`}},
			{"single label", dnsIDs("localhost"), "rejectedIdentifier", &ident{"dns", "localhost"}, []string{"single label"}},
			{"empty label", dnsIDs("a..example.com"), "rejectedIdentifier", &ident{"dns", "a..example.com"}, []string{"empty label"}},
			{"leading hyphen", dnsIDs("-a.example.com"), "rejectedIdentifier", &ident{"dns", "-a.example.com"}, []string{"hyphen"}},
			{"fake punycode", dnsIDs("ab--c.example.com"), "rejectedIdentifier", nil, []string{"punycode"}},
			{"long label", dnsIDs(strings.Repeat("a", 64) + ".example.com"), "rejectedIdentifier", nil, []string{"63"}},
			{"long name", dnsIDs(strings.Repeat("a.", 127) + "com"), "rejectedIdentifier", nil, []string{"253"}},
			{"numeric TLD", dnsIDs("example.123"), "rejectedIdentifier", nil, []string{"numeric"}},
			{"empty dns value", dnsIDs(""), "malformed", &ident{"dns", ""}, []string{"empty"}},
			{"unknown type email", []ident{{"email", "a@example.com"}}, "unsupportedIdentifier", &ident{"email", "a@example.com"}, []string{`"email"`, `"dns"`}},
			{"upper-case type", []ident{{"DNS", "example.com"}}, "unsupportedIdentifier", nil, []string{`"DNS"`}},
			{"non-canonical IPv6", []ident{{"ip", "::0:1"}}, "rejectedIdentifier", &ident{"ip", "::0:1"}, []string{"canonical", `"::1"`}},
			{"IPv4-mapped IPv6", []ident{{"ip", "::ffff:1.2.3.4"}}, "rejectedIdentifier", &ident{"ip", "::ffff:1.2.3.4"}, []string{`"1.2.3.4"`}},
			{"IPv4 with leading zero", []ident{{"ip", "1.2.3.04"}}, "malformed", nil, []string{"not an IP"}},
			{"not an IP", []ident{{"ip", "example.com"}}, "malformed", nil, []string{"not an IP"}},
			{"IPv6 zone", []ident{{"ip", "fe80::1%eth0"}}, "malformed", nil, nil},
			{"empty identifiers", []ident{}, "malformed", nil, []string{"at least one identifier"}},
			{"null identifiers", nil, "malformed", nil, []string{"at least one identifier"}},
			{"identifiers not a list", "example.com", "malformed", nil, []string{"newOrder"}},
			{"one bad among good", dnsIDs("good.example.com", "Bad.example.com", "also-good.example.com"), "rejectedIdentifier", &ident{"dns", "Bad.example.com"}, nil},
			{"too many", tooMany, "rejectedIdentifier", nil, []string{"100"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := a.post(t, e.dir.NewOrder, map[string]any{"identifiers": c.ids})
				p := r.wantProblem(t, 400, c.typ, c.hints...)
				if c.bad != nil && (p.Identifier == nil || *p.Identifier != *c.bad) {
					t.Errorf("problem identifier %+v, want %+v", p.Identifier, *c.bad)
				}
				if r.Header.Get("Location") != "" {
					t.Errorf("refused order has Location %q", r.Header.Get("Location"))
				}
			})
		}
		t.Run("refused orders were not stored", func(t *testing.T) {
			if got := a.orders(t); len(got) != 0 {
				t.Errorf("orders after refusals: %q", got)
			}
		})

		t.Run("accepted identifiers come back as sent", func(t *testing.T) {
			sent := []ident{
				{"dns", "b.example.com"},
				{"dns", "a.example.com"},
				{"dns", "b.example.com"}, // duplicate, dropped
				{"dns", "xn--bcher-kva.de"},
				{"dns", "*.example.com"},
				{"dns", "example.com"},
				{"ip", "127.0.0.1"},
				{"ip", "2001:db8::1"},
				{"dns", "a.example.com"}, // duplicate, dropped
				{"ip", "127.0.0.1"},      // duplicate, dropped
			}
			want := []ident{sent[0], sent[1], sent[3], sent[4], sent[5], sent[6], sent[7]}
			r := a.post(t, e.dir.NewOrder, map[string]any{"identifiers": sent})
			var o orderDoc
			r.mustJSON(t, http.StatusCreated, &o)
			// Byte-identical, as lego compares them.
			wantJSON := string(mustJSON(t, want))
			if got := string(mustJSON(t, o.Identifiers)); got != wantJSON {
				t.Errorf("identifiers %s, want %s", got, wantJSON)
			}
			if o.Status != "pending" || len(o.Authorizations) != len(want) || o.Finalize == "" || o.Expires == "" {
				t.Fatalf("new order: %s", r.Body)
			}
			loc := r.Header.Get("Location")
			if o.Finalize != loc+"/finalize" {
				t.Errorf("finalize %q for order %q", o.Finalize, loc)
			}
			if again := a.order(t, loc); !slices.Equal(again.Identifiers, want) || !slices.Equal(again.Authorizations, o.Authorizations) {
				t.Errorf("order as fetched: %+v", again)
			}
			sameStrings(t, "orders", a.orders(t), []string{loc})

			for i, u := range o.Authorizations {
				az := a.authz(t, u)
				id := want[i]
				switch {
				case strings.HasPrefix(id.Value, "*."):
					if az.Identifier != (ident{"dns", strings.TrimPrefix(id.Value, "*.")}) || !az.Wildcard {
						t.Errorf("wildcard authz: identifier %+v wildcard %v", az.Identifier, az.Wildcard)
					}
					sameStrings(t, "wildcard challenges", az.challengeTypes(), []string{"dns-01"})
				case id.Type == "ip":
					if az.Identifier != id || az.Wildcard {
						t.Errorf("ip authz: %+v", az)
					}
					sameStrings(t, "ip challenges", az.challengeTypes(), []string{"http-01", "tls-alpn-01"})
				default:
					if az.Identifier != id || az.Wildcard {
						t.Errorf("dns authz: %+v", az)
					}
					ts := az.challengeTypes()
					slices.Sort(ts)
					sameStrings(t, "dns challenges", ts, []string{"dns-01", "http-01", "tls-alpn-01"})
				}
				if az.Status != "pending" || az.Expires == "" {
					t.Errorf("authz %s: %+v", u, az)
				}
				for _, c := range az.Challenges {
					// uacme aborts the order on a challenge without a token.
					if c.Status != "pending" || len(c.Token) < 43 || !strings.HasPrefix(c.URL, e.srv.URL+"/acme/chall/") {
						t.Errorf("challenge %+v", c)
					}
				}
			}
		})
	})
}

func TestNewOrderProfileAndValidity(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		now := time.Now().UTC()
		rfc := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
		ids := dnsIDs("profile.example.com")
		for _, c := range []struct {
			name    string
			payload map[string]any
			typ     string
			hints   []string
		}{
			{"unknown profile", map[string]any{"identifiers": ids, "profile": "premium"}, "invalidProfile", []string{`"premium"`, "default, shortlived"}},
			{"profile of the wrong case", map[string]any{"identifiers": ids, "profile": "Default"}, "invalidProfile", []string{"default"}},
			{"notBefore garbage", map[string]any{"identifiers": ids, "notBefore": "next tuesday"}, "malformed", []string{"notBefore", "RFC 3339"}},
			{"notAfter garbage", map[string]any{"identifiers": ids, "notAfter": "2030-13-45"}, "malformed", []string{"notAfter", "RFC 3339"}},
			{"notAfter a number", map[string]any{"identifiers": ids, "notAfter": 1700000000}, "malformed", []string{"newOrder"}},
			{"notAfter in the past", map[string]any{"identifiers": ids, "notAfter": rfc(-time.Hour)}, "malformed", []string{"past"}},
			{"notAfter before notBefore", map[string]any{"identifiers": ids, "notBefore": rfc(48 * time.Hour), "notAfter": rfc(24 * time.Hour)}, "malformed", []string{"later than notBefore"}},
			{"notBefore far ahead", map[string]any{"identifiers": ids, "notBefore": rfc(30 * 24 * time.Hour)}, "malformed", []string{"7 days"}},
			{"notBefore backdated", map[string]any{"identifiers": ids, "notBefore": rfc(-365 * 24 * time.Hour)}, "malformed", []string{"48 hours"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				a.post(t, e.dir.NewOrder, c.payload).wantProblem(t, 400, c.typ, c.hints...)
			})
		}
		t.Run("newOrder as POST-as-GET", func(t *testing.T) {
			a.post(t, e.dir.NewOrder, nil).wantProblem(t, 400, "malformed", "identifiers")
		})
		t.Run("refused orders were not stored", func(t *testing.T) {
			if got := a.orders(t); len(got) != 0 {
				t.Errorf("orders after refusals: %q", got)
			}
		})

		t.Run("offered profile", func(t *testing.T) {
			var o orderDoc
			a.post(t, e.dir.NewOrder, map[string]any{"identifiers": ids, "profile": "shortlived"}).mustJSON(t, http.StatusCreated, &o)
			if o.Profile != "shortlived" {
				t.Errorf("order profile %q", o.Profile)
			}
		})

		t.Run("requested validity is what gets issued", func(t *testing.T) {
			// lego's tests check the certificate's dates to the second.
			nb := now.Add(time.Hour).Truncate(time.Second)
			na := nb.Add(72 * time.Hour)
			r := a.post(t, e.dir.NewOrder, map[string]any{
				"identifiers": dnsIDs("validity.example.com"),
				"notBefore":   nb.Format(time.RFC3339),
				"notAfter":    na.Format(time.RFC3339),
			})
			var o orderDoc
			r.mustJSON(t, http.StatusCreated, &o)
			if o.NotBefore != nb.Format(time.RFC3339) || o.NotAfter != na.Format(time.RFC3339) {
				t.Errorf("order validity %s .. %s, want %s .. %s", o.NotBefore, o.NotAfter, nb, na)
			}
			a.solve(t, o)
			o = a.order(t, r.Header.Get("Location"))
			key := newECKey(t)
			a.finalize(t, o, makeCSR(t, key, csrSpec{DNS: []string{"validity.example.com"}})).mustJSON(t, http.StatusOK, &o)
			leaf := a.download(t, o.Certificate)[0]
			if !leaf.NotBefore.Equal(nb) || !leaf.NotAfter.Equal(na) {
				t.Errorf("certificate valid %s .. %s, want %s .. %s", leaf.NotBefore, leaf.NotAfter, nb, na)
			}
		})

		t.Run("shortlived profile validity", func(t *testing.T) {
			var o orderDoc
			r := a.post(t, e.dir.NewOrder, map[string]any{"identifiers": dnsIDs("short.example.com"), "profile": "shortlived"})
			r.mustJSON(t, http.StatusCreated, &o)
			a.solve(t, o)
			o = a.order(t, r.Header.Get("Location"))
			a.finalize(t, o, makeCSR(t, newECKey(t), csrSpec{DNS: []string{"short.example.com"}})).mustJSON(t, http.StatusOK, &o)
			leaf := a.download(t, o.Certificate)[0]
			if got := leaf.NotAfter.Sub(leaf.NotBefore); got != 160*time.Hour {
				t.Errorf("shortlived certificate lasts %s, want 160h", got)
			}
		})
	})
}
