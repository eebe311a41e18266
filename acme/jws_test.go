package acme_test

import (
	"crypto"
	"crypto/elliptic"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmegw/acmegw/storage/memory"
)

// jwsCase is one broken request: body builds it from a fresh nonce.
type jwsCase struct {
	name   string
	url    string // "" is newOrder
	body   func(t *testing.T, nonce string) []byte
	status int
	typ    string
	hints  []string
}

// TestJWSBattery sends newOrder (and newAccount) requests broken in every
// way RFC 8555 §6 forbids, and checks each gets its own problem type, a
// detail to act on, a Replay-Nonce, and that no order was created.
func TestJWSBattery(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		other := newECKey(t)
		newOrder := e.dir.NewOrder
		payload := mustJSON(t, map[string]any{"identifiers": dnsIDs("jws.example.com")})
		hdr := func(nonce string, extra map[string]any) map[string]any {
			h := map[string]any{"alg": "ES256", "nonce": nonce, "url": newOrder, "kid": a.url}
			for k, v := range extra {
				if v == nil {
					delete(h, k)
				} else {
					h[k] = v
				}
			}
			return h
		}
		good := func(t *testing.T, nonce string) []byte {
			return signJWS(t, a.key, a.url, nonce, newOrder, payload)
		}
		// flatParts splits a good request into its JSON fields.
		flatParts := func(t *testing.T, nonce string) map[string]any {
			var m map[string]any
			if err := json.Unmarshal(good(t, nonce), &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
		rsaKey := newRSAKey(t, 1024)
		ecForRS256 := newECKey(t)

		cases := []jwsCase{
			{name: "malformed JSON", body: func(t *testing.T, n string) []byte {
				return []byte(`{"protected": "eyJ`)
			}, status: 400, typ: "malformed", hints: []string{"flattened JSON"}},
			{name: "empty body", body: func(t *testing.T, n string) []byte {
				return []byte{}
			}, status: 400, typ: "malformed", hints: []string{"flattened JSON"}},
			{name: "JSON array", body: func(t *testing.T, n string) []byte {
				return []byte(`[{"protected":"e30"}]`)
			}, status: 400, typ: "malformed", hints: []string{"flattened JSON"}},
			{name: "non-JWS JSON", body: func(t *testing.T, n string) []byte {
				return payload
			}, status: 400, typ: "malformed", hints: []string{`"protected"`, `"signature"`}},
			{name: "compact serialization", body: func(t *testing.T, n string) []byte {
				s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: a.key},
					&jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"url": newOrder, "nonce": n, "kid": a.url}})
				if err != nil {
					t.Fatal(err)
				}
				obj, err := s.Sign(payload)
				if err != nil {
					t.Fatal(err)
				}
				compact, err := obj.CompactSerialize()
				if err != nil {
					t.Fatal(err)
				}
				return []byte(compact)
			}, status: 400, typ: "malformed", hints: []string{"flattened JSON"}},
			{name: "general serialization", body: func(t *testing.T, n string) []byte {
				m := flatParts(t, n)
				return mustJSON(t, map[string]any{
					"payload":    m["payload"],
					"signatures": []any{map[string]any{"protected": m["protected"], "signature": m["signature"]}},
				})
			}, status: 400, typ: "malformed", hints: []string{"flattened JSON serialization"}},
			{name: "general serialization next to flattened fields", body: func(t *testing.T, n string) []byte {
				m := flatParts(t, n)
				m["signatures"] = []any{map[string]any{"protected": m["protected"], "signature": m["signature"]}}
				return mustJSON(t, m)
			}, status: 400, typ: "malformed", hints: []string{"one signature"}},
			{name: "unprotected header", body: func(t *testing.T, n string) []byte {
				m := flatParts(t, n)
				m["header"] = map[string]any{"kid": a.url}
				return mustJSON(t, m)
			}, status: 400, typ: "malformed", hints: []string{"unprotected header"}},
			{name: "missing protected", body: func(t *testing.T, n string) []byte {
				m := flatParts(t, n)
				delete(m, "protected")
				return mustJSON(t, m)
			}, status: 400, typ: "malformed", hints: []string{`"protected"`}},
			{name: "missing payload", body: func(t *testing.T, n string) []byte {
				m := flatParts(t, n)
				delete(m, "payload")
				return mustJSON(t, m)
			}, status: 400, typ: "malformed", hints: []string{`"payload"`}},
			{name: "missing signature", body: func(t *testing.T, n string) []byte {
				m := flatParts(t, n)
				delete(m, "signature")
				return mustJSON(t, m)
			}, status: 400, typ: "malformed", hints: []string{`"signature"`}},
			{name: "protected header not base64url", body: func(t *testing.T, n string) []byte {
				m := flatParts(t, n)
				m["protected"] = "%%%" + m["protected"].(string)
				return mustJSON(t, m)
			}, status: 400, typ: "malformed", hints: []string{"base64url"}},
			{name: "protected header not JSON", body: func(t *testing.T, n string) []byte {
				return craft(t, "alg=ES256", payload, a.key)
			}, status: 400, typ: "malformed", hints: []string{"not JSON"}},
			{name: "payload not base64url", body: func(t *testing.T, n string) []byte {
				m := flatParts(t, n)
				m["payload"] = "***"
				return mustJSON(t, m)
			}, status: 400, typ: "malformed", hints: []string{"JWS"}},
			{name: "no url header", body: func(t *testing.T, n string) []byte {
				return craft(t, hdr(n, map[string]any{"url": nil}), payload, a.key)
			}, status: 400, typ: "malformed", hints: []string{`"url"`}},
			{name: "alg none without signature", body: func(t *testing.T, n string) []byte {
				return craft(t, hdr(n, map[string]any{"alg": "none"}), payload, nil)
			}, status: 400, typ: "badSignatureAlgorithm", hints: []string{`"none"`, "ES256"}},
			{name: "alg none with a signature", body: func(t *testing.T, n string) []byte {
				return craft(t, hdr(n, map[string]any{"alg": "none"}), payload, a.key)
			}, status: 400, typ: "badSignatureAlgorithm", hints: []string{`"none"`}},
			{name: "HS256", body: func(t *testing.T, n string) []byte {
				return craft(t, hdr(n, map[string]any{"alg": "HS256"}), payload, []byte("a shared secret of sufficient length"))
			}, status: 400, typ: "badSignatureAlgorithm", hints: []string{`"HS256"`}},
			{name: "HS256 keyed with the account's public key", body: func(t *testing.T, n string) []byte {
				return craft(t, hdr(n, map[string]any{"alg": "HS256"}), payload, []byte(jwkOf(t, a.key.Public())))
			}, status: 400, typ: "badSignatureAlgorithm", hints: []string{`"HS256"`}},
			{name: "lower-case alg", body: func(t *testing.T, n string) []byte {
				return craft(t, hdr(n, map[string]any{"alg": "es256"}), payload, a.key)
			}, status: 400, typ: "badSignatureAlgorithm", hints: []string{`"es256"`}},
			{name: "RS256 header with the EC account key", body: func(t *testing.T, n string) []byte {
				return craft(t, hdr(n, map[string]any{"alg": "RS256"}), payload, a.key)
			}, status: 400, typ: "badSignatureAlgorithm", hints: []string{`"RS256"`, `"ES256"`}},
			{name: "ES384 header with the P-256 account key", body: func(t *testing.T, n string) []byte {
				return craft(t, hdr(n, map[string]any{"alg": "ES384"}), payload, a.key)
			}, status: 400, typ: "badSignatureAlgorithm", hints: []string{`"ES384"`}},
			{name: "wrong url", body: func(t *testing.T, n string) []byte {
				return signJWS(t, a.key, a.url, n, e.dir.NewAccount, payload)
			}, status: 403, typ: "unauthorized", hints: []string{`"url"`, newOrder}},
			{name: "url with another scheme", body: func(t *testing.T, n string) []byte {
				return signJWS(t, a.key, a.url, n, strings.Replace(newOrder, "https://", "http://", 1), payload)
			}, status: 403, typ: "unauthorized", hints: []string{`"url"`}},
			{name: "missing nonce", body: func(t *testing.T, n string) []byte {
				return signJWS(t, a.key, a.url, "", newOrder, payload)
			}, status: 400, typ: "badNonce", hints: []string{`"nonce"`, "newNonce"}},
			{name: "unknown nonce", body: func(t *testing.T, n string) []byte {
				return signJWS(t, a.key, a.url, "bm90LWEtbm9uY2U", newOrder, payload)
			}, status: 400, typ: "badNonce", hints: []string{"retry"}},
			{name: "body over 64 KiB", body: func(t *testing.T, n string) []byte {
				big := mustJSON(t, map[string]any{"identifiers": dnsIDs("jws.example.com"), "pad": strings.Repeat("x", 70<<10)})
				return signJWS(t, a.key, a.url, n, newOrder, big)
			}, status: http.StatusRequestEntityTooLarge, typ: "malformed", hints: []string{"65536 bytes"}},
			{name: "unknown account kid", body: func(t *testing.T, n string) []byte {
				return signJWS(t, a.key, e.srv.URL+"/acme/acct/nosuchaccount", n, newOrder, payload)
			}, status: 400, typ: "accountDoesNotExist", hints: []string{"nosuchaccount"}},
			{name: "kid of another server", body: func(t *testing.T, n string) []byte {
				return signJWS(t, a.key, strings.Replace(a.url, e.srv.URL, "https://ca.example", 1), n, newOrder, payload)
			}, status: 400, typ: "accountDoesNotExist", hints: []string{"ca.example"}},
			{name: "jwk where kid is required", body: func(t *testing.T, n string) []byte {
				return signJWS(t, a.key, "", n, newOrder, payload)
			}, status: 400, typ: "malformed", hints: []string{`"kid"`}},
			{name: "both jwk and kid", body: func(t *testing.T, n string) []byte {
				return craft(t, hdr(n, map[string]any{"jwk": jwkOf(t, a.key.Public())}), payload, a.key)
			}, status: 400, typ: "malformed", hints: []string{`"jwk"`}},
			{name: "neither jwk nor kid", body: func(t *testing.T, n string) []byte {
				return craft(t, hdr(n, map[string]any{"kid": nil}), payload, a.key)
			}, status: 400, typ: "malformed", hints: []string{`"kid"`}},
			{name: "tampered signature", body: func(t *testing.T, n string) []byte {
				m := flatParts(t, n)
				sig := []byte(m["signature"].(string))
				if sig[3] == 'A' {
					sig[3] = 'B'
				} else {
					sig[3] = 'A'
				}
				m["signature"] = string(sig)
				return mustJSON(t, m)
			}, status: 400, typ: "malformed", hints: []string{"signature"}},
			{name: "tampered payload", body: func(t *testing.T, n string) []byte {
				m := flatParts(t, n)
				m["payload"] = b64(mustJSON(t, map[string]any{"identifiers": dnsIDs("evil.example.com")}))
				return mustJSON(t, m)
			}, status: 400, typ: "malformed", hints: []string{"signature"}},
			{name: "signed by a key other than the account's", body: func(t *testing.T, n string) []byte {
				return signJWS(t, other, a.url, n, newOrder, payload)
			}, status: 400, typ: "malformed", hints: []string{"signature"}},
			{name: "payload not JSON", body: func(t *testing.T, n string) []byte {
				return signJWS(t, a.key, a.url, n, newOrder, []byte("identifiers=jws.example.com"))
			}, status: 400, typ: "malformed", hints: []string{"not valid JSON"}},
			{name: "payload of the wrong shape", body: func(t *testing.T, n string) []byte {
				return signJWS(t, a.key, a.url, n, newOrder, []byte(`{"identifiers":"jws.example.com"}`))
			}, status: 400, typ: "malformed", hints: []string{"newOrder"}},
			// newAccount wants the key itself.
			{name: "kid where jwk is required", url: e.dir.NewAccount, body: func(t *testing.T, n string) []byte {
				return signJWS(t, a.key, a.url, n, e.dir.NewAccount, []byte(`{"termsOfServiceAgreed":true}`))
			}, status: 400, typ: "malformed", hints: []string{`"jwk"`}},
			{name: "RS256 header with an EC jwk", url: e.dir.NewAccount, body: func(t *testing.T, n string) []byte {
				h := map[string]any{"alg": "RS256", "nonce": n, "url": e.dir.NewAccount, "jwk": jwkOf(t, ecForRS256.Public())}
				return craft(t, h, []byte(`{"termsOfServiceAgreed":true}`), ecForRS256)
			}, status: 400, typ: "badSignatureAlgorithm", hints: []string{`"RS256"`, `"ES256"`}},
			{name: "RSA-1024 account key", url: e.dir.NewAccount, body: func(t *testing.T, n string) []byte {
				return signJWS(t, rsaKey, "", n, e.dir.NewAccount, []byte(`{"termsOfServiceAgreed":true}`))
			}, status: 400, typ: "badPublicKey", hints: []string{"1024"}},
			{name: "P-224 account key", url: e.dir.NewAccount, body: func(t *testing.T, n string) []byte {
				k := newKeyOf(t, elliptic.P224())
				// go-jose cannot encode P-224, so the JWK is written by hand.
				x, y := k.X.FillBytes(make([]byte, 28)), k.Y.FillBytes(make([]byte, 28))
				jwk := map[string]string{"kty": "EC", "crv": "P-224", "x": b64(x), "y": b64(y)}
				h := map[string]any{"alg": "ES256", "nonce": n, "url": e.dir.NewAccount, "jwk": jwk}
				return craft(t, h, []byte(`{"termsOfServiceAgreed":true}`), k)
			}, status: 400, typ: "malformed", hints: []string{"JWS"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				url := c.url
				if url == "" {
					url = newOrder
				}
				r := e.postRaw(t, url, c.body(t, e.nonce(t)))
				r.wantProblem(t, c.status, c.typ, c.hints...)
			})
		}

		t.Run("nothing was written", func(t *testing.T) {
			if got := a.orders(t); len(got) != 0 {
				t.Errorf("broken newOrder requests created orders: %q", got)
			}
			for _, k := range []*acct{{e: e, key: ecForRS256}, {e: e, key: other}} {
				k.postJWK(t, e.dir.NewAccount, map[string]any{"onlyReturnExisting": true}).
					wantProblem(t, 400, "accountDoesNotExist")
			}
		})

		t.Run("reused nonce", func(t *testing.T) {
			n := e.nonce(t)
			first := signJWS(t, a.key, a.url, n, a.url, []byte{})
			e.postRaw(t, a.url, first).mustJSON(t, http.StatusOK, nil)
			e.postRaw(t, a.url, first).wantProblem(t, 400, "badNonce", "already used")
			again := signJWS(t, a.key, a.url, n, a.url, []byte{})
			e.postRaw(t, a.url, again).wantProblem(t, 400, "badNonce")
		})

		t.Run("nonce from an error response works", func(t *testing.T) {
			// certbot retries a badNonce once, with the nonce of the error.
			r := e.postRaw(t, a.url, signJWS(t, a.key, a.url, "bm9uZQ", a.url, []byte{}))
			r.wantProblem(t, 400, "badNonce")
			n := r.Header.Get("Replay-Nonce")
			e.postRaw(t, a.url, signJWS(t, a.key, a.url, n, a.url, []byte{})).mustJSON(t, http.StatusOK, nil)
		})

		t.Run("nonce survives a request rejected before it was read", func(t *testing.T) {
			n := e.nonce(t)
			e.postRaw(t, newOrder, craft(t, hdr(n, map[string]any{"alg": "none"}), payload, nil)).
				wantProblem(t, 400, "badSignatureAlgorithm")
			e.postRaw(t, a.url, signJWS(t, a.key, a.url, n, a.url, []byte{})).mustJSON(t, http.StatusOK, nil)
		})

		t.Run("body just under 64 KiB", func(t *testing.T) {
			// base64url makes 4 bytes of 3: a 45 KiB payload is a ~60 KiB body.
			big := mustJSON(t, map[string]any{"pad": strings.Repeat("x", 45<<10)})
			body := signJWS(t, a.key, a.url, e.nonce(t), a.url, big)
			if len(body) >= 64<<10 {
				t.Fatalf("body is %d bytes", len(body))
			}
			e.postRaw(t, a.url, body).mustJSON(t, http.StatusOK, nil)
		})
	})
}

// TestAccountKeyAlgorithms checks every algorithm real clients sign with.
func TestAccountKeyAlgorithms(t *testing.T) {
	t.Parallel()
	e := newEnv(t, memory.New())
	keys := map[string]crypto.Signer{
		"RS256": newRSAKey(t, 2048),
		"ES256": newECKey(t),
		"ES384": newKeyOf(t, elliptic.P384()),
		"ES512": newKeyOf(t, elliptic.P521()),
		"EdDSA": newEd25519Key(t),
	}
	for name, k := range keys {
		t.Run(name, func(t *testing.T) {
			a := e.newAccountWithKey(t, k)
			a.newOrder(t, dnsIDs(strings.ToLower(name)+".example.com")...)
			if n := len(a.orders(t)); n != 1 {
				t.Errorf("%d orders", n)
			}
		})
	}
}
