package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmegw/acmegw/storage"
)

// FuzzParseJWS checks that parseJWS never panics, that every refusal is a
// 400-class ACME problem, and that whatever it accepts is a one-signature JWS
// with an allowed algorithm and a "url".
func FuzzParseJWS(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, &jose.SignerOptions{
		EmbedJWK:     true,
		ExtraHeaders: map[jose.HeaderKey]any{"nonce": "bm9uY2U", "url": "https://acme.example/acme/new-account"},
	})
	if err != nil {
		f.Fatal(err)
	}
	obj, err := signer.Sign([]byte(`{"termsOfServiceAgreed":true}`))
	if err != nil {
		f.Fatal(err)
	}
	flat := obj.FullSerialize()
	compact, _ := obj.CompactSerialize()
	enc := base64.RawURLEncoding.EncodeToString
	for _, seed := range []string{
		flat,
		compact,
		"",
		"null",
		"{}",
		"[]",
		`{"protected":"","payload":"","signature":""}`,
		`{"protected":"` + enc([]byte(`{"alg":"none","url":"u"}`)) + `","payload":"","signature":""}`,
		`{"protected":"` + enc([]byte(`{"alg":"HS256","url":"u","kid":"k"}`)) + `","payload":"e30","signature":"AAAA"}`,
		`{"protected":"` + enc([]byte(`{"alg":"ES256","url":"u","kid":"k"}`)) + `","payload":"e30","signature":"AAAA"}`,
		`{"protected":"` + enc([]byte(`{"alg":"ES256","ALG":"none","url":"u"}`)) + `","payload":"e30","signature":"AAAA"}`,
		`{"payload":"e30","signatures":[{"protected":"e30","signature":"AAAA"}]}`,
		`{"protected":"e30","payload":"e30","signature":"AAAA","header":{"kid":"x"}}`,
		strings.Replace(flat, `"payload":"`, `"payload":"*`, 1),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		jws, hdr, p := parseJWS(body)
		if p != nil {
			if jws != nil {
				t.Fatalf("problem %v together with a JWS", p)
			}
			if !strings.HasPrefix(p.Type, errorNS) || p.Status != http.StatusBadRequest || p.Detail == "" {
				t.Fatalf("refusal is not a proper problem: %+v", p)
			}
			switch strings.TrimPrefix(p.Type, errorNS) {
			case "malformed", "badSignatureAlgorithm":
			default:
				t.Fatalf("unexpected problem type %q", p.Type)
			}
			return
		}
		if jws == nil || len(jws.Signatures) != 1 {
			t.Fatalf("accepted JWS without exactly one signature")
		}
		if hdr.url == "" {
			t.Fatal("accepted JWS without url")
		}
		if !algAllowed(hdr.alg) || !algAllowed(jws.Signatures[0].Protected.Algorithm) {
			t.Fatalf("accepted algorithm %q / %q", hdr.alg, jws.Signatures[0].Protected.Algorithm)
		}
	})
}

// FuzzCheckIdentifier checks that checkIdentifier never panics and accepts
// only what a certificate can carry unchanged: lower-case LDH names with at
// most a leading "*." and IP addresses in canonical form.
func FuzzCheckIdentifier(f *testing.F) {
	for _, s := range []struct{ typ, value string }{
		{"dns", "example.com"},
		{"dns", "*.example.com"},
		{"dns", "*.*.a.com"},
		{"dns", "a*.a.com"},
		{"dns", "Example.com"},
		{"dns", "example.com."},
		{"dns", "1.2.3.4"},
		{"dns", "bücher.de"},
		{"dns", "xn--bcher-kva.de"},
		{"dns", "foo_bar.example.com"},
		{"dns", "localhost"},
		{"dns", ""},
		{"dns", "*."},
		{"dns", "ab--c.example.com"},
		{"ip", "::0:1"},
		{"ip", "::1"},
		{"ip", "127.0.0.1"},
		{"ip", "::ffff:1.2.3.4"},
		{"ip", "fe80::1%eth0"},
		{"email", "a@example.com"},
	} {
		f.Add(s.typ, s.value)
	}
	f.Fuzz(func(t *testing.T, typ, value string) {
		id := storage.Identifier{Type: typ, Value: value}
		p := checkIdentifier(id)
		if p != nil {
			switch strings.TrimPrefix(p.Type, errorNS) {
			case "malformed", "rejectedIdentifier", "unsupportedIdentifier":
			default:
				t.Fatalf("unexpected problem type %q", p.Type)
			}
			if p.Status != http.StatusBadRequest || p.Detail == "" {
				t.Fatalf("bad problem %+v", p)
			}
			return
		}
		switch typ {
		case "ip":
			addr, err := netip.ParseAddr(value)
			if err != nil || addr.String() != value || addr.Is4In6() || addr.Zone() != "" {
				t.Fatalf("accepted ip %q", value)
			}
		case "dns":
			if len(value) > 253 || strings.HasSuffix(value, ".") {
				t.Fatalf("accepted dns %q", value)
			}
			base := strings.TrimPrefix(value, "*.")
			labels := strings.Split(base, ".")
			if len(labels) < 2 {
				t.Fatalf("accepted single-label dns %q", value)
			}
			for _, l := range labels {
				if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
					t.Fatalf("accepted dns %q with label %q", value, l)
				}
				for _, c := range []byte(l) {
					if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
						t.Fatalf("accepted dns %q with byte %q", value, c)
					}
				}
			}
			if _, err := netip.ParseAddr(base); err == nil {
				t.Fatalf("accepted IP address %q as dns", value)
			}
		default:
			t.Fatalf("accepted identifier type %q", typ)
		}
		// The order keeps an accepted identifier exactly as sent, once.
		out, p := checkIdentifiers([]storage.Identifier{id, id}, 100)
		if p != nil || len(out) != 1 || out[0] != id {
			t.Fatalf("checkIdentifiers(%+v twice) = %+v, %v", id, out, p)
		}
	})
}
