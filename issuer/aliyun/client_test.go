package aliyun

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer"
)

func TestClassify(t *testing.T) {
	is, err := New(Config{AccessKeyID: "id", AccessKeySecret: "secret", ProductCode: "geotrust-dv-1-starter", ThrottleRetry: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		status    int
		code      string
		typ       string
		permanent bool
	}{
		{400, "Throttling", "rateLimited", false},
		{400, "Throttling.User", "rateLimited", false},
		{400, "Throttling.Api", "rateLimited", false},
		{404, "InvalidAccessKeyId.NotFound", "serverInternal", true},
		{400, "InvalidAccessKeyId.Inactive", "serverInternal", true},
		{400, "SignatureDoesNotMatch", "serverInternal", true},
		{403, "Forbidden.RAM", "serverInternal", true},
		{400, "QuotaExceeded", "rateLimited", true},
		{403, "Certificate.OverQuota", "rateLimited", true},
		{400, "NotEnoughPackage", "rateLimited", true},
		{400, "SignatureNonceUsed", "serverInternal", false},
		{400, "InvalidTimeStamp.Expired", "serverInternal", false},
		{503, "ServiceUnavailable", "serverInternal", false},
		{500, "InternalError", "serverInternal", false},
		{502, "HTTP502", "serverInternal", false},
		{400, "InvalidParameter.Csr", "badCSR", true},
		{400, "InvalidParameter.Domain", "rejectedIdentifier", true},
		{400, "InvalidParameter.OrderId", "serverInternal", true},
	}
	for _, c := range cases {
		err := is.classify("X", &apiError{Status: c.status, Code: c.code, Message: "m", RequestID: "R"})
		ie, ok := issuer.AsError(err)
		if !ok || ie.Type != c.typ || ie.Permanent != c.permanent {
			t.Errorf("%d %s: %+v, want %s permanent=%v", c.status, c.code, ie, c.typ, c.permanent)
			continue
		}
		if c.typ == "rateLimited" && !c.permanent && ie.RetryAfter != 3*time.Second {
			t.Errorf("%s: RetryAfter %v", c.code, ie.RetryAfter)
		}
		if ae, ok := asAPIError(err); !ok || ae.Code != c.code {
			t.Errorf("%s: raw answer not in the chain", c.code)
		}
	}
}

// TestNonJSONErrorsAndRetryAfter: a proxy's HTML error page is a transient
// error, and a Retry-After header beats the configured default.
func TestNonJSONErrorsAndRetryAfter(t *testing.T) {
	var status int
	var retryAfter, body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	is, err := New(Config{AccessKeyID: "id", AccessKeySecret: "secret", ProductCode: "geotrust-dv-1-starter", Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	tk := ticket{OrderID: 1}.encode()

	status, body = 502, "<html>Bad Gateway</html>"
	_, err = is.Poll(context.Background(), tk)
	if ie, ok := issuer.AsError(err); !ok || ie.Permanent {
		t.Errorf("502 page: %v, want transient", err)
	}
	status, retryAfter, body = 400, "42", `{"Code":"Throttling.User","Message":"Request was denied due to user flow control."}`
	_, err = is.Poll(context.Background(), tk)
	if ie, ok := issuer.AsError(err); !ok || ie.RetryAfter != 42*time.Second {
		t.Errorf("throttled with Retry-After: %v", err)
	}
	status, retryAfter, body = 200, "", `not json`
	if _, err = is.Poll(context.Background(), tk); err == nil || issuer.IsPermanent(err) {
		t.Errorf("garbled 200: %v, want transient", err)
	}
	status, body = 200, `{"Type":"unknow"}`
	if _, err = is.Poll(context.Background(), tk); err == nil || issuer.IsPermanent(err) {
		t.Errorf("unknown state: %v, want transient", err)
	}
}
