package dcv_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer/dcv"
)

const (
	tcSecretID  = "AKIDdcvtestEXAMPLE00000000000000000"
	tcSecretKey = "dcvtestSecretKeyEXAMPLE000000000"
)

// tc3Verify checks a TC3-HMAC-SHA256 signature for service "dnspod" with
// code of its own (after issuer/tencent/tencenttest's verifier), rebuilding
// the canonical request from the headers SignedHeaders lists. It returns
// Tencent's error code, or "".
func tc3Verify(r *http.Request, body []byte) (code, msg string) {
	const algorithm = "TC3-HMAC-SHA256"
	rest, ok := strings.CutPrefix(r.Header.Get("Authorization"), algorithm+" ")
	if !ok {
		return "AuthFailure.InvalidAuthorization", "The Authorization header is not TC3-HMAC-SHA256."
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok {
			fields[k] = v
		}
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 4 || scope[3] != "tc3_request" {
		return "AuthFailure.InvalidAuthorization", "Bad Credential."
	}
	id, date, service := scope[0], scope[1], scope[2]
	if id != tcSecretID {
		return "AuthFailure.SecretIdNotFound", "The SecretId is not found, please ensure that your SecretId is correct."
	}
	if service != "dnspod" {
		return "AuthFailure.InvalidAuthorization", "The credential scope names service " + service + ", not dnspod."
	}
	ts, err := strconv.ParseInt(r.Header.Get("X-TC-Timestamp"), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		return "AuthFailure.SignatureExpire", "Signature expired."
	}
	if date != time.Unix(ts, 0).UTC().Format("2006-01-02") {
		return "AuthFailure.SignatureFailure", "The credential date does not match X-TC-Timestamp."
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !slices.Contains(signed, "content-type") || !slices.Contains(signed, "host") || !slices.IsSorted(signed) {
		return "AuthFailure.SignatureFailure", "SignedHeaders must be sorted and include content-type and host."
	}
	var hb strings.Builder
	for _, h := range signed {
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
		}
		hb.WriteString(h + ":" + strings.ToLower(strings.TrimSpace(v)) + "\n")
	}
	ph := sha256.Sum256(body)
	canonical := "POST\n/\n\n" + hb.String() + "\n" + fields["SignedHeaders"] + "\n" + hex.EncodeToString(ph[:])
	ch := sha256.Sum256([]byte(canonical))
	toSign := algorithm + "\n" + strconv.FormatInt(ts, 10) + "\n" + date + "/dnspod/tc3_request\n" + hex.EncodeToString(ch[:])
	mac := func(key []byte, s string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	want := mac(mac(mac(mac([]byte("TC3"+tcSecretKey), date), "dnspod"), "tc3_request"), toSign)
	got, err := hex.DecodeString(fields["Signature"])
	if err != nil || !hmac.Equal(got, want) {
		return "AuthFailure.SignatureFailure", "The provided credentials could not be validated. Please check your signature is correct."
	}
	return "", ""
}

// newDNSPodFake serves CreateRecord, DescribeRecordList and DeleteRecord of
// the DNSPod API 2021-03-23 for the domain example.com, storing records in
// z. Unknown parameters are refused, as Tencent does.
func newDNSPodFake(t *testing.T, z *fakeZone) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		reply := func(resp map[string]any) {
			resp["RequestId"] = "req-" + strconv.Itoa(len(body))
			_ = json.NewEncoder(w).Encode(map[string]any{"Response": resp})
		}
		fail := func(code, msg string) {
			reply(map[string]any{"Error": map[string]string{"Code": code, "Message": msg}})
		}
		if r.Method != http.MethodPost || r.URL.Path != "/" {
			fail("InvalidAction", "POST / only")
			return
		}
		if code, msg := tc3Verify(r, body); code != "" {
			fail(code, msg)
			return
		}
		if v := r.Header.Get("X-TC-Version"); v != "2021-03-23" {
			fail("NoSuchVersion", "The API version "+v+" does not exist.")
			return
		}
		var in struct {
			Domain, SubDomain, Subdomain, RecordType, RecordLine, Value string
			TTL, RecordId                                               *uint64
			Offset, Limit                                               *int
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			fail("UnknownParameter", err.Error())
			return
		}
		if in.Domain != providerZone {
			fail("InvalidParameter.DomainNotBelongToUser", "The domain does not belong to this account.")
			return
		}
		fqdn := func(sub string) string {
			if sub == "@" {
				return providerZone
			}
			return sub + "." + providerZone
		}
		action := r.Header.Get("X-TC-Action")
		z.count(action)
		switch action {
		case "CreateRecord":
			if in.RecordLine != "默认" || in.SubDomain == "" || in.Subdomain != "" || in.Value == "" || in.TTL == nil || *in.TTL < 600 ||
				(in.RecordType != "TXT" && in.RecordType != "CNAME") || in.RecordId != nil || in.Offset != nil {
				fail("InvalidParameter", "bad CreateRecord parameters")
				return
			}
			for _, rec := range z.find(fqdn(in.SubDomain), in.RecordType) {
				if rec.Value == in.Value {
					fail("InvalidParameter.DomainRecordExist", "The record already exists.")
					return
				}
			}
			reply(map[string]any{"RecordId": z.add(fqdn(in.SubDomain), in.RecordType, in.Value)})
		case "DescribeRecordList":
			var list []any
			for _, rec := range z.find(fqdn(in.Subdomain), in.RecordType) {
				list = append(list, map[string]any{"RecordId": rec.ID, "Name": in.Subdomain, "Type": rec.Type, "Value": rec.Value,
					"Line": "默认", "LineId": "0", "Status": "ENABLE", "TTL": 600})
			}
			if len(list) == 0 {
				fail("ResourceNotFound.NoDataOfRecord", "The record list is empty.")
				return
			}
			reply(map[string]any{"RecordCountInfo": map[string]any{"TotalCount": len(list), "ListCount": len(list)}, "RecordList": list})
		case "DeleteRecord":
			if in.RecordId == nil || !z.remove(int(*in.RecordId)) {
				fail("InvalidParameter.RecordIdInvalid", "The record id is invalid.")
				return
			}
			reply(map[string]any{})
		default:
			fail("InvalidAction", "The action "+action+" does not exist.")
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestTencentCloud(t *testing.T) {
	z := newFakeZone(t)
	srv := newDNSPodFake(t, z)
	t.Setenv("TEST_TC_ID", tcSecretID)
	t.Setenv("TEST_TC_KEY", tcSecretKey)
	cfg, err := dcv.ParseConfig("dns-provider", map[string]string{
		"provider": "tencentcloud", "secret_id_env": "TEST_TC_ID", "secret_key_env": "TEST_TC_KEY",
		"domain": "Example.com", "endpoint": srv.URL,
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := dcv.New("dns-provider", cfg)
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, p, z)
	if z.callCount("CreateRecord") != 3 || z.callCount("DeleteRecord") != 3 {
		t.Errorf("creates %d, deletes %d; want 3 each", z.callCount("CreateRecord"), z.callCount("DeleteRecord"))
	}
}

func TestTencentCloudRefused(t *testing.T) {
	z := newFakeZone(t)
	srv := newDNSPodFake(t, z)
	const wrong = "dcvtestWRONGKeyEXAMPLE0000000000"
	p, err := dcv.New("tencentcloud", dcv.Config{TencentCloud: dcv.TencentCloudConfig{
		SecretID: tcSecretID, SecretKey: wrong, Domains: []string{providerZone}, Endpoint: srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	checkRefused(t, p, wrong, "tencentcloud", "AuthFailure.SignatureFailure", "DescribeRecordList", "_dnsauth.example.com")
	p, _ = dcv.New("tencentcloud", dcv.Config{TencentCloud: dcv.TencentCloudConfig{
		SecretID: "AKIDunknown", SecretKey: tcSecretKey, Domains: []string{providerZone}, Endpoint: srv.URL}})
	checkRefused(t, p, tcSecretKey, "AuthFailure.SecretIdNotFound")
	if len(z.find("_dnsauth.example.com", "")) != 0 {
		t.Error("a refused request wrote a record")
	}
	if _, err := dcv.New("tencentcloud", dcv.Config{TencentCloud: dcv.TencentCloudConfig{SecretID: "a", SecretKey: "b"}}); err == nil {
		t.Error("New without a domain succeeded")
	}
}
