// Package tc3 signs Tencent Cloud API 3.0 requests with TC3-HMAC-SHA256.
// It is implemented from Tencent's documented algorithm (standard library
// only) rather than through tencentcloud-sdk-go's common module: acmegw
// needs a single POST shape, and the signer is a few lines. It lives under
// internal/ because two packages sign with it, the issuer/tencent brand and
// issuer/dcv's DNSPod publisher, and issuer/dcv cannot import
// issuer/tencent (which imports issuer/dcv).
package tc3

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

const (
	algorithm = "TC3-HMAC-SHA256"
	// terminator ends the credential scope, as "aws4_request" does in AWS
	// SigV4, on which TC3 is modelled.
	terminator = "tc3_request"
	// signedHeaders are the headers the signature covers: the minimum
	// Tencent requires. X-TC-Action may be signed too, but is not needed:
	// the action only selects which body schema applies, and the body is
	// signed.
	signedHeaders = "content-type;host"
)

// Request is everything a TC3 signature covers, for one POST with a JSON
// body to the API root "/"; the caller sends Host, ContentType, Payload and
// Timestamp (as X-TC-Timestamp) exactly as given here.
type Request struct {
	SecretID    string
	SecretKey   string
	Service     string // the credential scope's service: "ssl", "dnspod"
	Host        string // the Host header, port included when not default
	ContentType string
	Payload     []byte
	Timestamp   int64 // Unix seconds, also sent as X-TC-Timestamp
}

// Authorization returns the Authorization header value for r:
//
//	TC3-HMAC-SHA256 Credential=<id>/<date>/<service>/tc3_request, SignedHeaders=content-type;host, Signature=<hex>
func (r Request) Authorization() string {
	date, sig := r.signature()
	return algorithm + " Credential=" + r.SecretID + "/" + date + "/" + r.Service + "/" + terminator +
		", SignedHeaders=" + signedHeaders + ", Signature=" + sig
}

// signature computes the credential-scope date and the hex signature.
func (r Request) signature() (date, sig string) {
	// 1. Canonical request. The query string is empty for POST; header
	// names and values are lower-cased and trimmed, each line ends in \n.
	canonicalHeaders := "content-type:" + strings.ToLower(strings.TrimSpace(r.ContentType)) + "\n" +
		"host:" + strings.ToLower(strings.TrimSpace(r.Host)) + "\n"
	canonicalRequest := strings.Join([]string{
		"POST",
		"/",
		"",
		canonicalHeaders,
		signedHeaders,
		sha256Hex(r.Payload),
	}, "\n")

	// 2. String to sign. The date is the UTC day of the timestamp: a
	// request signed just before midnight UTC must still carry that day.
	date = time.Unix(r.Timestamp, 0).UTC().Format(time.DateOnly)
	scope := date + "/" + r.Service + "/" + terminator
	stringToSign := algorithm + "\n" + strconv.FormatInt(r.Timestamp, 10) + "\n" + scope + "\n" +
		sha256Hex([]byte(canonicalRequest))

	// 3. Derived keys: the secret key itself signs only the date, so a
	// leaked derived key is worth one day and one service.
	secretDate := hmacSHA256([]byte("TC3"+r.SecretKey), date)
	secretService := hmacSHA256(secretDate, r.Service)
	secretSigning := hmacSHA256(secretService, terminator)
	return date, hex.EncodeToString(hmacSHA256(secretSigning, stringToSign))
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
