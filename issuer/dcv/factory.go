package dcv

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The values Publisher.Method returns, and the methods New accepts.
const (
	MethodPrevalidated = "prevalidated"
	MethodDNSProvider  = "dns-provider"
	MethodDelegated    = "delegated"
)

// The dns-provider implementations. New also accepts them as methods of
// their own, short for "dns-provider" with that Provider.
//
// Why the dns-provider method does not use lego's DNS providers:
// DESIGN.md names lego's DNS providers (alidns, tencentcloud, dnspod,
// cloudflare, ...) as a way to hold a DNS credential. They cannot serve
// brand DCV: their only interface is challenge.Provider,
//
//	Present(domain, token, keyAuth string) error
//	CleanUp(domain, token, keyAuth string) error
//
// and every provider derives both the record name and the value itself, via
// dns01.GetChallengeInfo(domain, keyAuth): the name is always
// "_acme-challenge.<domain>." (after following CNAMEs) and the value always
// base64url(SHA-256(keyAuth)). A brand wants its own token, verbatim, at its
// own name (_dnsauth.<domain>, or a random label for DigiCert's
// dns-cname-token), sometimes as a CNAME; no argument of Present can
// express that. (Only lego's exec and httpreq providers in RAW mode hand the
// raw keyAuth to an external program, which is what the exec Publisher
// here does directly, with the name and type too.) Writing arbitrary records
// would need each provider's private API client, one adapter per DNS
// operator.
//
// So the dns-provider method comes in two generic forms that reach every
// DNS operator: RFC 2136 dynamic updates signed with TSIG (BIND, Knot,
// PowerDNS, Windows DNS, and gateways in front of cloud DNS), and Exec, an
// operator's script that calls whatever API their DNS operator has; plus
// own API clients for the most common operators (Cloudflare, Tencent Cloud
// DNSPod, Alibaba Cloud DNS; provider_*.go), which write the brand's record
// verbatim.
const (
	ProviderRFC2136 = "rfc2136"
	ProviderExec    = "exec"
)

// Service is implemented by Publishers that run a server (DelegatedZone):
// the caller starts it once at start-up and closes it at shutdown.
type Service interface {
	Start(ctx context.Context) error
	Close() error
}

// Config is what New needs; only the part for the chosen method is read.
type Config struct {
	// Provider picks the dns-provider implementation: "rfc2136", "exec",
	// "cloudflare", "tencentcloud" or "alidns".
	Provider     string
	Delegated    DelegatedConfig
	RFC2136      RFC2136Config
	Exec         ExecConfig
	Cloudflare   CloudflareConfig
	TencentCloud TencentCloudConfig
	AliDNS       AliDNSConfig
}

// New returns the Publisher for method: "prevalidated", "delegated",
// "dns-provider" (with cfg.Provider), or "rfc2136" / "exec" directly.
//
// For "delegated" the result is a *DelegatedZone, not yet serving: the
// caller starts it (it is a Service) and should build one per zone and
// share it between the brands that use that zone, since each binds its
// listen address.
func New(method string, cfg Config) (Publisher, error) {
	switch method {
	case MethodPrevalidated:
		return Prevalidated{}, nil
	case MethodDelegated:
		// Each constructor's result is checked before it becomes a
		// Publisher: a nil *DelegatedZone in an interface is not nil.
		z, err := NewDelegatedZone(cfg.Delegated)
		if err != nil {
			return nil, err
		}
		return z, nil
	case MethodDNSProvider:
		if !isProvider(cfg.Provider) {
			return nil, fmt.Errorf("dcv: method %s: provider %q is not one of %s", method, cfg.Provider, providerNames())
		}
		return New(cfg.Provider, cfg)
	case ProviderRFC2136:
		p, err := NewRFC2136(cfg.RFC2136)
		if err != nil {
			return nil, err
		}
		return p, nil
	case ProviderExec:
		p, err := NewExec(cfg.Exec)
		if err != nil {
			return nil, err
		}
		return p, nil
	case ProviderCloudflare:
		p, err := NewCloudflare(cfg.Cloudflare)
		if err != nil {
			return nil, err
		}
		return p, nil
	case ProviderTencentCloud:
		p, err := NewTencentCloud(cfg.TencentCloud)
		if err != nil {
			return nil, err
		}
		return p, nil
	case ProviderAliDNS:
		p, err := NewAliDNS(cfg.AliDNS)
		if err != nil {
			return nil, err
		}
		return p, nil
	case "":
		return nil, fmt.Errorf("dcv: no method given (%s)", strings.Join(methods, ", "))
	default:
		return nil, fmt.Errorf("dcv: unknown method %q (%s)", method, strings.Join(methods, ", "))
	}
}

var methods = []string{MethodPrevalidated, MethodDelegated, MethodDNSProvider, ProviderRFC2136, ProviderExec,
	ProviderCloudflare, ProviderTencentCloud, ProviderAliDNS}

// configKeys lists the keys ParseConfig accepts per method.
var configKeys = map[string][]string{
	MethodPrevalidated: {},
	MethodDelegated:    {"zone", "listen", "ns", "glue", "ttl", "record_lifetime", "check_delegation", "resolver", "labels"},
	ProviderRFC2136:    {"nameserver", "zone", "tsig_key", "tsig_secret", "tsig_secret_env", "tsig_algorithm", "ttl", "timeout", "tcp"},
	ProviderExec:       {"command", "timeout"},
	// The secrets are read from the environment variables these name.
	ProviderCloudflare:   {"api_token_env", "zone", "zone_id", "base_url", "ttl"},
	ProviderTencentCloud: {"secret_id_env", "secret_key_env", "domain", "endpoint", "ttl"},
	ProviderAliDNS:       {"access_key_id_env", "access_key_secret_env", "domain", "endpoint", "ttl"},
}

// ParseConfig reads the string settings of a configuration file section
// into a Config for New. The keys, per method:
//
//	delegated:  zone, listen (default ":53"), ns (list), glue
//	            ("host=addr" list), ttl, record_lifetime,
//	            check_delegation (bool), resolver (HOST:PORT), labels (list)
//	rfc2136:    nameserver, zone, tsig_key, tsig_secret or tsig_secret_env
//	            (the name of the variable holding it), tsig_algorithm,
//	            ttl, timeout, tcp (bool)
//	exec:       command, timeout
//	cloudflare: api_token_env, zone or zone_id (default: found from the
//	            record name), base_url, ttl (60s)
//	tencentcloud: secret_id_env, secret_key_env, domain (the DNSPod
//	            zone; a list for several), endpoint, ttl (600s)
//	alidns:     access_key_id_env, access_key_secret_env, domain (the
//	            zone; a list for several), endpoint, ttl (600s)
//	dns-provider: provider (one of the above) plus that provider's keys
//
// Lists are separated by commas or spaces; durations are Go durations
// ("90s") or whole seconds. An unknown key is an error, so a typo does not
// silently fall back to a default. A DelegatedConfig.Store (e.g. a
// RedisStore for several instances) cannot be written as a string: set it
// on the result.
func ParseConfig(method string, kv map[string]string) (Config, error) {
	var cfg Config
	m := method
	if method == MethodDNSProvider {
		cfg.Provider = kv["provider"]
		m = cfg.Provider
		if !isProvider(m) {
			return cfg, fmt.Errorf("dcv: method %s: provider %q is not one of %s", method, m, providerNames())
		}
	}
	allowed, ok := configKeys[m]
	if !ok {
		return cfg, fmt.Errorf("dcv: unknown method %q (%s)", method, strings.Join(methods, ", "))
	}
	p := parser{kv: kv, method: method}
	for k := range kv {
		if !slices.Contains(allowed, k) && (k != "provider" || method != MethodDNSProvider) {
			return cfg, fmt.Errorf("dcv: method %s: unknown setting %q (known: %s)", method, k, strings.Join(allowed, ", "))
		}
	}
	switch m {
	case MethodDelegated:
		d := &cfg.Delegated
		d.Zone = kv["zone"]
		d.Listen = kv["listen"]
		if d.Listen == "" {
			d.Listen = ":53"
		}
		d.NS = list(kv["ns"])
		d.Labels = list(kv["labels"])
		d.Resolver = kv["resolver"]
		d.TTL = p.duration("ttl")
		d.RecordLifetime = p.duration("record_lifetime")
		d.CheckDelegation = p.bool("check_delegation")
		for _, g := range list(kv["glue"]) {
			host, addr, ok := strings.Cut(g, "=")
			a, err := netip.ParseAddr(addr)
			if !ok || err != nil {
				p.fail("glue", fmt.Sprintf("%q is not host=address", g))
				continue
			}
			if d.Glue == nil {
				d.Glue = map[string][]netip.Addr{}
			}
			d.Glue[host] = append(d.Glue[host], a.Unmap())
		}
	case ProviderRFC2136:
		r := &cfg.RFC2136
		r.Nameserver = kv["nameserver"]
		r.Zone = kv["zone"]
		r.TSIGKey = kv["tsig_key"]
		r.TSIGAlgorithm = kv["tsig_algorithm"]
		r.TTL = p.duration("ttl")
		r.Timeout = p.duration("timeout")
		r.TCP = p.bool("tcp")
		r.TSIGSecret = kv["tsig_secret"]
		if env := kv["tsig_secret_env"]; env != "" {
			if r.TSIGSecret != "" {
				p.fail("tsig_secret_env", "set tsig_secret or tsig_secret_env, not both")
			} else if r.TSIGSecret = os.Getenv(env); r.TSIGSecret == "" {
				p.fail("tsig_secret_env", fmt.Sprintf("environment variable %s is empty or unset", env))
			}
		}
	case ProviderExec:
		cfg.Exec.Command = kv["command"]
		cfg.Exec.Timeout = p.duration("timeout")
	case ProviderCloudflare:
		cfg.Cloudflare = CloudflareConfig{
			APIToken: p.secretFromEnv("api_token_env", true),
			Zone:     kv["zone"],
			ZoneID:   kv["zone_id"],
			BaseURL:  kv["base_url"],
			TTL:      p.duration("ttl"),
		}
	case ProviderTencentCloud:
		cfg.TencentCloud = TencentCloudConfig{
			SecretID:  p.secretFromEnv("secret_id_env", true),
			SecretKey: p.secretFromEnv("secret_key_env", true),
			Domains:   list(kv["domain"]),
			Endpoint:  kv["endpoint"],
			TTL:       p.duration("ttl"),
		}
	case ProviderAliDNS:
		cfg.AliDNS = AliDNSConfig{
			AccessKeyID:     p.secretFromEnv("access_key_id_env", true),
			AccessKeySecret: p.secretFromEnv("access_key_secret_env", true),
			Domains:         list(kv["domain"]),
			Endpoint:        kv["endpoint"],
			TTL:             p.duration("ttl"),
		}
	}
	return cfg, p.err
}

// parser collects the first bad value, so ParseConfig reads straight.
type parser struct {
	kv     map[string]string
	method string
	err    error
}

func (p *parser) fail(key, why string) {
	if p.err == nil {
		p.err = fmt.Errorf("dcv: method %s: setting %s: %s", p.method, key, why)
	}
}

func (p *parser) duration(key string) time.Duration {
	v := strings.TrimSpace(p.kv[key])
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		p.fail(key, fmt.Sprintf("%q is not a duration such as 60s", v))
	}
	return d
}

func (p *parser) bool(key string) bool {
	v := strings.TrimSpace(p.kv[key])
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(key, fmt.Sprintf("%q is not true or false", v))
	}
	return b
}

func list(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}
