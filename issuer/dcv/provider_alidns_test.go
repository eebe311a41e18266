package dcv_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/acmegw/acmegw/issuer/aliyun/aliyuntest"
	"github.com/acmegw/acmegw/issuer/dcv"
)

const (
	aliKeyID     = "LTAIdcvtestEXAMPLE000000"
	aliKeySecret = "dcvtestAccessKeySecretEXAMPLE0"
)

// newAliDNSFake serves AddDomainRecord, DescribeDomainRecords and
// DeleteDomainRecord of Alibaba Cloud DNS 2015-01-09 for example.com,
// storing records in z. Signatures are checked by aliyuntest's independent
// ACS3 verifier. RRKeyWord matches by substring, as the real search is
// fuzzy, so the client must filter exactly.
func newAliDNSFake(t *testing.T, z *fakeZone) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		fail := func(status int, code, msg string) {
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]string{"RequestId": "REQ-1", "Code": code, "Message": msg, "HostId": "alidns.aliyuncs.com"})
		}
		_, err := aliyuntest.CheckSignature(r, body, func(id string) (string, bool) { return aliKeySecret, id == aliKeyID })
		var se *aliyuntest.SignatureError
		if errors.As(err, &se) {
			fail(se.Status, se.Code, se.Message)
			return
		} else if err != nil {
			fail(400, "SignatureDoesNotMatch", err.Error())
			return
		}
		if r.Header.Get("x-acs-version") != "2015-01-09" {
			fail(400, "InvalidVersion", "Specified parameter Version is not valid.")
			return
		}
		q := r.URL.Query()
		known := map[string][]string{
			"AddDomainRecord":       {"DomainName", "RR", "Type", "Value", "TTL"},
			"DescribeDomainRecords": {"DomainName", "RRKeyWord", "TypeKeyWord", "PageNumber", "PageSize"},
			"DeleteDomainRecord":    {"RecordId"},
		}
		action := r.Header.Get("x-acs-action")
		params, ok := known[action]
		if !ok {
			fail(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
			return
		}
		for k := range q {
			if !slices.Contains(params, k) {
				fail(400, "InvalidParameter", "Unknown parameter "+k)
				return
			}
		}
		if action != "DeleteDomainRecord" && q.Get("DomainName") != providerZone {
			fail(400, "InvalidDomainName.NoExist", "The specified domain name does not exist.")
			return
		}
		fqdn := func(rr string) string {
			if rr == "@" {
				return providerZone
			}
			return rr + "." + providerZone
		}
		z.count(action)
		reply := func(v map[string]any) {
			v["RequestId"] = "REQ-2"
			_ = json.NewEncoder(w).Encode(v)
		}
		switch action {
		case "AddDomainRecord":
			ttl, _ := strconv.Atoi(q.Get("TTL"))
			typ := q.Get("Type")
			if q.Get("RR") == "" || q.Get("Value") == "" || ttl < 600 || (typ != "TXT" && typ != "CNAME") ||
				typ == "CNAME" && strings.HasSuffix(q.Get("Value"), ".") {
				fail(400, "InvalidParameter", "bad AddDomainRecord parameters")
				return
			}
			for _, rec := range z.find(fqdn(q.Get("RR")), typ) {
				if rec.Value == q.Get("Value") {
					fail(400, "DomainRecordDuplicate", "The DNS record already exists.")
					return
				}
			}
			reply(map[string]any{"RecordId": strconv.Itoa(z.add(fqdn(q.Get("RR")), typ, q.Get("Value")))})
		case "DescribeDomainRecords":
			kw := strings.ToLower(q.Get("RRKeyWord"))
			var list []any
			z.mu.Lock()
			all := slices.Clone(z.records)
			z.mu.Unlock()
			for _, rec := range all {
				rr := "@"
				if rec.Name != providerZone {
					rr = strings.TrimSuffix(rec.Name, "."+providerZone)
				}
				if strings.Contains(rr, kw) && strings.Contains(rec.Type, q.Get("TypeKeyWord")) {
					list = append(list, map[string]any{"RecordId": strconv.Itoa(rec.ID), "RR": rr, "Type": rec.Type,
						"Value": rec.Value, "DomainName": providerZone, "TTL": 600, "Line": "default", "Status": "ENABLE"})
				}
			}
			reply(map[string]any{"TotalCount": len(list), "PageNumber": 1, "PageSize": 500, "DomainRecords": map[string]any{"Record": list}})
		case "DeleteDomainRecord":
			id, _ := strconv.Atoi(q.Get("RecordId"))
			if !z.remove(id) {
				fail(400, "DomainRecordNotBelongToUser", "The DNS record does not belong to you.")
				return
			}
			reply(map[string]any{"RecordId": q.Get("RecordId")})
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAliDNS(t *testing.T) {
	z := newFakeZone(t)
	srv := newAliDNSFake(t, z)
	t.Setenv("TEST_ALI_ID", aliKeyID)
	t.Setenv("TEST_ALI_SECRET", aliKeySecret)
	cfg, err := dcv.ParseConfig("dns-provider", map[string]string{
		"provider": "alidns", "access_key_id_env": "TEST_ALI_ID", "access_key_secret_env": "TEST_ALI_SECRET",
		"domain": "other.example.org, example.com", "endpoint": srv.URL,
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := dcv.New("dns-provider", cfg)
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, p, z)
	if z.callCount("AddDomainRecord") != 3 || z.callCount("DeleteDomainRecord") != 3 {
		t.Errorf("creates %d, deletes %d; want 3 each", z.callCount("AddDomainRecord"), z.callCount("DeleteDomainRecord"))
	}
}

func TestAliDNSRefused(t *testing.T) {
	z := newFakeZone(t)
	srv := newAliDNSFake(t, z)
	const wrong = "dcvtestWRONGSecretEXAMPLE00000"
	p, err := dcv.New("alidns", dcv.Config{AliDNS: dcv.AliDNSConfig{
		AccessKeyID: aliKeyID, AccessKeySecret: wrong, Domains: []string{providerZone}, Endpoint: srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	checkRefused(t, p, wrong, "alidns", "SignatureDoesNotMatch", "DescribeDomainRecords", "_dnsauth.example.com")
	p, _ = dcv.New("alidns", dcv.Config{AliDNS: dcv.AliDNSConfig{
		AccessKeyID: "LTAIunknown", AccessKeySecret: aliKeySecret, Domains: []string{providerZone}, Endpoint: srv.URL}})
	checkRefused(t, p, aliKeySecret, "InvalidAccessKeyId.NotFound")
	if len(z.find("_dnsauth.example.com", "")) != 0 {
		t.Error("a refused request wrote a record")
	}
	if _, err := dcv.New("alidns", dcv.Config{AliDNS: dcv.AliDNSConfig{AccessKeyID: "a", AccessKeySecret: "b", Domains: []string{"x.test"}, Endpoint: "ftp://x"}}); err == nil {
		t.Error("New with an ftp endpoint succeeded")
	}
}
