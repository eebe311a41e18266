package validation

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmegw/acmegw/validation/validationtest"
)

const challengePath = "/.well-known/acme-challenge/" + testToken

func http01(idType, id string) Challenge {
	return Challenge{Type: "http-01", IdentifierType: idType, Identifier: id, Token: testToken, KeyAuthorization: testKeyAuth}
}

// challengeServer is a real HTTP server on 127.0.0.1 whose handler the test
// supplies; hits counts the requests that reached it.
type challengeServer struct {
	*httptest.Server
	port int
	hits atomic.Int64
}

func newChallengeServer(t *testing.T, tlsServer bool, h http.HandlerFunc) *challengeServer {
	t.Helper()
	cs := &challengeServer{}
	wrapped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.hits.Add(1)
		h(w, r)
	})
	if tlsServer {
		cs.Server = httptest.NewTLSServer(wrapped)
	} else {
		cs.Server = httptest.NewServer(wrapped)
	}
	t.Cleanup(cs.Close)
	cs.port = cs.Listener.Addr().(*net.TCPAddr).Port
	return cs
}

func serveKeyAuth(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != challengePath {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, body)
	}
}

func TestHTTP01(t *testing.T) {
	dnsSrv := validationtest.NewDNSServer(t)
	var gotHost, gotUA atomic.Value
	srv := newChallengeServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		gotHost.Store(r.Host)
		gotUA.Store(r.UserAgent())
		serveKeyAuth(testKeyAuth+"\r\n\t ")(w, r)
	})
	dnsSrv.AddA("www.example.test", "127.0.0.1")
	// IPv6 is tried first; nothing listens on [::1] at that port, so the
	// validator must fall back to the IPv4 address.
	dnsSrv.AddA("dual.example.test", "127.0.0.1")
	dnsSrv.AddAAAA("dual.example.test", "::1")
	dnsSrv.AddCNAME("alias.example.test", "www.example.test")
	v := newTestValidator(t, dnsSrv, func(c *Config) { c.HTTPPort = srv.port })

	for _, ch := range []Challenge{
		http01("dns", "www.example.test"),
		http01("dns", "WWW.Example.Test"),
		http01("dns", "dual.example.test"),
		http01("dns", "alias.example.test"),
		http01("ip", "127.0.0.1"),
	} {
		t.Run(ch.Identifier, func(t *testing.T) {
			if err := v.Validate(t.Context(), ch); err != nil {
				t.Fatalf("got %v", err)
			}
		})
	}
	if h := gotHost.Load(); h != "127.0.0.1:"+strconv.Itoa(srv.port) {
		t.Errorf("last Host header = %q", h)
	}
	if ua, _ := gotUA.Load().(string); !strings.Contains(ua, "acmegw") {
		t.Errorf("User-Agent = %q", ua)
	}
}

func TestHTTP01IPv6(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(serveKeyAuth(testKeyAuth))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	dnsSrv := validationtest.NewDNSServer(t)
	dnsSrv.AddAAAA("v6.example.test", "::1")
	v := newTestValidator(t, dnsSrv, func(c *Config) { c.HTTPPort = l.Addr().(*net.TCPAddr).Port })
	for _, ch := range []Challenge{http01("ip", "::1"), http01("dns", "v6.example.test")} {
		if err := v.Validate(t.Context(), ch); err != nil {
			t.Errorf("%s: %v", ch.Identifier, err)
		}
	}
}

func TestHTTP01Failures(t *testing.T) {
	dnsSrv := validationtest.NewDNSServer(t)
	dnsSrv.AddA("www.example.test", "127.0.0.1")
	wrongBody := strings.Repeat("<html>not found, sorry</html>", 10)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		typ     string
		detail  []string
	}{
		{"wrong body", serveKeyAuth(wrongBody), "unauthorized", []string{
			"did not match this challenge", fmt.Sprintf("Expected %q", testKeyAuth),
			fmt.Sprintf("(got %q)", wrongBody[:64]),
		}},
		{"key authorization with a prefix", serveKeyAuth("x" + testKeyAuth), "unauthorized", []string{"did not match"}},
		{"empty body", serveKeyAuth(""), "unauthorized", []string{`(got "")`}},
		{"404", http.NotFound, "unauthorized", []string{
			"Invalid response from http://www.example.test:", challengePath + ": 404",
		}},
		{"500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, "unauthorized", []string{": 500"}},
		{"204", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }, "unauthorized", []string{": 204"}},
		{"huge body", func(w http.ResponseWriter, r *http.Request) {
			// The key authorization after the read limit must not count.
			fmt.Fprint(w, strings.Repeat(" ", maxHTTPBody)+testKeyAuth)
		}, "unauthorized", []string{`(got "")`}},
		{"redirect without Location", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(302) }, "connection", []string{"Location"}},
		{"hung up", func(w http.ResponseWriter, r *http.Request) {
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
		}, "connection", []string{"127.0.0.1: Fetching http://www.example.test:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newChallengeServer(t, false, tt.handler)
			v := newTestValidator(t, dnsSrv, func(c *Config) { c.HTTPPort = srv.port })
			wantError(t, v.Validate(t.Context(), http01("dns", "www.example.test")), tt.typ, tt.detail...)
		})
	}
}

func TestHTTP01ConnectionAndDNSErrors(t *testing.T) {
	dnsSrv := validationtest.NewDNSServer(t)
	dnsSrv.AddA("www.example.test", "127.0.0.1")
	dnsSrv.AddTXT("noaddr.example.test", "x")
	closed := freePort(t)
	v := newTestValidator(t, dnsSrv, func(c *Config) { c.HTTPPort = closed })

	wantError(t, v.Validate(t.Context(), http01("dns", "www.example.test")), "connection",
		"127.0.0.1: Fetching http://www.example.test:"+strconv.Itoa(closed)+challengePath+": Connection refused")
	wantError(t, v.Validate(t.Context(), http01("dns", "missing.example.test")), "dns",
		"DNS problem: NXDOMAIN looking up A for missing.example.test")
	wantError(t, v.Validate(t.Context(), http01("dns", "noaddr.example.test")), "dns",
		"DNS problem: No A or AAAA records found for noaddr.example.test")
	wantError(t, v.Validate(t.Context(), http01("dns", "*.example.test")), "malformed", "wildcard")
	wantError(t, v.Validate(t.Context(), http01("ip", "not-an-ip")), "malformed")
	ch := http01("dns", "www.example.test")
	ch.Token = "../../etc/passwd"
	wantError(t, v.Validate(t.Context(), ch), "malformed", "token")
}

func TestHTTP01Timeout(t *testing.T) {
	dnsSrv := validationtest.NewDNSServer(t)
	dnsSrv.AddA("slow.example.test", "127.0.0.1")
	release := make(chan struct{})
	srv := newChallengeServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	v := newTestValidator(t, dnsSrv, func(c *Config) {
		c.HTTPPort = srv.port
		c.Timeout = 300 * time.Millisecond
	})
	wantError(t, v.Validate(t.Context(), http01("dns", "slow.example.test")), "connection", "Timeout after connect")
}

// freePort returns a loopback port with nothing listening on it.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestHTTP01Redirects(t *testing.T) {
	dnsSrv := validationtest.NewDNSServer(t)
	dnsSrv.AddA("www.example.test", "127.0.0.1")
	dnsSrv.AddA("other.example.test", "127.0.0.1")
	dnsSrv.AddA("private.example.test", "10.0.0.1")

	var httpsHits atomic.Int64
	tlsSrv := newChallengeServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		httpsHits.Add(1)
		serveKeyAuth(testKeyAuth)(w, r)
	})

	// The handler is chosen per test through this indirection, because the
	// redirect targets need the server's own port.
	var handler atomic.Value
	srv := newChallengeServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		handler.Load().(http.HandlerFunc)(w, r)
	})
	port := strconv.Itoa(srv.port)
	hops := func(n int, final string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			i, _ := strconv.Atoi(r.URL.Query().Get("hop"))
			if i < n {
				http.Redirect(w, r, fmt.Sprintf("%s?hop=%d", challengePath, i+1), http.StatusFound)
				return
			}
			if final != "" {
				http.Redirect(w, r, final, http.StatusMovedPermanently)
				return
			}
			serveKeyAuth(testKeyAuth)(w, r)
		}
	}
	redirectTo := func(code int, target string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/final" {
				fmt.Fprint(w, testKeyAuth)
				return
			}
			http.Redirect(w, r, target, code)
		}
	}

	tests := []struct {
		name    string
		handler http.HandlerFunc
		policy  func(ip string) bool // nil: AllowPrivate
		typ     string               // "" for success
		detail  []string
	}{
		{name: "relative", handler: redirectTo(302, "/final")},
		{name: "301 to another name", handler: redirectTo(301, "http://other.example.test:"+port+"/final")},
		{name: "303", handler: redirectTo(303, "/final")},
		{name: "307", handler: redirectTo(307, "/final")},
		{name: "308 to IP literal", handler: redirectTo(308, "http://127.0.0.1:"+port+"/final")},
		{name: "to https on the https port", handler: redirectTo(302, fmt.Sprintf("https://www.example.test:%d%s", tlsSrv.port, challengePath))},
		{name: "exactly 10 redirects", handler: hops(MaxHTTPRedirects, "")},
		{name: "11 redirects", handler: hops(MaxHTTPRedirects+1, ""), typ: "connection", detail: []string{"Too many redirects"}},
		{name: "redirect loop", handler: redirectTo(302, challengePath), typ: "connection", detail: []string{"Too many redirects (more than 10)"}},
		{name: "http to a forbidden port", handler: redirectTo(302, "http://www.example.test:8443/final"), typ: "connection",
			detail: []string{"Invalid port in redirect target", "not 8443"}},
		{name: "http to the https port", handler: redirectTo(302, fmt.Sprintf("http://www.example.test:%d/final", tlsSrv.port)), typ: "connection",
			detail: []string{"Invalid port in redirect target"}},
		{name: "https without port", handler: redirectTo(302, "https://www.example.test/final"), typ: "connection",
			detail: []string{"Invalid port in redirect target", "not 443"}},
		{name: "ftp", handler: redirectTo(302, "ftp://www.example.test:"+port+"/final"), typ: "connection",
			detail: []string{"Invalid protocol scheme"}},
		{name: "userinfo", handler: redirectTo(302, "http://user:secret@www.example.test:"+port+"/final"), typ: "connection",
			detail: []string{"credentials"}},
		{name: "not 3xx redirect", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "/final")
			w.WriteHeader(300)
		}, typ: "unauthorized", detail: []string{": 300"}},
		{name: "to a private name, AllowPrivate=false", handler: redirectTo(302, "http://private.example.test:"+port+"/final"),
			policy: func(ip string) bool { return ip == "127.0.0.1" }, typ: "connection",
			detail: []string{"private.example.test resolves to 10.0.0.1, which is a private address", "--validation-allow-private"}},
		{name: "to another loopback address, AllowPrivate=false", handler: redirectTo(302, "http://127.0.0.2:"+port+"/final"),
			policy: func(ip string) bool { return ip == "127.0.0.1" }, typ: "connection",
			detail: []string{"127.0.0.2 is a loopback address; validation of private addresses is disabled (--validation-allow-private)"}},
		{name: "to link-local metadata service, AllowPrivate=false", handler: redirectTo(302, "http://169.254.169.254:"+port+"/latest/meta-data/"),
			policy: func(ip string) bool { return ip == "127.0.0.1" }, typ: "connection",
			detail: []string{"169.254.169.254 is a link-local address"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handler.Store(tt.handler)
			v := newTestValidator(t, dnsSrv, func(c *Config) {
				c.HTTPPort = srv.port
				c.TLSALPNPort = tlsSrv.port
			})
			if tt.policy != nil {
				v.checkAddr = allowOnly("127.0.0.1")
			}
			before := httpsHits.Load()
			err := v.Validate(t.Context(), http01("dns", "www.example.test"))
			if tt.typ == "" {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				if strings.HasPrefix(tt.name, "to https") && httpsHits.Load() != before+1 {
					t.Error("the https server was not asked")
				}
				return
			}
			wantError(t, err, tt.typ, tt.detail...)
		})
	}
}

// TestHTTP01RefusesLoopbackByDefault shows that without AllowPrivate the
// validator never connects to loopback, whether the address is the
// identifier or what a name resolves to.
func TestHTTP01RefusesLoopbackByDefault(t *testing.T) {
	dnsSrv := validationtest.NewDNSServer(t)
	dnsSrv.AddA("v4.example.test", "127.0.0.1")
	dnsSrv.AddAAAA("v6.example.test", "::1")
	dnsSrv.AddA("mixed.example.test", "127.0.0.1", "10.1.1.1")
	dnsSrv.AddAAAA("mixed.example.test", "::1", "fd00::1")
	srv := newChallengeServer(t, false, serveKeyAuth(testKeyAuth))
	v := newTestValidator(t, dnsSrv, func(c *Config) {
		c.AllowPrivate = false
		c.HTTPPort = srv.port
	})

	wantError(t, v.Validate(t.Context(), http01("ip", "127.0.0.1")), "rejectedIdentifier",
		"127.0.0.1 is a loopback address; validation of private addresses is disabled (--validation-allow-private)")
	wantError(t, v.Validate(t.Context(), http01("ip", "::1")), "rejectedIdentifier", "::1 is a loopback address")
	wantError(t, v.Validate(t.Context(), http01("ip", "::ffff:127.0.0.1")), "rejectedIdentifier", "127.0.0.1 is a loopback address")
	wantError(t, v.Validate(t.Context(), http01("dns", "v4.example.test")), "connection",
		"v4.example.test resolves to 127.0.0.1, which is a loopback address; validation of private addresses is disabled (--validation-allow-private)")
	wantError(t, v.Validate(t.Context(), http01("dns", "v6.example.test")), "connection",
		"v6.example.test resolves to ::1, which is a loopback address")
	wantError(t, v.Validate(t.Context(), http01("dns", "mixed.example.test")), "connection", "--validation-allow-private")
	if n := srv.hits.Load(); n != 0 {
		t.Errorf("the loopback server got %d requests", n)
	}
}

func TestCheckRedirectURL(t *testing.T) {
	v := New(Config{Resolver: "127.0.0.1:1"})
	for raw, ok := range map[string]bool{
		"http://example.com/x":                        true,
		"http://example.com:80/x":                     true,
		"https://example.com/x":                       true,
		"https://example.com:443/x":                   true,
		"http://192.0.2.1/x":                          true,
		"http://[2001:db8::1]/x":                      true,
		"http://example.com:8080/x":                   false,
		"https://example.com:80/x":                    false,
		"http://example.com:443/x":                    false,
		"gopher://example.com/x":                      false,
		"http://[fe80::1%25eth0]/x":                   false,
		"http:///x":                                   false,
		"http://exa mple.com/x":                       false,
		"http://example.com:99999/x":                  false,
		"http://example.com:-1/x":                     false,
		"http://u@example.com/x":                      false,
		"http://" + strings.Repeat("a", 64) + ".com/": false,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			if ok {
				t.Errorf("%s: %v", raw, err)
			}
			continue
		}
		if got := v.checkRedirect(u) == ""; got != ok {
			t.Errorf("checkRedirect(%s) allowed=%v, want %v (%s)", raw, got, ok, v.checkRedirect(u))
		}
	}
}
