package tencent

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/dcv"
)

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
