package aliyuntest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// The verifier rebuilds the canonical request from the request as it arrived
// on the wire, with code of its own rather than the adapter's signer: a
// verifier sharing the signer's canonicalisation would accept whatever the
// signer got wrong.

// SignatureError is why CheckSignature refused a request, with the HTTP
// status and error code Alibaba's gateway answers with.
type SignatureError struct {
	Status  int
	Code    string
	Message string
}

// Error returns the code and message, as the error body has them.
func (e *SignatureError) Error() string { return e.Code + ": " + e.Message }

// requiredSigned are the headers every V3 request must sign.
var requiredSigned = []string{
	"host", "x-acs-action", "x-acs-content-sha256", "x-acs-date",
	"x-acs-signature-nonce", "x-acs-version",
}

// CheckSignature verifies the ACS3-HMAC-SHA256 signature of r, whose body
// (already read) is body, and returns the AccessKeyId that signed it.
// secretOf returns the secret of an AccessKeyId it knows. It checks the
// Authorization header's form, that the required headers are signed, that
// x-acs-content-sha256 is the body's hash, and the signature itself; the
// date window and nonce reuse are the server's business (see Server).
func CheckSignature(r *http.Request, body []byte, secretOf func(accessKeyID string) (string, bool)) (string, error) {
	auth := r.Header.Get("Authorization")
	algo, rest, ok := strings.Cut(auth, " ")
	if !ok || algo != "ACS3-HMAC-SHA256" {
		return "", &SignatureError{400, "IncompleteSignature", fmt.Sprintf("The request signature does not conform to Aliyun standards: Authorization %q is not ACS3-HMAC-SHA256.", clip(auth))}
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", &SignatureError{400, "IncompleteSignature", "The request signature does not conform to Aliyun standards: malformed Authorization."}
		}
		fields[k] = v
	}
	id, signedList, sig := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	if id == "" || signedList == "" || sig == "" {
		return "", &SignatureError{400, "IncompleteSignature", "The request signature does not conform to Aliyun standards: Credential, SignedHeaders and Signature are required."}
	}
	secret, known := secretOf(id)
	if !known {
		return "", &SignatureError{404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."}
	}
	signed := strings.Split(signedList, ";")
	if !sort.StringsAreSorted(signed) {
		return "", &SignatureError{400, "IncompleteSignature", "SignedHeaders must be sorted."}
	}
	for _, h := range requiredSigned {
		if !contains(signed, h) {
			return "", &SignatureError{400, "IncompleteSignature", fmt.Sprintf("The header %s must be signed.", h)}
		}
	}
	sum := sha256.Sum256(body)
	if got := r.Header.Get("x-acs-content-sha256"); got != hex.EncodeToString(sum[:]) {
		return "", &SignatureError{400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation: x-acs-content-sha256 is not the body's SHA-256."}
	}
	var headers strings.Builder
	for _, h := range signed {
		if h != strings.ToLower(h) {
			return "", &SignatureError{400, "IncompleteSignature", "SignedHeaders must be lower case."}
		}
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
		}
		headers.WriteString(h + ":" + strings.TrimSpace(v) + "\n")
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	canonical := r.Method + "\n" + path + "\n" + canonicalQueryOf(r.URL.RawQuery) + "\n" +
		headers.String() + "\n" + signedList + "\n" + hex.EncodeToString(sum[:])
	hashed := sha256.Sum256([]byte(canonical))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("ACS3-HMAC-SHA256\n" + hex.EncodeToString(hashed[:])))
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(sig))) {
		return "", &SignatureError{400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation."}
	}
	return id, nil
}

// canonicalQueryOf decodes the query as received and re-encodes it the V3
// way: RFC 3986 escaping of names and values, sorted by name then value.
func canonicalQueryOf(raw string) string {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		// An unparsable query cannot have been signed by a correct
		// client; let the signature comparison fail.
		return raw
	}
	type kv struct{ k, v string }
	var pairs []kv
	for k, vs := range vals {
		for _, v := range vs {
			pairs = append(pairs, kv{rfc3986(k), rfc3986(v)})
		}
	}
	// By name, not by "name=value": "a-b" sorts before "a=" but after "a".
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	out := make([]string, len(pairs))
	for i, p := range pairs {
		out[i] = p.k + "=" + p.v
	}
	return strings.Join(out, "&")
}

// rfc3986 escapes via the standard library, then fixes the three places
// where form encoding differs from RFC 3986.
func rfc3986(s string) string {
	e := url.QueryEscape(s)
	e = strings.ReplaceAll(e, "+", "%20")
	e = strings.ReplaceAll(e, "*", "%2A")
	return strings.ReplaceAll(e, "%7E", "~")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
