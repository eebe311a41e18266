package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestKidJWSMatchesGoJose signs plain "kid" requests with every accepted
// algorithm and checks that the fast path takes them and agrees with
// go-jose on good and tampered signatures, and on a key of another account.
func TestKidJWSMatchesGoJose(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	keys := map[jose.SignatureAlgorithm]crypto.Signer{jose.RS256: rsaKey, jose.EdDSA: edKey}
	for alg, curve := range map[jose.SignatureAlgorithm]elliptic.Curve{jose.ES256: elliptic.P256(), jose.ES384: elliptic.P384(), jose.ES512: elliptic.P521()} {
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[alg] = k
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for alg, key := range keys {
		t.Run(string(alg), func(t *testing.T) {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, &jose.SignerOptions{
				ExtraHeaders: map[jose.HeaderKey]any{"kid": "https://acme.example/acme/acct/1", "nonce": "bm9uY2U", "url": "https://acme.example/acme/order/1"},
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, payload := range []string{`{"identifiers":[]}`, ``} {
				obj, err := signer.Sign([]byte(payload))
				if err != nil {
					t.Fatal(err)
				}
				body := []byte(obj.FullSerialize())
				fast, hdr, ok := parseKidJWS(body)
				if !ok {
					t.Fatalf("plain kid JWS not taken by the fast path: %s", body)
				}
				if hdr.alg != string(alg) || hdr.nonce != "bm9uY2U" || hdr.url != "https://acme.example/acme/order/1" || fast.kid != "https://acme.example/acme/acct/1" {
					t.Fatalf("header %+v kid %q", hdr, fast.kid)
				}
				got, ok := fast.verify(key.Public(), string(alg))
				if !ok || string(got) != payload {
					t.Fatalf("fast verify = %q, %v; want %q, true", got, ok, payload)
				}
				if _, ok := fast.verify(&other.PublicKey, string(alg)); ok {
					t.Fatal("fast path verified with another key")
				}
				if _, ok := fast.verify(key.Public(), "ES256K"); ok {
					t.Fatal("fast path verified under an unknown alg")
				}
				// A flipped bit in the signature, the payload or the header fails both ways.
				for _, part := range []string{"signature", "payload", "protected"} {
					bad := tamper(t, body, part)
					slow, _, p := parseJWS(bad)
					slowOK := p == nil
					if slowOK {
						_, err := slow.Verify(key.Public())
						slowOK = err == nil
					}
					fastOK := false
					if f, _, ok := parseKidJWS(bad); ok {
						_, fastOK = f.verify(key.Public(), string(alg))
					}
					if fastOK || slowOK {
						t.Fatalf("tampered %s verified: fast %v, go-jose %v", part, fastOK, slowOK)
					}
				}
			}
		})
	}
}

// tamper changes one character of a part of a flattened JWS.
func tamper(t *testing.T, body []byte, part string) []byte {
	var m map[string]string
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	v := m[part]
	if v == "" {
		v = "e30" // an empty payload becomes {}
	} else {
		c := byte('A')
		if v[len(v)/2] == 'A' {
			c = 'B'
		}
		v = v[:len(v)/2] + string(c) + v[len(v)/2+1:]
	}
	m[part] = v
	out, _ := json.Marshal(m)
	return out
}

// TestKidJWSFallsBack checks that anything but the plain case is left to
// parseJWS, which explains what is wrong.
func TestKidJWSFallsBack(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	sign := func(protected, payload string) []byte {
		obj, err := json.Marshal(map[string]string{"protected": b64([]byte(protected)), "payload": b64([]byte(payload)), "signature": b64([]byte("sig"))})
		if err != nil {
			t.Fatal(err)
		}
		return obj
	}
	plain := `{"alg":"ES256","kid":"k","nonce":"n","url":"u"}`
	if _, _, ok := parseKidJWS(sign(plain, "{}")); !ok {
		t.Fatal("plain header not taken")
	}
	// An escaped member name is the name it spells: the one decoder of the
	// fast path reads it so, and the signature covers the bytes as sent.
	if _, hdr, ok := parseKidJWS(sign(`{"\u0061lg":"ES256","kid":"k","nonce":"n","url":"u"}`, "{}")); !ok || hdr.alg != "ES256" {
		t.Fatalf("escaped name: %v %+v", ok, hdr)
	}
	for name, body := range map[string][]byte{
		"jwk":                sign(`{"alg":"ES256","jwk":{},"nonce":"n","url":"u"}`, "{}"),
		"kid and jwk":        sign(`{"alg":"ES256","kid":"k","jwk":{},"nonce":"n","url":"u"}`, "{}"),
		"extra member":       sign(`{"alg":"ES256","kid":"k","nonce":"n","url":"u","crit":["b64"],"b64":false}`, "{}"),
		"duplicate alg":      sign(`{"alg":"ES256","alg":"none","kid":"k","nonce":"n","url":"u"}`, "{}"),
		"other case":         sign(`{"alg":"ES256","Kid":"k","nonce":"n","url":"u"}`, "{}"),
		"unterminated":       sign(`{"alg":"ES256","kid":"k","nonce":"n","url":"u`, "{}"),
		"not an object":      sign(`["alg","kid"]`, "{}"),
		"alg none":           sign(`{"alg":"none","kid":"k","nonce":"n","url":"u"}`, "{}"),
		"alg HS256":          sign(`{"alg":"HS256","kid":"k","nonce":"n","url":"u"}`, "{}"),
		"no url":             sign(`{"alg":"ES256","kid":"k","nonce":"n"}`, "{}"),
		"kid not string":     sign(`{"alg":"ES256","kid":1,"nonce":"n","url":"u"}`, "{}"),
		"header not json":    sign(`{"alg":`, "{}"),
		"padded payload":     []byte(strings.Replace(string(sign(plain, "{}")), `"payload":"e30"`, `"payload":"e30="`, 1)),
		"unprotected header": []byte(strings.Replace(string(sign(plain, "{}")), `{`, `{"header":{"kid":"k"},`, 1)),
		"signatures":         []byte(strings.Replace(string(sign(plain, "{}")), `{`, `{"signatures":[],`, 1)),
		"empty signature":    []byte(strings.Replace(string(sign(plain, "{}")), b64([]byte("sig")), "", 1)),
	} {
		if _, _, ok := parseKidJWS(body); ok {
			t.Errorf("%s: taken by the fast path: %s", name, body)
		}
	}
}

// FuzzParseKidJWS checks that the fast path never panics and takes only
// bodies the general path (parseJWS, go-jose) also accepts, reading the
// same alg, kid, nonce and url.
func FuzzParseKidJWS(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, &jose.SignerOptions{
		ExtraHeaders: map[jose.HeaderKey]any{"kid": "https://acme.example/acme/acct/1", "nonce": "bm9uY2U", "url": "https://acme.example/acme/order/1"},
	})
	obj, _ := signer.Sign([]byte(`{}`))
	f.Add([]byte(obj.FullSerialize()))
	f.Add([]byte(`{"protected":"eyJhbGciOiJFUzI1NiIsImtpZCI6ImsiLCJub25jZSI6Im4iLCJ1cmwiOiJ1In0","payload":"e30","signature":"c2ln"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, hdr, ok := parseKidJWS(body)
		if !ok {
			return
		}
		slow, slowHdr, p := parseJWS(body)
		if p != nil {
			t.Fatalf("fast path took a body parseJWS refuses (%s): %s", p.Detail, body)
		}
		sig := slow.Signatures[0].Protected
		if slowHdr != hdr || sig.KeyID != fast.kid || sig.JSONWebKey != nil {
			t.Fatalf("readings differ: fast %+v kid %q, go-jose %+v kid %q", hdr, fast.kid, slowHdr, sig.KeyID)
		}
		if string(fast.payload) != string(slow.UnsafePayloadWithoutVerification()) {
			t.Fatalf("payloads differ: %q vs %q", fast.payload, slow.UnsafePayloadWithoutVerification())
		}
	})
}
