package tencent

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/dcv"
)

// TestTC3KnownAnswers checks the signer against values derived
// independently of this implementation.
func TestTC3KnownAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  tc3Request
		want string
	}{
		{
			// The worked example of Tencent's "Signature v3" documentation
			// (CVM DescribeInstances, 2019-02-25), with its example key pair.
			name: "Tencent documentation example",
			req: tc3Request{
				SecretID:    "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
				SecretKey:   "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
				Service:     "cvm",
				Host:        "cvm.tencentcloudapi.com",
				ContentType: "application/json; charset=utf-8",
				Payload:     []byte(`{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`),
				Timestamp:   1551113065,
			},
			want: "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, " +
				"SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
		},
		{
			// Computed once with tencentcloud-sdk-go's common.Client
			// (v1.3.77, CommonRequest "ssl" 2019-12-05
			// DescribeCertificateDetail, X-TC-Timestamp forced), outside
			// this repository: the SDK sends "application/json".
			name: "tencentcloud-sdk-go, SSL API",
			req: tc3Request{
				SecretID:    "AKIDacmegwKATEXAMPLE0000000000000000",
				SecretKey:   "acmegwKATsecretKeyEXAMPLE000000",
				Service:     "ssl",
				Host:        "ssl.tencentcloudapi.com",
				ContentType: "application/json",
				Payload:     []byte(`{"CertificateId":"aBcD1234"}`),
				Timestamp:   1773532800, // 2026-03-15T00:00:00Z: the date switches exactly here
			},
			want: "TC3-HMAC-SHA256 Credential=AKIDacmegwKATEXAMPLE0000000000000000/2026-03-15/ssl/tc3_request, " +
				"SignedHeaders=content-type;host, Signature=c2d23afce9e297a7bdf715473660a9c9a53d9c11baacfeb271dd91de22ae2105",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.req.authorization(); got != tc.want {
				t.Errorf("authorization\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestTC3Sensitivity checks that every signed input changes the signature
// and that the scope date is the UTC day of the timestamp.
func TestTC3Sensitivity(t *testing.T) {
	base := tc3Request{SecretID: "id", SecretKey: "key", Service: "ssl", Host: "ssl.tencentcloudapi.com",
		ContentType: contentType, Payload: []byte(`{"CertificateId":"x"}`), Timestamp: 1773532799}
	date, sig := base.signature()
	if date != "2026-03-14" {
		t.Errorf("date = %s, want 2026-03-14 (UTC day of the timestamp)", date)
	}
	for name, mutate := range map[string]func(*tc3Request){
		"key":          func(r *tc3Request) { r.SecretKey = "kez" },
		"service":      func(r *tc3Request) { r.Service = "cvm" },
		"host":         func(r *tc3Request) { r.Host = "ssl.intl.tencentcloudapi.com" },
		"content-type": func(r *tc3Request) { r.ContentType = "application/json" },
		"payload":      func(r *tc3Request) { r.Payload = []byte(`{"CertificateId":"y"}`) },
		"timestamp":    func(r *tc3Request) { r.Timestamp++ },
	} {
		r := base
		mutate(&r)
		if _, s := r.signature(); s == sig {
			t.Errorf("changing the %s left the signature unchanged", name)
		}
	}
	// Header values are case-insensitive in the canonical form.
	r := base
	r.Host = "SSL.TencentCloudAPI.com"
	if _, s := r.signature(); s != sig {
		t.Error("the host's case changed the signature")
	}
}

func TestMaxPublicValidity(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		at   string
		want time.Duration
	}{
		{"2026-03-14T23:59:59Z", 398 * day},
		{"2026-03-15T00:00:00Z", 200 * day},
		{"2027-03-14T12:00:00Z", 200 * day},
		{"2027-03-15T00:00:00Z", 100 * day},
		{"2029-03-15T00:00:00Z", 47 * day},
	} {
		at, _ := time.Parse(time.RFC3339, tc.at)
		if got := MaxPublicValidity(at); got != tc.want {
			t.Errorf("MaxPublicValidity(%s) = %v, want %v", tc.at, got, tc.want)
		}
	}
}

func TestDCVRecords(t *testing.T) {
	for _, tc := range []struct {
		name   string
		detail *dvAuthDetail
		want   []dcv.Record
		skip   int
	}{
		{
			name:   "top-level fields only, key relative to the registered domain",
			detail: &dvAuthDetail{DvAuthKey: "_dnsauth.www", DvAuthValue: "v1", DvAuthDomain: "example.com"},
			want:   []dcv.Record{{Domain: "www.example.com", Name: "_dnsauth.www.example.com", Type: "TXT", Value: "v1"}},
		},
		{
			name: "DvAuths, keys relative to the name, already qualified, CNAME, duplicate",
			detail: &dvAuthDetail{DvAuthKey: "ignored", DvAuthValue: "ignored", DvAuths: []dvAuth{
				{DvAuthKey: "_dnsauth", DvAuthValue: "v1", DvAuthDomain: "example.com", DvAuthVerifyType: "TXT"},
				{DvAuthKey: "_dnsauth.API.Example.com.", DvAuthValue: "v2", DvAuthDomain: "example.com", DvAuthVerifyType: "txt"},
				{DvAuthKey: "_dnsauth", DvAuthValue: "x.dcv.example.net", DvAuthDomain: "*.shop.example.com", DvAuthVerifyType: "CNAME"},
				{DvAuthKey: "_dnsauth", DvAuthValue: "v1", DvAuthDomain: "example.com", DvAuthVerifyType: "TXT"},
			}},
			want: []dcv.Record{
				{Domain: "example.com", Name: "_dnsauth.example.com", Type: "TXT", Value: "v1"},
				{Domain: "api.example.com", Name: "_dnsauth.api.example.com", Type: "TXT", Value: "v2"},
				{Domain: "shop.example.com", Name: "_dnsauth.shop.example.com", Type: "CNAME", Value: "x.dcv.example.net"},
			},
		},
		{
			name: "file validation is skipped",
			detail: &dvAuthDetail{DvAuths: []dvAuth{
				{DvAuthKey: "fileauth.txt", DvAuthValue: "v", DvAuthDomain: "example.com", DvAuthPath: "/.well-known/pki-validation/", DvAuthVerifyType: "FILE"},
			}},
			skip: 1,
		},
		{name: "nil", detail: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, skipped := dcvRecords(tc.detail)
			if len(got) != len(tc.want) || len(skipped) != tc.skip {
				t.Fatalf("got %+v, skipped %v; want %+v and %d skipped", got, skipped, tc.want, tc.skip)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("record %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		code      string
		message   string
		ph        phase
		typ       string
		permanent bool
		retry     time.Duration
	}{
		{"FailedOperation.ExceedsFreeLimit", "", beforePurchase, "rateLimited", true, 0},
		{"FailedOperation.MainDomainCertificateCountLimit", "", afterPurchase, "rateLimited", true, 0},
		{"LimitExceeded.RateLimitExceeded", "", beforePurchase, "rateLimited", false, time.Second},
		{"RequestLimitExceeded", "", afterPurchase, "rateLimited", false, time.Second},
		{"AuthFailure.SignatureFailure", "", beforePurchase, "serverInternal", true, 0},
		{"AuthFailure.SignatureFailure", "", afterPurchase, "serverInternal", false, credentialRetry},
		{"AuthFailure.SecretIdNotFound", "", beforePurchase, "serverInternal", true, 0},
		{"UnauthorizedOperation", "", beforePurchase, "serverInternal", true, 0},
		{"InvalidParameter.ProductPidInvalid", "", beforePurchase, "serverInternal", true, 0},
		{"FailedOperation.CertificateCsrParseFailed", "", afterPurchase, "badCSR", true, 0},
		{"InvalidParameter.DomainInvalid", "", afterPurchase, "rejectedIdentifier", true, 0},
		{"FailedOperation.CertificateInfoSubmitDomainInvalid", "", afterPurchase, "rejectedIdentifier", true, 0},
		{"InvalidParameter.WithDetailReason", "CertCommonName does not match the CSR", afterPurchase, "badCSR", true, 0},
		{"InvalidParameter.WithDetailReason", "something else", afterPurchase, "malformed", true, 0},
		{"UnknownParameter", "", afterPurchase, "malformed", true, 0},
		{"InternalError.BackendResponseError", "", afterPurchase, "serverInternal", false, 0},
		{"FailedOperation.SomethingNew", "", afterPurchase, "serverInternal", false, 0},
	} {
		err := classify(&APIError{Action: "X", Code: tc.code, Message: tc.message, RequestID: "r"}, tc.ph)
		ie, ok := issuer.AsError(err)
		if !ok {
			t.Errorf("%s: not an *issuer.Error: %v", tc.code, err)
			continue
		}
		if ie.Type != tc.typ || ie.Permanent != tc.permanent || ie.RetryAfter != tc.retry {
			t.Errorf("%s (phase %d) = %s permanent=%v retry=%v; want %s %v %v", tc.code, tc.ph, ie.Type, ie.Permanent, ie.RetryAfter, tc.typ, tc.permanent, tc.retry)
		}
		if !strings.HasPrefix(ie.Detail, detailPrefix) || !strings.Contains(ie.Detail, tc.code) {
			t.Errorf("%s: detail %q lacks the prefix or the code", tc.code, ie.Detail)
		}
	}
	plain := errors.New("connection refused")
	if got := classify(plain, beforePurchase); got != plain {
		t.Errorf("a transport error was rewritten: %v", got)
	}
}
