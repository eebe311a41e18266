package dcv_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/acmegw/acmegw/issuer/dcv"
)

const (
	cfToken  = "cf-test-token-EXAMPLE-0123456789abcdef"
	cfZoneID = "023e105f4ecef8ad9ca31a8372d0c353"
)

// newCloudflareFake serves the part of Cloudflare's API v4 the Publisher
// uses, for the zone example.com, storing records in z. TXT content is
// handed back quoted, as Cloudflare does for records it normalised.
func newCloudflareFake(t *testing.T, z *fakeZone) *httptest.Server {
	fail := func(w http.ResponseWriter, status, code int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"success": false, "errors": []any{map[string]any{"code": code, "message": msg}}, "result": nil})
	}
	ok := func(w http.ResponseWriter, result any, info any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "errors": []any{}, "result": result, "result_info": info})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /client/v4/zones", func(w http.ResponseWriter, r *http.Request) {
		z.count("zones")
		var res []any
		if r.URL.Query().Get("name") == providerZone {
			res = append(res, map[string]any{"id": cfZoneID, "name": providerZone})
		}
		ok(w, res, map[string]int{"page": 1, "total_pages": 1})
	})
	view := func(rec fakeRecord) map[string]any {
		return map[string]any{"id": strconv.Itoa(rec.ID), "type": rec.Type, "name": rec.Name, "content": rec.Value, "zone_id": cfZoneID}
	}
	mux.HandleFunc("GET /client/v4/zones/{zone}/dns_records", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("zone") != cfZoneID {
			fail(w, http.StatusNotFound, 7003, "Could not route to /zones/"+r.PathValue("zone")+"/dns_records, perhaps your object identifier is invalid?")
			return
		}
		q := r.URL.Query()
		res := []any{}
		for _, rec := range z.find(q.Get("name"), q.Get("type")) {
			res = append(res, view(rec))
		}
		ok(w, res, map[string]int{"page": 1, "total_pages": 1})
	})
	mux.HandleFunc("POST /client/v4/zones/{zone}/dns_records", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Type, Name, Content string
			TTL                 int
			Proxied             *bool
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if r.PathValue("zone") != cfZoneID || dec.Decode(&in) != nil || in.Name == "" || in.Content == "" ||
			(in.TTL != 1 && (in.TTL < 60 || in.TTL > 86400)) || !strings.HasSuffix(in.Name, providerZone) {
			fail(w, http.StatusBadRequest, 9000, "DNS name is invalid.")
			return
		}
		if r.Header.Get("Content-Type") != "application/json" {
			fail(w, http.StatusBadRequest, 6003, "Invalid request headers")
			return
		}
		for _, rec := range z.find(in.Name, in.Type) {
			if unquote(rec.Value) == in.Content {
				fail(w, http.StatusBadRequest, 81058, "An identical record already exists.")
				return
			}
		}
		content := in.Content
		if in.Type == "TXT" {
			content = strconv.Quote(content)
		}
		z.count("create")
		id := z.add(in.Name, in.Type, content)
		ok(w, view(fakeRecord{ID: id, Name: in.Name, Type: in.Type, Value: content}), nil)
	})
	mux.HandleFunc("DELETE /client/v4/zones/{zone}/dns_records/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(r.PathValue("id"))
		if r.PathValue("zone") != cfZoneID || !z.remove(id) {
			fail(w, http.StatusNotFound, 81044, "Record does not exist.")
			return
		}
		z.count("delete")
		ok(w, map[string]string{"id": r.PathValue("id")}, nil)
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+cfToken {
			fail(w, http.StatusForbidden, 10000, "Authentication error")
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestCloudflare(t *testing.T) {
	for _, tc := range []struct {
		name   string
		zone   string
		zoneID string
	}{
		{"zone id", "", cfZoneID},
		{"zone name", providerZone, ""},
		{"zone found from the record name", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := newFakeZone(t)
			srv := newCloudflareFake(t, z)
			t.Setenv("TEST_CF_TOKEN", cfToken)
			kv := map[string]string{"provider": "cloudflare", "api_token_env": "TEST_CF_TOKEN", "base_url": srv.URL + "/client/v4"}
			if tc.zone != "" {
				kv["zone"] = tc.zone
			}
			if tc.zoneID != "" {
				kv["zone_id"] = tc.zoneID
			}
			cfg, err := dcv.ParseConfig("dns-provider", kv)
			if err != nil {
				t.Fatal(err)
			}
			p, err := dcv.New("dns-provider", cfg)
			if err != nil {
				t.Fatal(err)
			}
			exercise(t, p, z)
			if n := z.callCount("zones"); tc.zoneID != "" && n != 0 || tc.zoneID == "" && n == 0 {
				t.Errorf("%d zone look-ups", n)
			}
			if z.callCount("create") != 3 || z.callCount("delete") != 3 {
				t.Errorf("creates %d, deletes %d; want 3 each", z.callCount("create"), z.callCount("delete"))
			}
		})
	}
}

func TestCloudflareRefused(t *testing.T) {
	z := newFakeZone(t)
	srv := newCloudflareFake(t, z)
	const wrong = "cf-wrong-token-EXAMPLE-ffffffffffffffff"
	p, err := dcv.New("cloudflare", dcv.Config{Cloudflare: dcv.CloudflareConfig{APIToken: wrong, ZoneID: cfZoneID, BaseURL: srv.URL + "/client/v4"}})
	if err != nil {
		t.Fatal(err)
	}
	checkRefused(t, p, wrong, "cloudflare", "HTTP 403", "10000 Authentication error", "_dnsauth.example.com")

	// A zone the token cannot see is named.
	p, _ = dcv.New("cloudflare", dcv.Config{Cloudflare: dcv.CloudflareConfig{APIToken: cfToken, BaseURL: srv.URL + "/client/v4"}})
	err = p.Publish(t.Context(), dcv.Record{Domain: "a.unknown.test", Name: "_dnsauth.a.unknown.test", Type: "TXT", Value: "v"})
	if err == nil || !strings.Contains(err.Error(), "no Cloudflare zone") || strings.Contains(err.Error(), cfToken) {
		t.Errorf("Publish in an unknown zone: %v", err)
	}
	if _, err := dcv.New("cloudflare", dcv.Config{}); err == nil || !strings.Contains(err.Error(), "api_token_env") {
		t.Errorf("New without a token: %v", err)
	}
}
