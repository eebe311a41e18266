package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// BenchmarkVerifyJWS is the signature work of one request: parsing the
// flattened JWS, checking the header, verifying the signature.
func BenchmarkVerifyJWS(b *testing.B) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rs, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, k := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		key  any
	}{{"ES256", jose.ES256, ec}, {"RS256", jose.RS256, rs}} {
		b.Run(k.name, func(b *testing.B) {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key}, &jose.SignerOptions{
				EmbedJWK:     true,
				ExtraHeaders: map[jose.HeaderKey]any{"nonce": "bm9uY2U", "url": "https://acme.example/acme/new-order"},
			})
			if err != nil {
				b.Fatal(err)
			}
			obj, _ := signer.Sign([]byte(`{"identifiers":[{"type":"dns","value":"a.example.com"}]}`))
			body := []byte(obj.FullSerialize())
			b.ResetTimer()
			for range b.N {
				jws, _, p := parseJWS(body)
				if p != nil {
					b.Fatal(p)
				}
				sig := jws.Signatures[0].Protected
				if _, err := jws.Verify(sig.JSONWebKey); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
