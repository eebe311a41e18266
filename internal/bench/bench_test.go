package bench

import (
	"crypto"
	"encoding/base64"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/miekg/dns"
)

func TestSignVerifies(t *testing.T) {
	c, err := newClient(&Config{}, nil, newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{"", "https://ca.test/acct/1"} {
		c.kid, c.nonce = kid, "nonce-1"
		body, err := c.sign("https://ca.test/new-order", []byte(`{"x":1}`))
		if err != nil {
			t.Fatal(err)
		}
		jws, err := jose.ParseSigned(string(body), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		payload, err := jws.Verify(&c.key.PublicKey)
		if err != nil || string(payload) != `{"x":1}` {
			t.Fatalf("verify: %v %q", err, payload)
		}
		h := jws.Signatures[0].Protected
		if h.Nonce != "nonce-1" || h.ExtraHeaders["url"] != "https://ca.test/new-order" || h.KeyID != kid || (kid == "") != (h.JSONWebKey != nil) {
			t.Fatalf("protected header %+v", h)
		}
		if kid == "" {
			tp, err := h.JSONWebKey.Thumbprint(crypto.SHA256)
			if err != nil || base64.RawURLEncoding.EncodeToString(tp) != c.thumb {
				t.Fatalf("thumbprint %x (%v), want %s", tp, err, c.thumb)
			}
		}
		if c.nonce != "" {
			t.Fatal("nonce not consumed")
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{"0", 0, true},
		{"soon", 0, false},
		{now.Add(2 * time.Second).Format(http.TimeFormat), 2 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := summarize("x", ds)
	if s.Count != 100 || s.P50 != 50 || s.P90 != 90 || s.P99 != 99 || s.Max != 100 || s.Mean != 50.5 {
		t.Fatalf("%+v", s)
	}
}

func TestDNSServer(t *testing.T) {
	s, err := ListenDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	long := strings.Repeat("a", 300)
	s.AddTXT("_acme-challenge.Foo.bench.test", "v1", long)
	query := func(net, name string, qtype uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qtype)
		r, _, err := (&dns.Client{Net: net}).Exchange(m, s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, network := range []string{"udp", "tcp"} {
		r := query(network, "_acme-challenge.foo.bench.test", dns.TypeTXT)
		if len(r.Answer) != 2 || strings.Join(r.Answer[1].(*dns.TXT).Txt, "") != long || !r.Authoritative {
			t.Fatalf("%s: %v", network, r)
		}
	}
	if r := query("udp", "foo.bench.test", dns.TypeCAA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Fatalf("CAA: %v", r)
	}
	s.RemoveTXT("_acme-challenge.foo.bench.test", "v1")
	s.RemoveTXT("_acme-challenge.foo.bench.test", long)
	if r := query("udp", "_acme-challenge.foo.bench.test", dns.TypeTXT); len(r.Answer) != 0 || s.Len() != 0 {
		t.Fatalf("after removal: %v", r)
	}
}

func TestUniqueNames(t *testing.T) {
	a, b := uniqueNames(3, ""), uniqueNames(1, "bench.test")
	if !strings.HasPrefix(a[0], "bench-") || !strings.HasSuffix(a[0], ".test") || a[1] != "n1."+a[0] || a[2] != "n2."+a[0] {
		t.Fatalf("%v", a)
	}
	if !strings.HasSuffix(b[0], ".bench.test") || strings.Count(b[0], ".") != 2 {
		t.Fatalf("%v", b)
	}
}

func TestSampleProc(t *testing.T) {
	s, err := sampleProc(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if s.comm == "" || s.rss <= 0 || s.hwm < s.rss {
		t.Fatalf("%+v", s)
	}
}
