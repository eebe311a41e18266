package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
)

// signedFlat returns a flattened JWS with the given nonce and url, and the
// text of its members.
func signedFlat(t testing.TB, nonce, url string) (string, map[string]string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, &jose.SignerOptions{
		ExtraHeaders: map[jose.HeaderKey]any{"nonce": nonce, "url": url, "kid": "https://acme.test/acme/acct/a"},
	})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	flat := obj.FullSerialize()
	var m map[string]string
	if err := json.Unmarshal([]byte(flat), &m); err != nil {
		t.Fatal(err)
	}
	return flat, m
}

// TestParseJWSOneReading checks that parseJWS never checks one protected
// header and hands go-jose another: a body whose JSON two decoders could
// read differently is refused. Before, an unsigned "Protected" member after
// the signed "protected" supplied the nonce and url that were checked, while
// go-jose verified the signed header: a captured request could be replayed
// with a fresh nonce, to another URL.
func TestParseJWSOneReading(t *testing.T) {
	t.Parallel()
	flat, m := signedFlat(t, "old-nonce", "https://acme.test/acme/new-order")
	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","nonce":"fresh-nonce","url":"https://acme.test/acme/revoke-cert","kid":"https://acme.test/acme/acct/a"}`))
	body := func(members ...string) []byte { return []byte("{" + strings.Join(members, ",") + "}") }
	q := func(name, value string) string { return `"` + name + `":"` + value + `"` }
	sig, pay := q("signature", m["signature"]), q("payload", m["payload"])

	for name, b := range map[string][]byte{
		"case variant after":       body(q("protected", m["protected"]), pay, sig, q("Protected", forged)),
		"case variant before":      body(q("Protected", forged), q("protected", m["protected"]), pay, sig),
		"unicode fold variant":     body(q("protected", m["protected"]), pay, q("ſignature", "AAAA"), sig),
		"duplicate":                body(q("protected", m["protected"]), pay, sig, q("protected", forged)),
		"escaped duplicate":        body(q("protected", m["protected"]), pay, sig, q(`prot\u0065cted`, forged)),
		"duplicate among many":     body(q("a", ""), q("b", ""), q("c", ""), q("d", ""), q("e", ""), q("f", ""), q("g", ""), q("protected", m["protected"]), pay, sig, q("protected", forged)),
		"duplicate unknown member": body(q("protected", m["protected"]), pay, sig, q("x", ""), q("x", "")),
	} {
		jws, hdr, p := parseJWS(b)
		if p == nil {
			t.Errorf("%s: accepted, checked nonce %q, verified header's %q", name, hdr.nonce, jws.Signatures[0].Protected.Nonce)
			continue
		}
		if p.Type != errorNS+"malformed" {
			t.Errorf("%s: %s, want malformed", name, p.Type)
		}
	}

	// Unknown members, nested objects and many members are fine.
	for name, b := range map[string][]byte{
		"as signed":      []byte(flat),
		"nested unknown": body(q("protected", m["protected"]), `"x":{"protected":"A","y":[1,"}",{"protected":2}]}`, pay, sig),
		"many members":   body(q("a", ""), q("b", ""), q("c", ""), q("d", ""), q("e", ""), q("f", ""), q("g", ""), q("h", ""), q("protected", m["protected"]), pay, sig),
		"escaped name":   body(q(`prot\u0065cted`, m["protected"]), pay, sig),
	} {
		jws, hdr, p := parseJWS(b)
		if p != nil {
			t.Errorf("%s: %v", name, p)
			continue
		}
		if hdr.nonce != "old-nonce" || jws.Signatures[0].Protected.Nonce != "old-nonce" {
			t.Errorf("%s: nonce %q / %q", name, hdr.nonce, jws.Signatures[0].Protected.Nonce)
		}
	}
}

// FuzzDecodeFlatJWS checks decodeFlatJWS against go-jose's own JSON reading
// of the same body: whatever decodeFlatJWS accepts, go-jose's decoder reads
// the same protected header, payload and signature from.
func FuzzDecodeFlatJWS(f *testing.F) {
	flat, _ := signedFlat(f, "n", "https://acme.test/x")
	for _, s := range []string{
		flat,
		`{"protected":"a","payload":"b","signature":"c"}`,
		`{"protected":"a","Protected":"b"}`,
		`{"protected":"a","protected":"b"}`,
		`{"prot\u0065cted":"a"}`,
		`{"payload":null,"header":null,"signatures":[]}`,
		`{"x":{"protected":"q"},"protected":"a"}`,
		`{"ſignature":"a"}`,
		`{"a\"b":"c","protected":"\"}"}`,
		`null`,
		`[]`,
		` { } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decodeFlatJWS(body)
		if err != nil {
			return
		}
		var want struct {
			Protected *string `json:"protected"`
			Payload   *string `json:"payload"`
			Signature *string `json:"signature"`
		}
		if err := josejson.Unmarshal(body, &want); err != nil {
			// go-jose's decoder also refuses what encoding/json takes in
			// places (invalid UTF-8, nested duplicates); the point is that
			// it never reads differently what both accept.
			return
		}
		str := func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		}
		if got.Protected != str(want.Protected) || str(got.Payload) != str(want.Payload) || (got.Payload == nil) != (want.Payload == nil) || got.Signature != str(want.Signature) {
			t.Fatalf("decodeFlatJWS read %+v, go-jose reads %q %v %q", got, str(want.Protected), want.Payload, str(want.Signature))
		}
	})
}

// FuzzScanFlatJWS checks scanFlatJWS against encoding/json and the general
// path: whatever it accepts, the general path accepts too and reads the
// same members.
func FuzzScanFlatJWS(f *testing.F) {
	flat, _ := signedFlat(f, "n", "https://acme.test/x")
	for _, s := range []string{
		flat,
		`{"protected":"a","payload":"","signature":"c"}`,
		` { "signature" : "c" , "payload":"b","protected":"a" } `,
		`{"protected":"a","protected":"b"}`,
		`{"Protected":"a"}`,
		`{"protected":"a\u0062"}`,
		`{"protected":"a","payload":null}`,
		`{"protected":"a"}x`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := scanFlatJWS(body)
		if !ok {
			return
		}
		want, err := readFlatJWS(body)
		if err != nil {
			t.Fatalf("scanFlatJWS accepted %q, the general path refuses it: %v", body, err)
		}
		if got.Protected != want.Protected || got.Signature != want.Signature || (got.Payload == nil) != (want.Payload == nil) ||
			(got.Payload != nil && *got.Payload != *want.Payload) || want.Signatures != nil || want.Header != nil {
			t.Fatalf("scanFlatJWS read %+v from %q, the general path %+v", got, body, want)
		}
	})
}

// TestScanFlatJWS: the scan takes the bodies clients send, and leaves
// everything unusual to the general path.
func TestScanFlatJWS(t *testing.T) {
	flat, _ := signedFlat(t, "n", "https://acme.test/x")
	for _, body := range []string{
		flat,
		`{"protected":"a","payload":"","signature":"c"}`,
		"\t{ \"signature\" : \"c\" ,\n\"payload\":\"b\",\r\"protected\":\"a\" } ",
	} {
		if _, ok := scanFlatJWS([]byte(body)); !ok {
			t.Errorf("scan refused %q", body)
		}
	}
	for _, body := range []string{
		`{"protected":"a","protected":"b"}`,
		`{"Protected":"a","payload":"b","signature":"c"}`,
		`{"protected":"a\u0062","payload":"b","signature":"c"}`,
		`{"protected":"a+/=","payload":"b","signature":"c"}`,
		`{"protected":"a","payload":null,"signature":"c"}`,
		`{"protected":"a","payload":"b","signature":"c","header":{}}`,
		`{"protected":"a","payload":"b","signature":"c"}x`,
		`{"protected":"a","payload":"b","signature":"c",}`,
		`{"protected":"a" "payload":"b"}`,
		`{}`,
		``,
		`{"protected":"a`,
	} {
		if f, ok := scanFlatJWS([]byte(body)); ok {
			t.Errorf("scan took %q as %+v; it is for the general path", body, f)
		}
	}
}
