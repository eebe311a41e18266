package aliyun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/internal/acs3"
	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/aliyun/aliyuntest"
)

// docHeaders and docAuthorization are the worked example of Alibaba's
// "Request syntax and signature method V3" page (RunInstances on ECS) as it
// arrives on the wire: the signed headers but host, and the Authorization
// header the page prints. internal/acs3 checks its signer against the same
// example; here it checks the fake's verifier.
var docHeaders = map[string]string{
	"x-acs-action":          "RunInstances",
	"x-acs-version":         "2014-05-26",
	"x-acs-date":            "2023-10-26T10:22:32Z",
	"x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
	"x-acs-content-sha256":  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
}

const docAuthorization = "ACS3-HMAC-SHA256 Credential=YourAccessKeyId," +
	"SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version," +
	"Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"

// TestFakeVerifierAcceptsDocumentationExample checks the fake's own
// verifier, which shares no code with the signer, against Alibaba's
// example as it would arrive on the wire, and that it notices tampering.
func TestFakeVerifierAcceptsDocumentationExample(t *testing.T) {
	build := func(rawQuery string) *http.Request {
		req := httptest.NewRequest("POST", "https://ecs.cn-shanghai.aliyuncs.com/?"+rawQuery, nil)
		for k, v := range docHeaders {
			req.Header.Set(k, v)
		}
		req.Header.Set("Authorization", docAuthorization)
		return req
	}
	secretOf := func(id string) (string, bool) { return "YourAccessKeySecret", id == "YourAccessKeyId" }
	// The wire order of parameters does not matter; the verifier sorts.
	id, err := aliyuntest.CheckSignature(build("RegionId=cn-shanghai&ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"), nil, secretOf)
	if err != nil || id != "YourAccessKeyId" {
		t.Fatalf("CheckSignature(documentation example) = %q, %v", id, err)
	}
	_, err = aliyuntest.CheckSignature(build("RegionId=cn-hangzhou&ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"), nil, secretOf)
	if se, ok := errors.AsType[*aliyuntest.SignatureError](err); !ok || se.Code != aliyuntest.CodeSignatureDoesNotMatch {
		t.Errorf("tampered query: err = %v, want SignatureDoesNotMatch", err)
	}
	_, err = aliyuntest.CheckSignature(build("RegionId=cn-shanghai&ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"), []byte("x"), secretOf)
	if se, ok := errors.AsType[*aliyuntest.SignatureError](err); !ok || se.Code != aliyuntest.CodeSignatureDoesNotMatch {
		t.Errorf("body not matching x-acs-content-sha256: err = %v, want SignatureDoesNotMatch", err)
	}
}

// sendSigned signs a DescribeCertificateState request the adapter's way
// and lets the caller change it before it is sent.
func sendSigned(t *testing.T, fake *aliyuntest.Server, id, secret string, now time.Time, nonce string, tamper func(*http.Request)) (int, string) {
	t.Helper()
	params := []acs3.Param{{Key: "OrderId", Value: "1"}}
	req, err := http.NewRequest("POST", fake.URL()+"/?"+acs3.CanonicalQuery(params), nil)
	if err != nil {
		t.Fatal(err)
	}
	acs3.SignHTTP(req, "DescribeCertificateState", apiVersion, params, nil, id, secret, now, nonce)
	if tamper != nil {
		tamper(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Code string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Code
}

// TestFakeRefusesBadSignaturesAndReplays sends requests signed by the
// adapter's signer to the fake: a good one gets past authentication (to
// "no such order"), a tampered, wrongly keyed, stale or replayed one does
// not.
func TestFakeRefusesBadSignaturesAndReplays(t *testing.T) {
	fake := aliyuntest.NewServer(t, aliyuntest.Options{})
	id, secret := aliyuntest.DefaultAccessKeyID, aliyuntest.DefaultAccessKeySecret
	now := time.Now()

	nonce := acs3.NewNonce()
	if status, code := sendSigned(t, fake, id, secret, now, nonce, nil); code != aliyuntest.CodeOrderNotFound {
		t.Fatalf("correctly signed request: HTTP %d %q, want the order lookup to answer %s", status, code, aliyuntest.CodeOrderNotFound)
	}
	if _, code := sendSigned(t, fake, id, secret, now, nonce, nil); code != aliyuntest.CodeSignatureNonceUsed {
		t.Errorf("replayed nonce: %q, want %s", code, aliyuntest.CodeSignatureNonceUsed)
	}
	cases := []struct {
		name     string
		id, key  string
		when     time.Time
		tamper   func(*http.Request)
		wantCode string
	}{
		{"changed parameter", id, secret, now, func(r *http.Request) { r.URL.RawQuery = "OrderId=2" }, aliyuntest.CodeSignatureDoesNotMatch},
		{"changed action", id, secret, now, func(r *http.Request) { r.Header.Set("x-acs-action", "DeleteCertificateRequest") }, aliyuntest.CodeSignatureDoesNotMatch},
		{"wrong secret", id, "not-the-secret", now, nil, aliyuntest.CodeSignatureDoesNotMatch},
		{"unknown key", "LTAIunknown", secret, now, nil, aliyuntest.CodeInvalidAccessKeyID},
		{"stale date", id, secret, now.Add(-time.Hour), nil, aliyuntest.CodeTimestampExpired},
	}
	for _, c := range cases {
		if _, code := sendSigned(t, fake, c.id, c.key, c.when, acs3.NewNonce(), c.tamper); code != c.wantCode {
			t.Errorf("%s: %q, want %s", c.name, code, c.wantCode)
		}
	}
}

// TestSecretNeverInErrors makes sure a refused key's secret does not leak
// into the errors the gateway logs and shows clients.
func TestSecretNeverInErrors(t *testing.T) {
	fake := aliyuntest.NewServer(t, aliyuntest.Options{})
	const secret = "SUPER-SECRET-VALUE-123"
	is, err := New(Config{AccessKeyID: aliyuntest.DefaultAccessKeyID, AccessKeySecret: secret,
		Endpoint: fake.URL(), ProductCode: "geotrust-dv-1-starter"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = is.Submit(context.Background(), issuer.Request{OrderID: "o1", CSR: newCSR(t, ecKey(t), "example.com"), DNSNames: []string{"example.com"}})
	ie, ok := issuer.AsError(err)
	if !ok || !ie.Permanent || ie.Type != "serverInternal" || !strings.Contains(ie.Detail, "check the AccessKey configuration") {
		t.Fatalf("wrong secret: err = %v, want a permanent serverInternal asking to check the AccessKey", err)
	}
	if strings.Contains(err.Error(), secret) || bytes.Contains([]byte(ie.Detail), []byte(secret)) {
		t.Errorf("the secret leaked into the error: %v", err)
	}
}
