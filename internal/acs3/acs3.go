// Package acs3 signs Alibaba Cloud API requests with the V3 request
// signature, ACS3-HMAC-SHA256, written against the published "Request
// syntax and signature method V3":
//
//	CanonicalRequest = Method \n CanonicalURI \n CanonicalQueryString \n
//	                   CanonicalHeaders \n SignedHeaders \n HexSHA256(body)
//	StringToSign     = "ACS3-HMAC-SHA256" \n HexSHA256(CanonicalRequest)
//	Signature        = Hex(HMAC-SHA256(AccessKeySecret, StringToSign))
//	Authorization: ACS3-HMAC-SHA256 Credential=<id>,SignedHeaders=<h1;h2>,Signature=<hex>
//
// It is a few dozen lines of the standard library, which is why acmegw
// does not pull in the Alibaba SDK (hundreds of generated packages) for it.
// It lives under internal/ because two packages sign with it, the
// issuer/aliyun brand and issuer/dcv's Alibaba Cloud DNS publisher, and
// issuer/dcv cannot import issuer/aliyun (which imports issuer/dcv).
package acs3

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sort"
	"strings"
	"time"
)

const (
	// algorithm names the signature in the Authorization header and heads
	// the string to sign.
	algorithm = "ACS3-HMAC-SHA256"
	// dateLayout is x-acs-date: ISO 8601 in UTC, to the second.
	dateLayout = "2006-01-02T15:04:05Z"
)

// Param is one query parameter, unencoded. Callers pass a slice so the
// order they build stays theirs; the canonical form sorts a copy.
type Param struct{ Key, Value string }

// request is what the signer covers: the method, path and query of the
// request line, the headers it signs, and the body.
type request struct {
	method string
	path   string // "" means "/"
	query  []Param
	// headers are the headers to sign, by name. The signer signs host,
	// content-type and every x-acs-* header it is given (names compared in
	// lower case), as the V3 rules ask; others are left out.
	headers map[string]string
	body    []byte
}

// canonicalRequest builds the V3 canonical request and the SignedHeaders
// list.
func (r request) canonicalRequest() (canonical, signedHeaders string) {
	path := r.path
	if path == "" {
		path = "/"
	}
	names := make([]string, 0, len(r.headers))
	for name := range r.headers {
		ln := strings.ToLower(name)
		if ln == "host" || ln == "content-type" || strings.HasPrefix(ln, "x-acs-") {
			names = append(names, ln)
		}
	}
	sort.Strings(names)
	lower := make(map[string]string, len(r.headers))
	for name, v := range r.headers {
		lower[strings.ToLower(name)] = v
	}
	var hb strings.Builder
	for _, n := range names {
		hb.WriteString(n)
		hb.WriteByte(':')
		hb.WriteString(strings.TrimSpace(lower[n]))
		hb.WriteByte('\n')
	}
	signedHeaders = strings.Join(names, ";")
	canonical = strings.Join([]string{
		r.method,
		path,
		CanonicalQuery(r.query),
		hb.String(),
		signedHeaders,
		hashHex(r.body),
	}, "\n")
	return canonical, signedHeaders
}

// authorization signs r with the AccessKey pair and returns the value of
// the Authorization header.
func (r request) authorization(accessKeyID, accessKeySecret string) string {
	canonical, signedHeaders := r.canonicalRequest()
	stringToSign := algorithm + "\n" + hashHex([]byte(canonical))
	mac := hmac.New(sha256.New, []byte(accessKeySecret))
	mac.Write([]byte(stringToSign))
	return algorithm + " Credential=" + accessKeyID +
		",SignedHeaders=" + signedHeaders +
		",Signature=" + hex.EncodeToString(mac.Sum(nil))
}

// CanonicalQuery sorts the parameters by encoded name (then value, so
// repeated names are stable) and joins them as k=v with &, both sides
// percent-encoded. Callers put this same string on the wire as the raw
// query, so what is sent and what is signed cannot differ.
func CanonicalQuery(q []Param) string {
	enc := make([]Param, len(q))
	for i, p := range q {
		enc[i] = Param{percentEncode(p.Key), percentEncode(p.Value)}
	}
	sort.Slice(enc, func(i, j int) bool {
		if enc[i].Key != enc[j].Key {
			return enc[i].Key < enc[j].Key
		}
		return enc[i].Value < enc[j].Value
	})
	parts := make([]string, len(enc))
	for i, p := range enc {
		parts[i] = p.Key + "=" + p.Value
	}
	return strings.Join(parts, "&")
}

// percentEncode is RFC 3986 encoding as V3 wants it: the unreserved
// characters A-Z a-z 0-9 - _ . ~ stay, every other byte of the UTF-8 form
// becomes %XX in upper case (so a space is %20, never +, and * is %2A).
func percentEncode(s string) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
	return b.String()
}

// hashHex is the lower-case hex SHA-256 of b, as x-acs-content-sha256 and
// the canonical request use it.
func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// NewNonce returns a fresh x-acs-signature-nonce: Alibaba refuses a nonce
// it has seen within the replay window (SignatureNonceUsed), so it must be
// unpredictable and never repeat.
func NewNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b[:])
}

// SignHTTP sets the V3 headers (x-acs-action, x-acs-version, x-acs-date,
// x-acs-signature-nonce, x-acs-content-sha256) on req and signs it with the
// AccessKey pair. query is what req's URL carries, already encoded on it by
// the caller with CanonicalQuery, and body what req will send; now and
// nonce are parameters so tests can pin them. A Content-Type header already
// on req is signed too; other headers are not.
func SignHTTP(req *http.Request, action, version string, query []Param, body []byte,
	accessKeyID, accessKeySecret string, now time.Time, nonce string) {
	h := map[string]string{
		"host":                  req.URL.Host,
		"x-acs-action":          action,
		"x-acs-version":         version,
		"x-acs-date":            now.UTC().Format(dateLayout),
		"x-acs-signature-nonce": nonce,
		"x-acs-content-sha256":  hashHex(body),
	}
	if ct := req.Header.Get("Content-Type"); ct != "" {
		h["content-type"] = ct
	}
	for name, v := range h {
		if name != "host" {
			req.Header.Set(name, v)
		}
	}
	req.Host = req.URL.Host
	sr := request{method: req.Method, path: req.URL.EscapedPath(), query: query, headers: h, body: body}
	req.Header.Set("Authorization", sr.authorization(accessKeyID, accessKeySecret))
}
