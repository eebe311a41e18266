package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmegw/acmegw/storage"
)

// jwsMode says which key a request must be signed with (RFC 8555 §6.2).
type jwsMode int

const (
	jwsAccount     jwsMode = iota // "kid": an existing account's URL
	jwsEmbeddedKey                // "jwk": newAccount, and the inner keyChange JWS
	jwsEither                     // revokeCert: account or certificate key
)

// allowedAlgs are the JWS algorithms accepted for account keys. HMAC and
// "none" are absent on purpose: they would let anyone forge requests.
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// request is a POST after its JWS and nonce were checked.
type request struct {
	payload []byte
	// postAsGet is true for an empty payload (RFC 8555 §6.3).
	postAsGet bool
	url       string
	// account is set for "kid" requests.
	account *storage.Account
	// jwk is set for "jwk" requests.
	jwk *jose.JSONWebKey
	// prefetched is the record the URL names, read with the account; see
	// readsFirst. Handlers get it through getOrder and its siblings.
	prefetched *storage.Prefetch
}

type postHandler func(w http.ResponseWriter, r *http.Request, req *request) *Problem

// post wraps a handler with the checks every ACME POST needs: a fresh
// Replay-Nonce on the response, nonce redemption, url match and signature.
// reads names the record the handler reads first, fetched along with the
// account.
func (s *Server) post(h postHandler, mode jwsMode, reads readsFirst) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := s.addNonce(w, r); p != nil {
			writeProblem(w, r, p)
			return
		}
		req, p := s.verifyPost(r, mode, reads)
		if p == nil {
			p = h(w, r, req)
		}
		if p != nil {
			writeProblem(w, r, p)
		}
	})
}

func (s *Server) verifyPost(r *http.Request, mode jwsMode, reads readsFirst) (*request, *Problem) {
	// RFC 8555 §6.2: JWS requests are application/jose+json, anything else is a 415.
	if ct := r.Header.Get("Content-Type"); !isJOSEJSON(ct) {
		p := malformed("request Content-Type is %q; ACME requests must be sent as application/jose+json", ct)
		p.Status = http.StatusUnsupportedMediaType
		return nil, p
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			p := malformed("request body is larger than %d bytes", tooBig.Limit)
			p.Status = http.StatusRequestEntityTooLarge
			return nil, p
		}
		return nil, malformed("reading request body: %v", err)
	}
	// The plain account-signed request skips go-jose (see kidJWS); any
	// other goes through parseJWS and go-jose.
	fast, hdr, isFast := parseKidJWS(body)
	var (
		jws *jose.JSONWebSignature
		kid string
		jwk *jose.JSONWebKey
		alg string
		p   *Problem
	)
	if isFast {
		kid, alg = fast.kid, hdr.alg
	} else {
		if jws, hdr, p = parseJWS(body); p != nil {
			return nil, p
		}
		sig := jws.Signatures[0].Protected
		kid, jwk, alg = sig.KeyID, sig.JSONWebKey, string(sig.Algorithm)
	}
	wantURL := s.baseURL(r) + r.URL.RequestURI()
	if hdr.url != wantURL {
		return nil, unauthorized("JWS \"url\" header %q does not match the request URL %q", hdr.url, wantURL)
	}
	if hdr.nonce == "" {
		return nil, badNonce("JWS has no \"nonce\" header; get one from newNonce")
	}
	nonce, p := s.openNonce(r, hdr.nonce)
	if p != nil {
		return nil, p
	}
	req := &request{url: hdr.url}
	// A request signed by an account redeems its nonce and reads the
	// account in one store round trip; any other redeems the nonce alone.
	// Either way the nonce is spent before anything else is refused.
	var (
		acct   *storage.Account
		acctID string
		kidErr *Problem
	)
	byAccount := kid != "" && jwk == nil && mode != jwsEmbeddedKey
	if byAccount {
		acctID, kidErr = s.accountIDFromKID(r, kid)
	}
	if byAccount && kidErr == nil {
		// Nothing below is checked before the account for such a request,
		// so the account's problems may be answered at once too.
		req.prefetched = reads.prefetch(r)
		if acct, p = s.redeemNonceGetAccount(r, hdr.nonce, nonce, kid, acctID, req.prefetched); p != nil {
			return nil, p
		}
	} else if p = s.redeemNonce(r, hdr.nonce, nonce); p != nil {
		return nil, p
	}
	switch {
	case jwk != nil && kid != "":
		return nil, malformed("JWS protected header must have \"jwk\" or \"kid\", not both")
	case jwk != nil:
		if mode == jwsAccount {
			return nil, malformed("this request must be signed by an account key with a \"kid\" header, not a \"jwk\"")
		}
		if p := checkAccountKey(jwk, alg); p != nil {
			return nil, p
		}
		req.jwk = jwk
		req.payload, err = jws.Verify(jwk)
	case kid != "":
		if mode == jwsEmbeddedKey {
			return nil, malformed("this request must carry the new key in a \"jwk\" header, not a \"kid\"")
		}
		if kidErr != nil {
			return nil, kidErr
		}
		key, kerr := s.accountKey(acct)
		if kerr != nil {
			return nil, serverInternal("stored account key unreadable: %v", kerr)
		}
		if p := checkAlgMatchesKey(key.Key, alg); p != nil {
			return nil, p
		}
		req.account = acct
		if isFast {
			var ok bool
			if req.payload, ok = fast.verify(key.Key, alg); !ok {
				err = errBadSignature
			}
		} else {
			req.payload, err = jws.Verify(key)
		}
	default:
		return nil, malformed("JWS protected header has neither \"jwk\" nor \"kid\"")
	}
	if err != nil {
		return nil, malformed("JWS signature does not verify with the given key")
	}
	req.postAsGet = len(req.payload) == 0
	if !req.postAsGet && !json.Valid(req.payload) {
		return nil, malformed("JWS payload is not valid JSON")
	}
	return req, nil
}

// accountIDFromKID extracts the account id from a "kid" header, which must
// be an account URL of this server.
func (s *Server) accountIDFromKID(r *http.Request, kid string) (string, *Problem) {
	prefix := s.baseURL(r) + accountPath
	id, ok := strings.CutPrefix(kid, prefix)
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", accountDoesNotExist("\"kid\" %q is not an account URL of this server", kid)
	}
	return id, nil
}

// validAccount turns the store's answer for the account a "kid" names into
// the account, which must exist and be valid, or the problem to answer.
func validAccount(r *http.Request, kid string, acct *storage.Account, err error) (*storage.Account, *Problem) {
	if errors.Is(err, storage.ErrNotFound) {
		return nil, accountDoesNotExist("no account at %q", kid)
	}
	if err != nil {
		return nil, storeProblem("loading account", err)
	}
	if acct.Status != storage.StatusValid {
		return nil, unauthorized("account %s is %s", kid, acct.Status)
	}
	logWith(r, "account", acct.ID)
	return acct, nil
}

// errBadSignature is the fast path's failed verification; it gets the
// same problem as go-jose's.
var errBadSignature = errors.New("JWS signature does not verify")

type protectedHeader struct {
	alg, nonce, url string
}

// parseJWS accepts only the flattened JSON serialization with one signature,
// as RFC 8555 §6.2 requires, and checks the protected header before go-jose
// parses it, so each mistake gets its own message.
//
// The body's JSON is read once, here, and go-jose is handed exactly the
// parts that were checked (as a compact serialization) instead of the body
// to read again: besides the second decode, two readings could disagree (a
// "Protected" member next to "protected" was one JSON decoder's protected
// header and the other's unknown member), letting an unsigned header's
// nonce and url stand in for the signed ones.
func parseJWS(body []byte) (*jose.JSONWebSignature, protectedHeader, *Problem) {
	var hdr protectedHeader
	flat, err := decodeFlatJWS(body)
	if err != nil {
		return nil, hdr, malformed("request body is not a JSON Web Signature in flattened JSON form: %v", err)
	}
	if flat.Signatures != nil {
		return nil, hdr, malformed("JWS must use the flattened JSON serialization with one signature")
	}
	if flat.Header != nil {
		return nil, hdr, malformed("JWS must not have an unprotected header")
	}
	// An empty signature is checked after "alg", so that an unsigned
	// alg "none" JWS is answered badSignatureAlgorithm, not malformed.
	if flat.Protected == "" || flat.Payload == nil {
		return nil, hdr, malformed("JWS must have \"protected\", \"payload\" and \"signature\" fields")
	}
	raw, err := base64.RawURLEncoding.DecodeString(flat.Protected)
	if err != nil {
		return nil, hdr, malformed("JWS protected header is not base64url: %v", err)
	}
	var ph struct {
		Alg   string `json:"alg"`
		Nonce string `json:"nonce"`
		URL   string `json:"url"`
	}
	if err := json.Unmarshal(raw, &ph); err != nil {
		return nil, hdr, malformed("JWS protected header is not JSON: %v", err)
	}
	hdr = protectedHeader{alg: ph.Alg, nonce: ph.Nonce, url: ph.URL}
	if !algAllowed(ph.Alg) {
		p := badSignatureAlgorithm("JWS algorithm %q is not accepted; use one of RS256, ES256, ES384, ES512, EdDSA", ph.Alg)
		return nil, hdr, p
	}
	if flat.Signature == "" {
		return nil, hdr, malformed("JWS must have \"protected\", \"payload\" and \"signature\" fields")
	}
	if ph.URL == "" {
		return nil, hdr, malformed("JWS protected header has no \"url\"")
	}
	// A "." in a part makes more than three parts, which go-jose refuses.
	jws, err := jose.ParseSignedCompact(flat.Protected+"."+*flat.Payload+"."+flat.Signature, allowedAlgs)
	if err != nil {
		return nil, hdr, malformed("parsing JWS: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, hdr, malformed("JWS must have exactly one signature")
	}
	// encoding/json above matches member names case-insensitively and lets
	// the last duplicate win; go-jose matches exactly and refuses
	// duplicates. Only a header they read alike is one whose checked alg,
	// nonce and url are the ones go-jose verifies.
	got := jws.Signatures[0].Protected
	if url, _ := got.ExtraHeaders["url"].(string); string(got.Algorithm) != ph.Alg || got.Nonce != ph.Nonce || url != ph.URL {
		return nil, hdr, malformed("JWS protected header has \"alg\", \"nonce\" or \"url\" twice or in another case")
	}
	return jws, hdr, nil
}

// flatJWS is the members of a flattened JSON JWS that parseJWS looks at.
type flatJWS struct {
	Protected string  `json:"protected"`
	Payload   *string `json:"payload"`
	Signature string  `json:"signature"`
	// Present whatever their value (null decodes to "null"): both are refused.
	Signatures json.RawMessage `json:"signatures"`
	Header     json.RawMessage `json:"header"`
}

// flatMembers are the member names flatJWS decodes.
var flatMembers = []string{"protected", "payload", "signature", "signatures", "header"}

// decodeFlatJWS reads the members of a flattened JWS body. encoding/json
// matches member names case-insensitively and lets the last of duplicates
// win, where go-jose's decoder matches exactly and refuses duplicates; a
// body on which the two could differ (a duplicate member, or another
// spelling of a name above) is refused.
func decodeFlatJWS(body []byte) (flatJWS, error) {
	if f, ok := scanFlatJWS(body); ok {
		return f, nil
	}
	return readFlatJWS(body)
}

// readFlatJWS is decodeFlatJWS for any body: encoding/json's reading, plus
// the checks that it reads as go-jose does.
func readFlatJWS(body []byte) (flatJWS, error) {
	var f flatJWS
	if err := json.Unmarshal(body, &f); err != nil {
		return f, err
	}
	var seen [8][]byte // a JWS has 3 members; more is rare, and checked beyond 8 too
	n := 0
	var err error
	topLevelNames(body, func(name []byte) bool {
		for _, m := range flatMembers {
			// EqualFold is the match encoding/json makes ("ſignature" too).
			if string(name) != m && strings.EqualFold(string(name), m) {
				err = fmt.Errorf("member %q: member names are case-sensitive", name)
				return false
			}
		}
		for _, s := range seen[:min(n, len(seen))] {
			if string(s) == string(name) {
				err = fmt.Errorf("duplicate member %q", name)
				return false
			}
		}
		if n < len(seen) {
			seen[n] = name
		}
		n++
		return true
	})
	if err == nil && n > len(seen) {
		err = checkDuplicateNames(body)
	}
	return f, err
}

// scanFlatJWS reads the body every ACME client sends, without reflection:
// an object of "protected", "payload" and "signature" (each at most once,
// names spelt exactly so), whose values are base64url text with no escapes,
// with JSON whitespace anywhere between tokens. On such a body it reads
// exactly what json.Unmarshal and go-jose would; anything else (other
// members, escapes, duplicates, another spelling) reports false and goes
// the general way, which explains or refuses it. It spares every request a
// reflective decode of its envelope.
func scanFlatJWS(body []byte) (flatJWS, bool) {
	var f flatJWS
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return f, false
	}
	var seen [3]bool
	for first := true; ; first = false {
		i = skipSpace(body, i+1)
		if first && i < len(body) && body[i] == '}' {
			return f, false // an empty object: the general path refuses it properly
		}
		name, next, ok := scanB64String(body, i)
		if !ok {
			return f, false
		}
		i = skipSpace(body, next)
		if i >= len(body) || body[i] != ':' {
			return f, false
		}
		value, next, ok := scanB64String(body, skipSpace(body, i+1))
		if !ok {
			return f, false
		}
		var n int
		switch string(name) {
		case "protected":
			n = 0
		case "payload":
			n = 1
		case "signature":
			n = 2
		default:
			return f, false
		}
		if seen[n] {
			return f, false
		}
		seen[n] = true
		switch v := string(value); n {
		case 0:
			f.Protected = v
		case 1:
			f.Payload = &v
		case 2:
			f.Signature = v
		}
		i = skipSpace(body, next)
		if i >= len(body) {
			return f, false
		}
		switch body[i] {
		case ',':
			continue
		case '}':
			return f, skipSpace(body, i+1) == len(body)
		default:
			return f, false
		}
	}
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanB64String reads a JSON string at b[i] whose characters are all
// base64url (letters, digits, '-', '_'), so that no escape or encoding
// question arises; it returns the characters and the index after the
// closing quote.
func scanB64String(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	start := i + 1
	for j := start; j < len(b); j++ {
		c := b[j]
		switch {
		case c == '"':
			return b[start:j], j + 1, true
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return nil, i, false
		}
	}
	return nil, i, false
}

// checkDuplicateNames is decodeFlatJWS's duplicate check for objects with
// many members.
func checkDuplicateNames(body []byte) error {
	names := map[string]bool{}
	var err error
	topLevelNames(body, func(name []byte) bool {
		if names[string(name)] {
			err = fmt.Errorf("duplicate member %q", name)
			return false
		}
		names[string(name)] = true
		return true
	})
	return err
}

// topLevelNames calls f with each member name of the JSON object in b, in
// order, until f returns false. b must be valid JSON (json.Unmarshal
// accepted it), which keeps the scan simple: depth and string state are all
// it tracks. A name with escapes is passed unescaped.
func topLevelNames(b []byte, f func(name []byte) bool) {
	depth, wantName := 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '{', '[':
			depth++
			wantName = depth == 1 && c == '{'
		case '}', ']':
			depth--
		case ',':
			wantName = depth == 1
		case '"':
			start, escaped := i, false
			for i++; b[i] != '"'; i++ {
				if b[i] == '\\' {
					escaped = true
					i++ // the escaped byte, a quote or backslash included
				}
			}
			if !wantName {
				continue
			}
			wantName = false
			name := b[start+1 : i]
			if escaped {
				var s string
				_ = json.Unmarshal(b[start:i+1], &s) // valid: the body was
				name = []byte(s)
			}
			if !f(name) {
				return
			}
		}
	}
}

func isJOSEJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/jose+json"
}

func algAllowed(alg string) bool {
	for _, a := range allowedAlgs {
		if string(a) == alg {
			return true
		}
	}
	return false
}

// checkAccountKey refuses keys too weak or unusual to hold an account.
func checkAccountKey(k *jose.JSONWebKey, alg string) *Problem {
	if !k.Valid() || !k.IsPublic() {
		return badPublicKey("JWS \"jwk\" is not a valid public key")
	}
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		if n := key.N.BitLen(); n < 2048 || n > 8192 {
			return badPublicKey("RSA account keys must be 2048 to 8192 bits, this one has %d", n)
		}
	case *ecdsa.PublicKey:
		switch key.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return badPublicKey("ECDSA account keys must use P-256, P-384 or P-521")
		}
	case ed25519.PublicKey:
	default:
		return badPublicKey("account key type %T is not supported", k.Key)
	}
	return checkAlgMatchesKey(k.Key, alg)
}

// checkAlgMatchesKey refuses an "alg" that does not belong to the key type,
// which would otherwise open algorithm-confusion attacks.
func checkAlgMatchesKey(key any, alg string) *Problem {
	want := ""
	switch k := key.(type) {
	case *rsa.PublicKey:
		want = string(jose.RS256)
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			want = string(jose.ES256)
		case elliptic.P384():
			want = string(jose.ES384)
		case elliptic.P521():
			want = string(jose.ES512)
		}
	case ed25519.PublicKey:
		want = string(jose.EdDSA)
	}
	if alg != want {
		return badSignatureAlgorithm("JWS algorithm %q does not match the key; expected %q", alg, want)
	}
	return nil
}

// thumbprint is the RFC 7638 SHA-256 thumbprint, base64url without padding.
func thumbprint(k *jose.JSONWebKey) (string, error) {
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}
