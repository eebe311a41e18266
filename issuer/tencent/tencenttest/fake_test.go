package tencenttest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sdkRequest is a request signed by tencentcloud-sdk-go's common.Client
// (v1.3.77), recorded outside this repository: the fake's verifier must
// accept it, which checks the verifier against Tencent's own signer rather
// than against the brand's.
var sdkRequest = struct {
	id, key, host, contentType, body, auth string
	ts                                     int64
}{
	id:          "AKIDacmegwKATEXAMPLE0000000000000000",
	key:         "acmegwKATsecretKeyEXAMPLE000000",
	host:        "ssl.tencentcloudapi.com",
	contentType: "application/json",
	body:        `{"CertificateId":"aBcD1234"}`,
	ts:          1773532800,
	auth: "TC3-HMAC-SHA256 Credential=AKIDacmegwKATEXAMPLE0000000000000000/2026-03-15/ssl/tc3_request, " +
		"SignedHeaders=content-type;host, Signature=c2d23afce9e297a7bdf715473660a9c9a53d9c11baacfeb271dd91de22ae2105",
}

// send posts the SDK request to the fake after edit changed it, and returns
// the error code of the answer ("" for success).
func send(t *testing.T, f *Fake, edit func(r *http.Request)) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.URL()+"/", strings.NewReader(sdkRequest.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = sdkRequest.host
	req.Header.Set("Content-Type", sdkRequest.contentType)
	req.Header.Set("X-TC-Action", "DescribeCertificateDetail")
	req.Header.Set("X-TC-Version", Version)
	req.Header.Set("X-TC-Timestamp", "1773532800")
	req.Header.Set("Authorization", sdkRequest.auth)
	if edit != nil {
		edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		Response struct {
			Error     *struct{ Code string }
			RequestID string `json:"RequestId"`
		}
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Response.RequestID == "" {
		t.Fatalf("answer %s is not a Tencent API response: %v", body, err)
	}
	if out.Response.Error == nil {
		return ""
	}
	return out.Response.Error.Code
}

func TestVerifier(t *testing.T) {
	at := time.Unix(sdkRequest.ts, 0).Add(time.Minute)
	f := New(t, Options{SecretID: sdkRequest.id, SecretKey: sdkRequest.key, Now: func() time.Time { return at }})

	// Signature accepted: the action runs and finds no such certificate.
	if code := send(t, f, nil); code != "FailedOperation.CertificateNotFound" {
		t.Fatalf("the SDK's signature was refused: %s", code)
	}
	for name, tc := range map[string]struct {
		edit func(*http.Request)
		code string
	}{
		"body changed": {func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{"CertificateId":"aBcD1235"}`))
			r.ContentLength = int64(len(sdkRequest.body))
		}, "AuthFailure.SignatureFailure"},
		"host changed":         {func(r *http.Request) { r.Host = "ssl.intl.tencentcloudapi.com" }, "AuthFailure.SignatureFailure"},
		"content type changed": {func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, "AuthFailure.SignatureFailure"},
		"timestamp changed":    {func(r *http.Request) { r.Header.Set("X-TC-Timestamp", "1773532801") }, "AuthFailure.SignatureFailure"},
		"signature changed": {func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(sdkRequest.auth, "c2d23a", "c2d23b", 1))
		}, "AuthFailure.SignatureFailure"},
		"no authorization": {func(r *http.Request) { r.Header.Del("Authorization") }, "AuthFailure.InvalidAuthorization"},
		"unknown secret id": {func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(sdkRequest.auth, "AKIDacmegw", "AKIDother0", 1))
		}, "AuthFailure.SecretIdNotFound"},
		"stale timestamp":       {func(r *http.Request) { r.Header.Set("X-TC-Timestamp", "1773532000") }, "AuthFailure.SignatureExpire"},
		"other API version":     {func(r *http.Request) { r.Header.Set("X-TC-Version", "2018-01-01") }, "NoSuchVersion"},
		"unknown action":        {func(r *http.Request) { r.Header.Set("X-TC-Action", "BuyEverything") }, "InvalidAction"},
		"action header missing": {func(r *http.Request) { r.Header.Del("X-TC-Action") }, "MissingParameter"},
	} {
		if code := send(t, f, tc.edit); code != tc.code {
			t.Errorf("%s: answer %q, want %q", name, code, tc.code)
		}
	}
}

// TestUnknownParameter: like Tencent, the fake refuses parameters an action
// does not have, which catches misspelt fields in clients.
func TestUnknownParameter(t *testing.T) {
	f := New(t, Options{})
	if _, e := f.describeCertificateDetail(t.Context(), []byte(`{"CertId":"x"}`)); e == nil || e.Code != "UnknownParameter" {
		t.Errorf("misspelt parameter answered %+v", e)
	}
}
