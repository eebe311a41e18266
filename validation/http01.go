package validation

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync/atomic"

	"github.com/miekg/dns"
)

const (
	// MaxHTTPRedirects is how many redirects http-01 follows, as in Boulder.
	MaxHTTPRedirects = 10
	// maxHTTPBody caps how much of a response is read: a key authorization
	// is under 200 bytes, so anything large is wrong anyway and must not
	// cost us memory.
	maxHTTPBody = 128 << 10
	// maxHTTPHeader keeps a hostile server from feeding us megabytes of
	// headers.
	maxHTTPHeader = 16 << 10
	// shownBodyBytes is how much of a wrong body goes into the problem
	// detail: enough to recognise a web server's error page.
	shownBodyBytes = 64

	userAgent = "acmegw-validation/1 (+https://github.com/acmegw/acmegw)"
)

func (v *Validator) validateHTTP01(ctx context.Context, ch Challenge) error {
	id, err := v.parseIdentifier(ch)
	if err != nil {
		return err
	}
	if !validToken(ch.Token) {
		return &Error{Type: "malformed", Detail: fmt.Sprintf("token %q is not base64url", ch.Token)}
	}
	u := &url.URL{
		Scheme: "http",
		Host:   hostPort(id.String(), v.cfg.HTTPPort, 80),
		Path:   "/.well-known/acme-challenge/" + ch.Token,
	}
	for redirects := 0; ; redirects++ {
		resp, addr, err := v.fetch(ctx, u)
		if err != nil {
			return err
		}
		if isRedirect(resp.StatusCode) {
			loc, lerr := resp.Location()
			resp.Body.Close()
			if lerr != nil {
				return &Error{Type: "connection", Detail: fmt.Sprintf("%s: Fetching %s: invalid redirect Location: %v", addr, u, lerr)}
			}
			if redirects >= MaxHTTPRedirects {
				return &Error{Type: "connection", Detail: fmt.Sprintf("%s: Fetching %s: Too many redirects (more than %d)", addr, loc.Redacted(), MaxHTTPRedirects)}
			}
			if problem := v.checkRedirect(loc); problem != "" {
				return &Error{Type: "connection", Detail: fmt.Sprintf("%s: Fetching %s: %s", addr, u, problem)}
			}
			u = loc
			continue
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return &Error{Type: "unauthorized", Detail: fmt.Sprintf("%s: Invalid response from %s: %d", addr, u, resp.StatusCode)}
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPBody))
		if err != nil {
			return &Error{Type: "connection", Detail: fmt.Sprintf("%s: Fetching %s: reading body: %s", addr, u, describeNetErr(err, true))}
		}
		got := bytes.TrimSpace(body)
		if !bytes.Equal(got, []byte(ch.KeyAuthorization)) {
			return &Error{Type: "unauthorized", Detail: fmt.Sprintf(
				"%s: The key authorization file from the server did not match this challenge. Expected %q (got %q)",
				addr, ch.KeyAuthorization, truncate(string(got), shownBodyBytes))}
		}
		return nil
	}
}

// fetch GETs u without following redirects, from an address that passed the
// address policy. It falls back from IPv6 to IPv4 only when the connection
// could not be made, so a server that answered wrongly is not retried.
func (v *Validator) fetch(ctx context.Context, u *url.URL) (*http.Response, netip.Addr, error) {
	addrs, err := v.addresses(ctx, u.Hostname())
	if err != nil {
		return nil, netip.Addr{}, err
	}
	port := effectivePort(u)
	for i, addr := range addrs {
		resp, connected, err := v.get(ctx, u, netip.AddrPortFrom(addr, uint16(port)))
		if err == nil {
			return resp, addr, nil
		}
		if connected || ctx.Err() != nil || i == len(addrs)-1 {
			return nil, addr, &Error{Type: "connection", Detail: fmt.Sprintf("%s: Fetching %s: %s", addr, u, describeNetErr(err, connected))}
		}
	}
	// addresses never returns an empty list without an error.
	return nil, netip.Addr{}, &Error{Type: "connection", Detail: fmt.Sprintf("no address to connect to for %s", u.Hostname())}
}

// get sends one request to target, a checked address. The transport's dialer
// ignores the address http.Transport asks for and dials target instead, so
// the HTTP stack never resolves a name on its own.
func (v *Validator) get(ctx context.Context, u *url.URL, target netip.AddrPort) (*http.Response, bool, error) {
	var connected atomic.Bool
	dialer := &net.Dialer{}
	tr := &http.Transport{
		Proxy: nil, // a proxy would connect to addresses we never checked
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, "tcp", target.String())
			if err == nil {
				connected.Store(true)
			}
			return c, err
		},
		// As Boulder: the http-01 proof is the key authorization, not the
		// certificate, and a site redirecting to https often still has a
		// self-signed or expired one.
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // see above
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxHTTPHeader,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "*/*")
	resp, err := client.Do(req)
	return resp, connected.Load(), err
}

// checkRedirect applies Boulder's redirect rules: http or https only, and
// only to the ports the validator would use for a fresh challenge, so a
// redirect cannot aim the validator at an arbitrary service. It returns the
// problem in words for the client, or "" when the target is acceptable; the
// target's addresses are checked later, when it is fetched.
func (v *Validator) checkRedirect(loc *url.URL) string {
	var want int
	switch loc.Scheme {
	case "http":
		want = v.cfg.HTTPPort
	case "https":
		want = v.cfg.TLSALPNPort
	default:
		return fmt.Sprintf("Invalid protocol scheme in redirect target %q. Only \"http\" and \"https\" are supported", loc.Redacted())
	}
	if loc.User != nil {
		return fmt.Sprintf("Invalid redirect target %q: credentials in URLs are not supported", loc.Redacted())
	}
	if p := effectivePort(loc); p != want {
		return fmt.Sprintf("Invalid port in redirect target %q. Only port %d for http and %d for https are supported, not %s",
			loc.Redacted(), v.cfg.HTTPPort, v.cfg.TLSALPNPort, strconv.Itoa(p))
	}
	host := loc.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return fmt.Sprintf("Invalid host in redirect target %q: scoped addresses are not supported", loc.Redacted())
		}
		return ""
	}
	if _, ok := dns.IsDomainName(host); !ok || host == "" {
		return fmt.Sprintf("Invalid host in redirect target %q", loc.Redacted())
	}
	return ""
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// effectivePort is the URL's port, or the scheme's default when it has none;
// -1 for a port that is not a number in range.
func effectivePort(u *url.URL) int {
	p := u.Port()
	if p == "" {
		if u.Scheme == "https" {
			return 443
		}
		return 80
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n > 65535 {
		return -1
	}
	return n
}

// hostPort leaves the default port out of URLs so that the Host header is
// exactly the identifier in production.
func hostPort(host string, port, def int) string {
	if port == def {
		if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// validToken keeps the token from reshaping the URL path; RFC 8555 tokens
// are base64url.
func validToken(t string) bool {
	if t == "" || len(t) > 256 {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
