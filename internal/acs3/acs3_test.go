package acs3

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// docExample is the worked example of Alibaba's "Request syntax and
// signature method V3" page (RunInstances on ECS), whose Authorization
// header the page prints: an answer computed by Alibaba, not by this code.
var docExample = request{
	method: "POST",
	path:   "/",
	query: []Param{
		{"RegionId", "cn-shanghai"},
		{"ImageId", "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"},
	},
	headers: map[string]string{
		"host":                  "ecs.cn-shanghai.aliyuncs.com",
		"x-acs-action":          "RunInstances",
		"x-acs-version":         "2014-05-26",
		"x-acs-date":            "2023-10-26T10:22:32Z",
		"x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
		"x-acs-content-sha256":  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		// Not signed: V3 signs host, content-type and x-acs-* only.
		"User-Agent": "ignored/1.0",
	},
}

const docAuthorization = "ACS3-HMAC-SHA256 Credential=YourAccessKeyId," +
	"SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version," +
	"Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"

func TestSignatureMatchesAlibabaDocumentation(t *testing.T) {
	canonical, _ := docExample.canonicalRequest()
	// The page prints the hashed canonical request too.
	if got := hashHex([]byte(canonical)); got != "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259" {
		t.Errorf("hashed canonical request = %s\ncanonical request:\n%s", got, canonical)
	}
	if got := docExample.authorization("YourAccessKeyId", "YourAccessKeySecret"); got != docAuthorization {
		t.Errorf("Authorization =\n %s\nwant\n %s", got, docAuthorization)
	}
}

// TestSignatureEncodingKnownAnswer covers what the documentation example
// does not: a body, content-type, and query values needing every kind of
// escaping (space, *, ~, +, /, =, newlines, UTF-8), and a name that sorts
// differently as "name" than as "name=value" (a < a-b < a=). The expected
// values were computed independently with Python's hashlib, hmac and
// urllib.parse.quote(safe="-_.~").
func TestSignatureEncodingKnownAnswer(t *testing.T) {
	body := []byte("ProductCode=geotrust-dv-1-starter")
	r := request{
		method: "POST",
		query: []Param{
			{"Csr", "-----BEGIN CERTIFICATE REQUEST-----\nMIIB+/=\n-----END CERTIFICATE REQUEST-----\n"},
			{"Domain", "*.example.com,www.example.com"},
			{"a-b", "x y"},
			{"a", "~tilde*star"},
			{"Username", "张三"},
			{"Email", "ops+certs@example.com"},
		},
		headers: map[string]string{
			"host":                  "cas.aliyuncs.com",
			"x-acs-action":          "CreateCertificateForPackageRequest",
			"x-acs-version":         "2020-04-07",
			"x-acs-date":            "2026-03-20T08:00:00Z",
			"x-acs-signature-nonce": "0123456789abcdef0123456789abcdef",
			"x-acs-content-sha256":  hashHex(body),
			"Content-Type":          "application/x-www-form-urlencoded",
		},
		body: body,
	}
	if got, want := CanonicalQuery(r.query), "Csr=-----BEGIN%20CERTIFICATE%20REQUEST-----%0AMIIB%2B%2F%3D%0A-----END%20CERTIFICATE%20REQUEST-----%0A"+
		"&Domain=%2A.example.com%2Cwww.example.com&Email=ops%2Bcerts%40example.com&Username=%E5%BC%A0%E4%B8%89&a=~tilde%2Astar&a-b=x%20y"; got != want {
		t.Errorf("canonical query =\n %s\nwant\n %s", got, want)
	}
	if got := hashHex(body); got != "76ee4fd19e3f2e7bb73d9c7e12a4830bc25204e0860b3609e458d7220fb04b21" {
		t.Errorf("body hash = %s", got)
	}
	canonical, signed := r.canonicalRequest()
	if signed != "content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version" {
		t.Errorf("SignedHeaders = %s", signed)
	}
	if got := hashHex([]byte(canonical)); got != "23b952f12365ac7d58db79b2288766ce9d52348c39e2814f8090fb6f32dc65dd" {
		t.Errorf("hashed canonical request = %s\n%s", got, canonical)
	}
	auth := r.authorization("LTAIexample", "test-secret/+=")
	if !strings.HasSuffix(auth, ",Signature=20fe9254cf6ea89ba397adb05fedee667bc930ae5b8b403dc6554854216d40ab") {
		t.Errorf("Authorization = %s", auth)
	}
}

// TestSignHTTPReproducesDocumentation signs the documentation example
// through SignHTTP, the entry point callers use, so the headers it sets
// and the path and host it takes from the request are pinned as well.
func TestSignHTTPReproducesDocumentation(t *testing.T) {
	req, err := http.NewRequest("POST", "https://ecs.cn-shanghai.aliyuncs.com/?"+CanonicalQuery(docExample.query), http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	now, _ := time.Parse(time.RFC3339, docExample.headers["x-acs-date"])
	SignHTTP(req, docExample.headers["x-acs-action"], docExample.headers["x-acs-version"], docExample.query, nil,
		"YourAccessKeyId", "YourAccessKeySecret", now, docExample.headers["x-acs-signature-nonce"])
	if got := req.Header.Get("Authorization"); got != docAuthorization {
		t.Errorf("Authorization =\n %s\nwant\n %s", got, docAuthorization)
	}
	for name, want := range docExample.headers {
		if name == "host" || name == "User-Agent" {
			continue
		}
		if got := req.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if req.Host != "ecs.cn-shanghai.aliyuncs.com" {
		t.Errorf("Host = %q", req.Host)
	}
}
