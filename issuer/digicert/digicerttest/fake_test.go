package digicerttest_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer/digicert/digicerttest"
)

// do sends one request to the fake and decodes the JSON answer.
func do(t *testing.T, f *digicerttest.Server, key, method, path, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-DC-DEVKEY", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, resp.Header, out
}

func firstErrorCode(t *testing.T, body map[string]any) string {
	t.Helper()
	errs, _ := body["errors"].([]any)
	if len(errs) == 0 {
		t.Fatalf("no errors[] in %v", body)
	}
	return errs[0].(map[string]any)["code"].(string)
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	f := digicerttest.New(t, digicerttest.Options{APIKey: "right"})
	for key, code := range map[string]string{"": "missing_api_key", "wrong": "invalid_api_key"} {
		status, _, body := do(t, f, key, http.MethodGet, "order/certificate/1", "")
		if status != http.StatusUnauthorized || firstErrorCode(t, body) != code {
			t.Errorf("key %q: %d %v", key, status, body)
		}
	}
	status, _, body := do(t, f, "right", http.MethodGet, "order/certificate/1", "")
	if status != http.StatusNotFound || firstErrorCode(t, body) != "not_found" {
		t.Errorf("unknown order: %d %v", status, body)
	}
	for _, ex := range f.Exchanges() {
		if strings.Contains(string(ex.Request)+string(ex.Response), "right") {
			t.Errorf("the exchange log holds the key: %+v", ex)
		}
	}
}

func TestRateLimitAndRefusals(t *testing.T) {
	t.Parallel()
	f := digicerttest.New(t, digicerttest.Options{})
	f.RateLimit(1, 5*time.Second)
	status, hdr, body := do(t, f, f.APIKey(), http.MethodGet, "order/certificate", "")
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") != "5" || firstErrorCode(t, body) != "rate_limit_exceeded" {
		t.Errorf("rate limit: %d %v %v", status, hdr, body)
	}
	status, _, body = do(t, f, f.APIKey(), http.MethodGet, "order/certificate", "")
	if status != http.StatusOK || body["orders"] == nil {
		t.Errorf("after the limit: %d %v", status, body)
	}
	status, _, body = do(t, f, f.APIKey(), http.MethodPost, "order/certificate/ssl_basic",
		`{"certificate":{"common_name":"a.example","csr":"nope","signature_hash":"sha256"}}`)
	if status != http.StatusBadRequest || firstErrorCode(t, body) != "invalid_csr" {
		t.Errorf("bad CSR: %d %v", status, body)
	}
	if err := f.Approve(1); err == nil {
		t.Error("Approve of an unknown order succeeded")
	}
	if err := f.Reject(1, "no"); err == nil {
		t.Error("Reject of an unknown order succeeded")
	}
}
