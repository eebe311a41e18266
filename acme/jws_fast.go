package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"math/big"
)

// kidJWS is a request signed by an account key ("kid") whose protected
// header is the plain one every ACME client sends: alg, kid, nonce and url,
// each exactly once, nothing else. Such a request is verified here with the
// standard library instead of through go-jose, which would decode the
// header a second time and rebuild the signing input (about a sixth of a
// request's JWS cost besides the signature itself). Anything else takes the
// general path (parseJWS), whose answers and messages are unchanged.
//
// Here only one reading of the header exists, ours, and the signature is
// checked over the exact bytes sent, so the header that was checked is the
// header that was signed.
type kidJWS struct {
	kid          string
	signingInput string // protected "." payload, both as sent
	payload      []byte
	signature    []byte
}

// strictB64 refuses padding and non-canonical trailing bits: a part that
// go-jose might read differently goes to the general path instead.
var strictB64 = base64.RawURLEncoding.Strict()

// kidHeaderMembers are the protected header members of the plain case.
var kidHeaderMembers = [...]string{"alg", "kid", "nonce", "url"}

// parseKidJWS returns the request if the body is the plain case, ok false
// otherwise (the caller then uses parseJWS, which explains any mistake).
func parseKidJWS(body []byte) (kidJWS, protectedHeader, bool) {
	var out kidJWS
	flat, err := decodeFlatJWS(body)
	if err != nil || flat.Signatures != nil || flat.Header != nil ||
		flat.Protected == "" || flat.Payload == nil || flat.Signature == "" {
		return out, protectedHeader{}, false
	}
	raw, err := strictB64.DecodeString(flat.Protected)
	if err != nil {
		return out, protectedHeader{}, false
	}
	var ph struct {
		Alg   string `json:"alg"`
		Kid   string `json:"kid"`
		Nonce string `json:"nonce"`
		URL   string `json:"url"`
	}
	// Unmarshal first: onlyMembers's scan expects valid JSON. Its names
	// are read (escapes decoded) as Unmarshal reads them, so what it
	// checks is what Unmarshal filled in.
	if err := json.Unmarshal(raw, &ph); err != nil || !onlyMembers(raw, kidHeaderMembers[:]) ||
		!algAllowed(ph.Alg) || ph.Kid == "" || ph.URL == "" {
		return out, protectedHeader{}, false
	}
	payload, err := strictB64.DecodeString(*flat.Payload)
	if err != nil {
		return out, protectedHeader{}, false
	}
	sig, err := strictB64.DecodeString(flat.Signature)
	if err != nil {
		return out, protectedHeader{}, false
	}
	out = kidJWS{kid: ph.Kid, signingInput: flat.Protected + "." + *flat.Payload, payload: payload, signature: sig}
	return out, protectedHeader{alg: ph.Alg, nonce: ph.Nonce, url: ph.URL}, true
}

// onlyMembers reports whether the JSON object raw has each of its members
// once, every one named (exactly) in names.
func onlyMembers(raw []byte, names []string) bool {
	var seen [len(kidHeaderMembers)]bool
	ok, n := true, 0
	topLevelNames(raw, func(name []byte) bool {
		for i, m := range names {
			if string(name) == m && !seen[i] {
				seen[i] = true
				n++
				return true
			}
		}
		ok = false
		return false
	})
	return ok && n > 0
}

// verify checks the signature with the account's key and returns the
// payload. alg has been matched to the key (checkAlgMatchesKey); it is
// checked again here so that this function alone is never lenient.
func (j kidJWS) verify(key any, alg string) ([]byte, bool) {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		var digest []byte
		var size int
		switch alg {
		case "ES256":
			d := sha256.Sum256([]byte(j.signingInput))
			digest, size = d[:], 32
		case "ES384":
			d := sha512.Sum384([]byte(j.signingInput))
			digest, size = d[:], 48
		case "ES512":
			d := sha512.Sum512([]byte(j.signingInput))
			digest, size = d[:], 66
		default:
			return nil, false
		}
		if (k.Curve.Params().BitSize+7)/8 != size || len(j.signature) != 2*size {
			return nil, false
		}
		r := new(big.Int).SetBytes(j.signature[:size])
		s := new(big.Int).SetBytes(j.signature[size:])
		return j.verified(ecdsa.Verify(k, digest, r, s))
	case *rsa.PublicKey:
		if alg != "RS256" {
			return nil, false
		}
		d := sha256.Sum256([]byte(j.signingInput))
		return j.verified(rsa.VerifyPKCS1v15(k, crypto.SHA256, d[:], j.signature) == nil)
	case ed25519.PublicKey:
		if alg != "EdDSA" {
			return nil, false
		}
		return j.verified(ed25519.Verify(k, []byte(j.signingInput), j.signature))
	}
	return nil, false
}

func (j kidJWS) verified(ok bool) ([]byte, bool) {
	if !ok {
		return nil, false
	}
	return j.payload, true
}
