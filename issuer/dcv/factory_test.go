package dcv_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer/dcv"
)

func TestNew(t *testing.T) {
	hook := script(t, "exit 0\n")
	for _, tc := range []struct {
		method string
		cfg    dcv.Config
		want   string // Method() of the result
	}{
		{"prevalidated", dcv.Config{}, "prevalidated"},
		{"delegated", dcv.Config{Delegated: dcv.DelegatedConfig{Zone: testZone, NS: []string{"ns.x.test"}}}, "delegated"},
		{"rfc2136", dcv.Config{RFC2136: dcv.RFC2136Config{Nameserver: "192.0.2.1"}}, "dns-provider"},
		{"exec", dcv.Config{Exec: dcv.ExecConfig{Command: hook}}, "dns-provider"},
		{"dns-provider", dcv.Config{Provider: "exec", Exec: dcv.ExecConfig{Command: hook}}, "dns-provider"},
	} {
		p, err := dcv.New(tc.method, tc.cfg)
		if err != nil {
			t.Errorf("New(%s): %v", tc.method, err)
			continue
		}
		if p.Method() != tc.want {
			t.Errorf("New(%s).Method() = %s, want %s", tc.method, p.Method(), tc.want)
		}
	}
	if p, err := dcv.New("delegated", dcv.Config{}); err == nil || p != nil {
		t.Errorf("New(delegated) without a zone = %v, %v; want a nil Publisher and an error", p, err)
	}
	for _, m := range []string{"", "lego", "dns-provider"} {
		if _, err := dcv.New(m, dcv.Config{Provider: "delegated"}); err == nil {
			t.Errorf("New(%q) succeeded", m)
		}
	}
	p, _ := dcv.New("delegated", dcv.Config{Delegated: dcv.DelegatedConfig{Zone: testZone, NS: []string{"ns.x.test"}}})
	if _, ok := p.(dcv.Service); !ok {
		t.Error("the delegated Publisher is not a Service the caller can start")
	}
}

func TestParseConfig(t *testing.T) {
	t.Setenv("TEST_TSIG_SECRET", testSecret)
	cfg, err := dcv.ParseConfig("delegated", map[string]string{
		"zone": "dcv.acmegw.example", "ns": "ns1.dcv.acmegw.example, ns2.other.example",
		"glue": "ns1.dcv.acmegw.example=192.0.2.53 ns1.dcv.acmegw.example=2001:db8::53",
		"ttl":  "30", "record_lifetime": "240h", "check_delegation": "true",
		"resolver": "127.0.0.1:5353", "labels": "_dnsauth,_acme-challenge",
	})
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Delegated
	if d.Zone != "dcv.acmegw.example" || d.Listen != ":53" || len(d.NS) != 2 || d.TTL != 30*time.Second ||
		d.RecordLifetime != 240*time.Hour || !d.CheckDelegation || d.Resolver != "127.0.0.1:5353" || len(d.Labels) != 2 ||
		len(d.Glue["ns1.dcv.acmegw.example"]) != 2 || d.Glue["ns1.dcv.acmegw.example"][1] != netip.MustParseAddr("2001:db8::53") {
		t.Errorf("delegated: %+v", d)
	}
	if _, err := dcv.New("delegated", cfg); err != nil {
		t.Errorf("New from the parsed config: %v", err)
	}

	cfg, err = dcv.ParseConfig("dns-provider", map[string]string{
		"provider": "rfc2136", "nameserver": "ns.example:5353", "zone": "example.com",
		"tsig_key": "acmegw", "tsig_secret_env": "TEST_TSIG_SECRET", "tsig_algorithm": "hmac-sha512",
		"timeout": "5s", "tcp": "1",
	})
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.RFC2136
	if cfg.Provider != "rfc2136" || r.Nameserver != "ns.example:5353" || r.TSIGSecret != testSecret ||
		r.TSIGAlgorithm != "hmac-sha512" || r.Timeout != 5*time.Second || !r.TCP {
		t.Errorf("rfc2136: %+v", cfg)
	}
	if p, err := dcv.New("dns-provider", cfg); err != nil || p.Method() != "dns-provider" {
		t.Errorf("New from the parsed config: %v, %v", p, err)
	}

	cfg, err = dcv.ParseConfig("exec", map[string]string{"command": "/usr/local/bin/dns-hook", "timeout": "1m"})
	if err != nil || cfg.Exec.Command != "/usr/local/bin/dns-hook" || cfg.Exec.Timeout != time.Minute {
		t.Errorf("exec: %+v, %v", cfg.Exec, err)
	}

	for _, tc := range []struct {
		method string
		kv     map[string]string
		want   string
	}{
		{"delegated", map[string]string{"zone": "z.example", "nss": "x"}, `unknown setting "nss"`},
		{"delegated", map[string]string{"ttl": "soon"}, "setting ttl"},
		{"delegated", map[string]string{"check_delegation": "maybe"}, "setting check_delegation"},
		{"delegated", map[string]string{"glue": "ns1.z.example"}, "setting glue"},
		{"rfc2136", map[string]string{"tsig_secret": "x", "tsig_secret_env": "TEST_TSIG_SECRET"}, "not both"},
		{"rfc2136", map[string]string{"tsig_secret_env": "TEST_UNSET_VARIABLE"}, "TEST_UNSET_VARIABLE is empty or unset"},
		{"dns-provider", map[string]string{"provider": "route53"}, `provider "route53"`},
		{"dns-provider", map[string]string{"provider": "cloudflare"}, "setting api_token_env"},
		{"cloudflare", map[string]string{"api_token_env": "TEST_UNSET_VARIABLE"}, "TEST_UNSET_VARIABLE is empty or unset"},
		{"exec", map[string]string{"provider": "exec"}, `unknown setting "provider"`},
		{"acme-dns", nil, "unknown method"},
	} {
		_, err := dcv.ParseConfig(tc.method, tc.kv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConfig(%s, %v) = %v, want an error with %q", tc.method, tc.kv, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), testSecret) {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}
