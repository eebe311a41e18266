package tc3

import "testing"

// TestTC3KnownAnswers checks the signer against values derived
// independently of this implementation.
func TestTC3KnownAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  Request
		want string
	}{
		{
			// The worked example of Tencent's "Signature v3" documentation
			// (CVM DescribeInstances, 2019-02-25), with its example key pair.
			name: "Tencent documentation example",
			req: Request{
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
			req: Request{
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
			if got := tc.req.Authorization(); got != tc.want {
				t.Errorf("authorization\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestTC3Sensitivity checks that every signed input changes the signature
// and that the scope date is the UTC day of the timestamp.
func TestTC3Sensitivity(t *testing.T) {
	base := Request{SecretID: "id", SecretKey: "key", Service: "ssl", Host: "ssl.tencentcloudapi.com",
		ContentType: "application/json; charset=utf-8", Payload: []byte(`{"CertificateId":"x"}`), Timestamp: 1773532799}
	date, sig := base.signature()
	if date != "2026-03-14" {
		t.Errorf("date = %s, want 2026-03-14 (UTC day of the timestamp)", date)
	}
	for name, mutate := range map[string]func(*Request){
		"key":          func(r *Request) { r.SecretKey = "kez" },
		"service":      func(r *Request) { r.Service = "cvm" },
		"host":         func(r *Request) { r.Host = "ssl.intl.tencentcloudapi.com" },
		"content-type": func(r *Request) { r.ContentType = "application/json" },
		"payload":      func(r *Request) { r.Payload = []byte(`{"CertificateId":"y"}`) },
		"timestamp":    func(r *Request) { r.Timestamp++ },
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
