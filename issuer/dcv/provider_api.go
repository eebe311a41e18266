package dcv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// The dns-provider implementations that call a DNS operator's own API and
// write the brand's record verbatim (name, type, value). Unlike lego's
// providers (see the comment on ProviderRFC2136), each has its own small
// API client here.
const (
	ProviderCloudflare   = "cloudflare"
	ProviderTencentCloud = "tencentcloud"
	ProviderAliDNS       = "alidns"
)

// apiProviders are the providers New and ParseConfig accept besides
// rfc2136 and exec.
var apiProviders = []string{ProviderCloudflare, ProviderTencentCloud, ProviderAliDNS}

// isProvider reports whether name is a dns-provider implementation.
func isProvider(name string) bool {
	switch name {
	case ProviderRFC2136, ProviderExec, ProviderCloudflare, ProviderTencentCloud, ProviderAliDNS:
		return true
	}
	return false
}

// providerNames lists the dns-provider implementations for errors.
func providerNames() string {
	return strings.Join(append([]string{ProviderRFC2136, ProviderExec}, apiProviders...), ", ")
}

// DefaultAPITimeout bounds one DNS API call when the caller's context has
// no earlier deadline.
const DefaultAPITimeout = 30 * time.Second

// maxAPIResponse bounds a DNS API response body; record lists are small.
const maxAPIResponse = 4 << 20

// apiClient is the HTTP client the DNS API providers share.
var apiClient = &http.Client{Timeout: DefaultAPITimeout}

// doAPI sends req and returns the status and the body, read up to
// maxAPIResponse. what names the call for errors (never a secret).
func doAPI(req *http.Request, what string) (int, []byte, error) {
	resp, err := apiClient.Do(req)
	if err != nil {
		// url.Error carries the URL, which holds no secret for these APIs
		// (credentials go in headers only).
		return 0, nil, fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponse))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s: reading the response: %w", what, err)
	}
	return resp.StatusCode, body, nil
}

// withAPITimeout gives ctx a deadline when it has none.
func withAPITimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultAPITimeout)
}

// endpointURL turns an endpoint setting ("host", "host:port" or a URL)
// into a base URL; a bare host means HTTPS.
func endpointURL(endpoint, def string) (*url.URL, error) {
	if endpoint == "" {
		endpoint = def
	}
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("endpoint %q is not a host name or an http(s) URL", endpoint)
	}
	return u, nil
}

// relativeName returns the label(s) of name below zone ("@" for the apex),
// or an error if name is not inside zone. Both are canonical.
func relativeName(name, zone string) (string, error) {
	switch {
	case name == zone:
		return "@", nil
	case strings.HasSuffix(name, "."+zone):
		return strings.TrimSuffix(name, "."+zone), nil
	}
	return "", fmt.Errorf("record name %s is not inside the zone %s", name, zone)
}

// pickZone returns the longest of zones that name falls in.
func pickZone(name string, zones []string) (string, error) {
	best := ""
	for _, z := range zones {
		z = canonical(z)
		if (name == z || strings.HasSuffix(name, "."+z)) && len(z) > len(best) {
			best = z
		}
	}
	if best == "" {
		return "", fmt.Errorf("record name %s is in none of the configured zones (%s)", name, strings.Join(zones, ", "))
	}
	return best, nil
}

// sameValue reports whether a value the DNS API returned is the record's
// value: TXT values may come back quoted, CNAME targets with a trailing dot
// or in another case.
func sameValue(typ, want, got string) bool {
	if typ == TypeCNAME {
		return canonical(got) == want
	}
	if got == want {
		return true
	}
	if len(got) >= 2 && got[0] == '"' && got[len(got)-1] == '"' && got[1:len(got)-1] == want {
		return true
	}
	return false
}

// wireValue is the record value as a DNS API takes it: a CNAME target
// fully qualified with the trailing dot, a TXT value as is.
func wireValue(r Record) string {
	if r.Type == TypeCNAME {
		return r.Value + "."
	}
	return r.Value
}

// secretFromEnv reads a credential from the environment variable named by
// key's setting, recording a failure on p when it is missing.
func (p *parser) secretFromEnv(key string, required bool) string {
	env := strings.TrimSpace(p.kv[key])
	if env == "" {
		if required {
			p.fail(key, "the name of the environment variable holding the credential is required")
		}
		return ""
	}
	v := strings.TrimSpace(os.Getenv(env))
	if v == "" {
		p.fail(key, fmt.Sprintf("environment variable %s is empty or unset", env))
	}
	return v
}

// redact replaces every secret in s by "[redacted]": an API may echo a
// credential in an error message, which then must not reach logs.
func redact(s string, secrets ...string) string {
	for _, x := range secrets {
		if len(x) >= 4 {
			s = strings.ReplaceAll(s, x, "[redacted]")
		}
	}
	return s
}

// clipMessage shortens an API's error message for an error.
func clipMessage(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
