package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/acmeup"
	"github.com/acmegw/acmegw/issuer/aliyun"
	"github.com/acmegw/acmegw/issuer/dcv"
	"github.com/acmegw/acmegw/issuer/digicert"
	"github.com/acmegw/acmegw/issuer/local"
	"github.com/acmegw/acmegw/issuer/tencent"
	redisstore "github.com/acmegw/acmegw/storage/redis"
)

// ACMEBrandConfig holds the keys of a brand of type "acme": an upstream ACME
// CA (Let's Encrypt, ZeroSSL, Google, DigiCert/Sectigo ACME, Pebble).
type ACMEBrandConfig struct {
	Directory string `yaml:"directory"`
	Email     string `yaml:"email"`
	// EABKID and the MAC key (from the variable EABHMACEnv names, or
	// EABHMAC inline) bind the upstream account, for CAs that require it.
	EABKID     string `yaml:"eab_kid"`
	EABHMACEnv string `yaml:"eab_hmac_env"`
	EABHMAC    string `yaml:"eab_hmac"`
	// UpstreamProfile is the upstream's own profile name (e.g. "shortlived").
	UpstreamProfile string `yaml:"upstream_profile"`
	// DNSProvider is a lego DNS provider name ("cloudflare", "alidns",
	// "tencentcloud", "httpreq", ...); its credentials come from that
	// provider's usual environment variables.
	DNSProvider  string   `yaml:"dns_provider"`
	PreValidated bool     `yaml:"prevalidated"`
	DNSResolvers []string `yaml:"dns_resolvers"`
	// SkipAuthoritativeCheck checks TXT propagation only at DNSResolvers.
	SkipAuthoritativeCheck bool     `yaml:"skip_authoritative_check"`
	CACertificates         string   `yaml:"ca_certificates"`
	CAAIdentities          []string `yaml:"caa_identities"`
	MaxValidity            Duration `yaml:"max_validity"`
}

// buildBrand makes the Issuer a brands entry describes.
func buildBrand(name string, b BrandConfig, ca *local.CA, dataDir string) (issuer.Issuer, error) {
	switch b.Type {
	case "local":
		return ca, nil
	case "acme":
		a := b.ACMEBrandConfig
		cfg := acmeup.Config{
			Directory:              a.Directory,
			Email:                  a.Email,
			Profile:                a.UpstreamProfile,
			DNSProvider:            a.DNSProvider,
			PreValidated:           a.PreValidated,
			DNSResolvers:           a.DNSResolvers,
			SkipAuthoritativeCheck: a.SkipAuthoritativeCheck,
			CACertificates:         a.CACertificates,
			KeyDir:                 filepath.Join(dataDir, "acmeup", name),
			CAAIdentities:          a.CAAIdentities,
			MaxValidity:            time.Duration(a.MaxValidity),
		}
		if a.EABKID != "" {
			hmac := a.EABHMAC
			if a.EABHMACEnv != "" {
				hmac = os.Getenv(a.EABHMACEnv)
			}
			cfg.EAB = &acmeup.EAB{KID: a.EABKID, HMAC: hmac}
		}
		brand, err := acmeup.New(name, cfg)
		if err != nil {
			return nil, fmt.Errorf("brand %q: %w", name, err)
		}
		return brand, nil
	}
	return nil, fmt.Errorf("brand %q: unknown type %q (known: local, acme, manual, tencent, aliyun, digicert)", name, b.Type)
}

// The brand types backed by a commercial CA's API.
const (
	brandTencent  = "tencent"
	brandAliyun   = "aliyun"
	brandDigiCert = "digicert"
)

func isCommercial(typ string) bool {
	return typ == brandTencent || typ == brandAliyun || typ == brandDigiCert
}

// CommercialBrandConfig holds the keys of the brand types tencent, aliyun
// and digicert (README.md, "Commercial brands"). Secrets never appear in the
// file: the *_env keys name the environment variables that hold them.
type CommercialBrandConfig struct {
	// Tencent Cloud SSL.
	SecretIDEnv        string   `yaml:"secret_id_env"`
	SecretKeyEnv       string   `yaml:"secret_key_env"`
	Region             string   `yaml:"region"`
	Period             int64    `yaml:"period"`
	AutoVoucher        bool     `yaml:"auto_voucher"`
	CompanyID          string   `yaml:"company_id"`
	ManagerID          string   `yaml:"manager_id"`
	CAType             string   `yaml:"ca_type"`
	SkipComplete       bool     `yaml:"skip_complete"`
	NoOrderTag         bool     `yaml:"no_order_tag"`
	WaitPollInterval   Duration `yaml:"wait_poll_interval"`
	RecheckInterval    Duration `yaml:"recheck_interval"`
	RevokeWait         Duration `yaml:"revoke_wait"`
	ContactEmail       string   `yaml:"contact_email"`
	Endpoint           string   `yaml:"endpoint"` // tencent and aliyun
	Product            string   `yaml:"product"`  // all three
	PollInterval       Duration `yaml:"poll_interval"`
	ReviewPollInterval Duration `yaml:"review_poll_interval"`
	Wildcard           *bool    `yaml:"wildcard"`
	MaxNames           int      `yaml:"max_names"`

	// Alibaba Cloud CAS.
	AccessKeyIDEnv     string   `yaml:"access_key_id_env"`
	AccessKeySecretEnv string   `yaml:"access_key_secret_env"`
	ContactName        string   `yaml:"contact_name"`
	ContactPhone       string   `yaml:"contact_phone"`
	CompanyName        string   `yaml:"company_name"`
	ValidateType       string   `yaml:"validate_type"`
	ThrottleRetry      Duration `yaml:"throttle_retry"`

	// DigiCert CertCentral.
	APIKeyEnv          string `yaml:"api_key_env"`
	BaseURL            string `yaml:"base_url"`
	OrganizationID     int    `yaml:"organization_id"`
	ValidityDays       int    `yaml:"validity_days"`
	OrderValidityYears int    `yaml:"order_validity_years"`
	DCVMethod          string `yaml:"dcv_method"`
	SignatureHash      string `yaml:"signature_hash"`
	SkipApproval       bool   `yaml:"skip_approval"`
	PaymentMethod      string `yaml:"payment_method"`

	// DCV is how the gateway satisfies the brand's own domain validation.
	DCV *DCVConfig `yaml:"dcv"`
}

// commercialKeys are the keys each commercial type reads; any other key set
// on such a brand is an error, so that a key meant for another type (or a
// misplaced one) does not silently do nothing.
var commercialKeys = map[string][]string{
	brandTencent: {"secret_id_env", "secret_key_env", "endpoint", "region", "product", "period", "auto_voucher",
		"company_id", "manager_id", "contact_email", "ca_type", "skip_complete", "no_order_tag", "wildcard", "max_names",
		"caa_identities", "max_validity", "poll_interval", "review_poll_interval", "wait_poll_interval",
		"recheck_interval", "revoke_wait", "dcv"},
	brandAliyun: {"access_key_id_env", "access_key_secret_env", "endpoint", "product", "contact_name", "contact_phone",
		"contact_email", "company_name", "validate_type", "wildcard", "max_names", "caa_identities", "poll_interval",
		"review_poll_interval", "throttle_retry", "dcv"},
	brandDigiCert: {"api_key_env", "base_url", "product", "organization_id", "validity_days", "order_validity_years",
		"dcv_method", "signature_hash", "skip_approval", "payment_method", "wildcard", "max_names", "caa_identities",
		"poll_interval", "review_poll_interval", "dcv"},
}

// DCVConfig is a commercial brand's dcv section: the method and the
// settings dcv.ParseConfig reads for it. A list value (ns: [a, b]) is
// passed on comma-separated.
//
//	dcv: {method: delegated, zone: dcv.example.net, listen: ":53", ns: [ns1.dcv.example.net]}
type DCVConfig struct {
	Method   string
	Settings map[string]string
}

// UnmarshalYAML reads the dcv mapping.
func (d *DCVConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: dcv must be a mapping such as {method: delegated, zone: ...}", n.Line)
	}
	d.Method, d.Settings = "", map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		var s string
		switch v.Kind {
		case yaml.ScalarNode:
			s = v.Value
		case yaml.SequenceNode:
			parts := make([]string, 0, len(v.Content))
			for _, e := range v.Content {
				if e.Kind != yaml.ScalarNode {
					return fmt.Errorf("line %d: dcv %s: list items must be plain values", e.Line, k)
				}
				parts = append(parts, e.Value)
			}
			s = strings.Join(parts, ",")
		default:
			return fmt.Errorf("line %d: dcv %s: want a value or a list", v.Line, k)
		}
		if k == "method" {
			d.Method = s
			continue
		}
		if _, dup := d.Settings[k]; dup {
			return fmt.Errorf("line %d: dcv %s given twice", n.Content[i].Line, k)
		}
		d.Settings[k] = s
	}
	return nil
}

// setKeys appends the YAML keys of v's fields (inline structs included)
// that hold a value.
func setKeys(v reflect.Value, out *[]string) {
	t := v.Type()
	for i := range t.NumField() {
		name, opts, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if opts == "inline" {
			setKeys(v.Field(i), out)
			continue
		}
		if name != "" && name != "-" && !v.Field(i).IsZero() {
			*out = append(*out, name)
		}
	}
}

// brandDeps is what the commercial brands of one process share: the
// delegated DCV zones, one authoritative DNS server per zone whichever
// brands use it, and with Redis the client through which all instances
// see the records any of them published.
type brandDeps struct {
	log      *slog.Logger
	redisURL string
	zones    map[string]*dcv.DelegatedZone // by zone name, lower case without the trailing dot
	redis    goredis.UniversalClient
}

// zoneKey is the form zones are compared and looked up in.
func zoneKey(zone string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(zone), "."))
}

// newBrandDeps builds (without serving them yet) the delegated zones the
// brands of cfg name. Several brands may name one zone: one of them defines
// it fully and the others give just {method: delegated, zone: ...} (or the
// same settings, e.g. through a YAML alias).
func newBrandDeps(cfg Config, log *slog.Logger) (*brandDeps, error) {
	d := &brandDeps{log: log, redisURL: cfg.Redis, zones: map[string]*dcv.DelegatedZone{}}
	type def struct {
		brand    string
		settings map[string]string
	}
	byZone := map[string][]def{}
	for _, name := range slices.Sorted(maps.Keys(cfg.Brands)) {
		b := cfg.Brands[name]
		if !isCommercial(b.Type) || b.DCV == nil || b.DCV.Method != dcv.MethodDelegated {
			continue
		}
		zone := zoneKey(b.DCV.Settings["zone"])
		if zone == "" {
			return nil, fmt.Errorf("brand %q: dcv method delegated needs a zone (the zone acmegw answers, e.g. dcv.example.net)", name)
		}
		byZone[zone] = append(byZone[zone], def{name, b.DCV.Settings})
	}
	withoutZone := func(m map[string]string) map[string]string {
		c := maps.Clone(m)
		delete(c, "zone")
		return c
	}
	for _, zone := range slices.Sorted(maps.Keys(byZone)) {
		defs := byZone[zone]
		var full *def
		for i := range defs {
			if len(defs[i].settings) == 1 {
				continue // only the zone: it refers to the zone another brand defines
			}
			if full == nil {
				full = &defs[i]
			} else if !maps.Equal(withoutZone(full.settings), withoutZone(defs[i].settings)) {
				_ = d.Close()
				return nil, fmt.Errorf("brands %q and %q define the delegated zone %s differently: one process serves each zone once; "+
					"define it in one brand and give the others just {method: delegated, zone: %s}", full.brand, defs[i].brand, zone, zone)
			}
		}
		if full == nil {
			full = &defs[0]
		}
		pc, err := dcv.ParseConfig(dcv.MethodDelegated, full.settings)
		if err != nil {
			_ = d.Close()
			return nil, fmt.Errorf("brand %q: %w", full.brand, err)
		}
		pc.Delegated.Logger = log.With("dcv_zone", zone)
		if d.redisURL != "" {
			if d.redis == nil {
				if d.redis, err = openDCVRedis(d.redisURL); err != nil {
					_ = d.Close()
					return nil, err
				}
			}
			pc.Delegated.Store = dcv.NewRedisStore(d.redis)
		}
		pub, err := dcv.New(dcv.MethodDelegated, pc)
		if err != nil {
			_ = d.Close()
			return nil, fmt.Errorf("brand %q: %w", full.brand, err)
		}
		d.zones[zone] = pub.(*dcv.DelegatedZone)
	}
	return d, nil
}

// openDCVRedis opens the go-redis client the delegated zones keep their
// records in: a second client on the store's URL, read by the store's own
// parser so that every form it takes (single node, Sentinel, Cluster) and
// its defaults (short timeouts, RESP2) hold here too.
func openDCVRedis(rawURL string) (goredis.UniversalClient, error) {
	opt, err := redisstore.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis for delegated DCV zones: %w", err)
	}
	return opt.NewClient(), nil
}

// Start serves every delegated zone until ctx ends or Close.
func (d *brandDeps) Start(ctx context.Context) error {
	for _, name := range slices.Sorted(maps.Keys(d.zones)) {
		z := d.zones[name]
		if err := z.Start(ctx); err != nil {
			return err
		}
		store := "memory"
		if d.redis != nil {
			store = "redis"
		}
		d.log.Info("delegated DCV zone serving", "zone", z.Zone(), "addr", z.Addr(), "records", store,
			"owner_cname", "_dnsauth.<domain>. CNAME _dnsauth.<domain>."+z.Zone()+".")
	}
	return nil
}

// Close stops the zones and closes the Redis client.
func (d *brandDeps) Close() error {
	var errs []error
	for _, z := range d.zones {
		errs = append(errs, z.Close())
	}
	if d.redis != nil {
		errs = append(errs, d.redis.Close())
		d.redis = nil
	}
	return errors.Join(errs...)
}

// publisher returns the dcv.Publisher of a brand's dcv section.
func (d *brandDeps) publisher(name string, c *DCVConfig) (dcv.Publisher, error) {
	if c == nil || c.Method == "" {
		return nil, fmt.Errorf("brand %q: dcv.method is required: prevalidated, delegated, rfc2136, exec, or dns-provider with provider cloudflare, tencentcloud or alidns "+
			"(how the gateway satisfies the brand's own domain validation)", name)
	}
	if c.Method == dcv.MethodDelegated {
		z, ok := d.zones[zoneKey(c.Settings["zone"])]
		if !ok {
			return nil, fmt.Errorf("brand %q: delegated zone %q was not set up", name, c.Settings["zone"])
		}
		return z, nil
	}
	pc, err := dcv.ParseConfig(c.Method, c.Settings)
	if err != nil {
		return nil, fmt.Errorf("brand %q: %w", name, err)
	}
	p, err := dcv.New(c.Method, pc)
	if err != nil {
		return nil, fmt.Errorf("brand %q: %w", name, err)
	}
	return p, nil
}

// secretFromEnv reads a secret from the environment variable the key
// (e.g. secret_key_env) names.
func secretFromEnv(brand, key, env string) (string, error) {
	if env == "" {
		return "", fmt.Errorf("brand %q: %s is required: the name of the environment variable that holds the credential", brand, key)
	}
	v := os.Getenv(env)
	if v == "" {
		return "", fmt.Errorf("brand %q: environment variable %s (named by %s) is empty or unset", brand, env, key)
	}
	return v, nil
}

// buildCommercialBrand makes a tencent, aliyun or digicert brand.
func buildCommercialBrand(name string, b BrandConfig, deps *brandDeps) (issuer.Issuer, error) {
	var set []string
	setKeys(reflect.ValueOf(b), &set)
	for _, k := range set {
		if k != "type" && !slices.Contains(commercialKeys[b.Type], k) {
			return nil, fmt.Errorf("brand %q: key %q does not apply to type %s (its keys: %s)", name, k, b.Type, strings.Join(commercialKeys[b.Type], ", "))
		}
	}
	c := b.CommercialBrandConfig
	pub, err := deps.publisher(name, c.DCV)
	if err != nil {
		return nil, err
	}
	// tencent and digicert name the brand in their logs themselves.
	switch b.Type {
	case brandTencent:
		id, err := secretFromEnv(name, "secret_id_env", c.SecretIDEnv)
		if err != nil {
			return nil, err
		}
		key, err := secretFromEnv(name, "secret_key_env", c.SecretKeyEnv)
		if err != nil {
			return nil, err
		}
		product, err := strconv.ParseInt(c.Product, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("brand %q: product %q is not a Tencent ProductId number (e.g. 104 for TrustAsia DV)", name, c.Product)
		}
		brand, err := tencent.New(name, tencent.Config{
			SecretID: id, SecretKey: key, Endpoint: c.Endpoint, Region: c.Region,
			ProductID: product, Period: c.Period, AutoVoucher: c.AutoVoucher,
			CompanyID: c.CompanyID, ManagerID: c.ManagerID, ContactEmail: c.ContactEmail, CAType: c.CAType,
			SkipComplete: c.SkipComplete, Wildcard: c.Wildcard != nil && *c.Wildcard, MaxNames: c.MaxNames,
			CAAIdentities: b.CAAIdentities, MaxValidity: time.Duration(b.MaxValidity), Publisher: pub,
			PollInterval: time.Duration(c.PollInterval), ReviewPollInterval: time.Duration(c.ReviewPollInterval),
			WaitPollInterval: time.Duration(c.WaitPollInterval), RecheckInterval: time.Duration(c.RecheckInterval),
			RevokeWait: time.Duration(c.RevokeWait), NoOrderTag: c.NoOrderTag, Logger: deps.log,
		})
		if err != nil {
			return nil, fmt.Errorf("brand %q: %w", name, err)
		}
		return brand, nil
	case brandAliyun:
		id, err := secretFromEnv(name, "access_key_id_env", c.AccessKeyIDEnv)
		if err != nil {
			return nil, err
		}
		secret, err := secretFromEnv(name, "access_key_secret_env", c.AccessKeySecretEnv)
		if err != nil {
			return nil, err
		}
		brand, err := aliyun.New(aliyun.Config{
			AccessKeyID: id, AccessKeySecret: secret, Endpoint: c.Endpoint, ProductCode: c.Product,
			Username: c.ContactName, Phone: c.ContactPhone, Email: c.ContactEmail, CompanyName: c.CompanyName,
			ValidateType: c.ValidateType, Publisher: pub, CAAIdentities: b.CAAIdentities,
			Wildcard: c.Wildcard, MaxNames: c.MaxNames,
			PollInterval: time.Duration(c.PollInterval), ReviewPollInterval: time.Duration(c.ReviewPollInterval),
			ThrottleRetry: time.Duration(c.ThrottleRetry), Logger: deps.log.With("brand", name),
		})
		if err != nil {
			return nil, fmt.Errorf("brand %q: %w", name, err)
		}
		return brand, nil
	case brandDigiCert:
		key, err := secretFromEnv(name, "api_key_env", c.APIKeyEnv)
		if err != nil {
			return nil, err
		}
		brand, err := digicert.New(name, digicert.Config{
			APIKey: key, BaseURL: c.BaseURL, Product: c.Product, OrganizationID: c.OrganizationID,
			ValidityDays: c.ValidityDays, OrderValidityYears: c.OrderValidityYears, DCVMethod: c.DCVMethod,
			SignatureHash: c.SignatureHash, SkipApproval: c.SkipApproval, PaymentMethod: c.PaymentMethod,
			Publisher: pub, CAAIdentities: b.CAAIdentities, Wildcard: c.Wildcard != nil && *c.Wildcard,
			MaxNames: c.MaxNames, DCVPollInterval: time.Duration(c.PollInterval),
			ReviewPollInterval: time.Duration(c.ReviewPollInterval), Logger: deps.log,
		})
		if err != nil {
			return nil, fmt.Errorf("brand %q: %w", name, err)
		}
		return brand, nil
	}
	return nil, fmt.Errorf("brand %q: unknown type %q", name, b.Type)
}
