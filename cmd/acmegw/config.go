package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/acmegw/acmegw/acme"
	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/storage"
)

// Config is the whole gateway configuration. Precedence, lowest first:
// built-in defaults, the YAML file, ACMEGW_* environment variables, flags.
type Config struct {
	Listen                 string   `yaml:"listen"`
	BaseURL                string   `yaml:"base_url"`
	DataDir                string   `yaml:"data_dir"`
	Redis                  string   `yaml:"redis"`
	DNSResolver            string   `yaml:"dns_resolver"`
	HTTP01Port             int      `yaml:"http01_port"`
	TLSALPN01Port          int      `yaml:"tlsalpn01_port"`
	TLSCert                string   `yaml:"tls_cert"`
	TLSKey                 string   `yaml:"tls_key"`
	ValidationAllowPrivate bool     `yaml:"validation_allow_private"`
	ValidationTimeout      Duration `yaml:"validation_timeout"`
	LogLevel               string   `yaml:"log_level"`
	LogFormat              string   `yaml:"log_format"`
	// DebugListen, when set, serves Go's pprof profiles (net/http/pprof) on
	// a plain-HTTP listener of its own; keep it on loopback.
	DebugListen    string   `yaml:"debug_listen"`
	TermsOfService string   `yaml:"terms_of_service"`
	Website        string   `yaml:"website"`
	CAAIdentities  []string `yaml:"caa_identities"`

	// Storage is the design document's nested form of Redis: {redis: {url: ...}}.
	Storage struct {
		Redis struct {
			URL string `yaml:"url"`
		} `yaml:"redis"`
	} `yaml:"storage"`

	CA struct {
		KeyType        string `yaml:"key_type"`
		Name           string `yaml:"name"`
		AlternateChain bool   `yaml:"alternate_chain"`
	} `yaml:"ca"`

	DefaultProfile string                   `yaml:"default_profile"`
	Profiles       map[string]ProfileConfig `yaml:"profiles"`
	Brands         map[string]BrandConfig   `yaml:"brands"`

	// EAB is the eab section (see eab.go).
	EAB EABConfig `yaml:"eab"`

	// RateLimits is the rate_limits section (see ratelimits.go).
	RateLimits RateLimitsConfig `yaml:"rate_limits"`

	// Timeouts is the timeouts section: the front end's waits and the
	// issuance jobs' intervals.
	Timeouts TimeoutsConfig `yaml:"timeouts"`
}

// TimeoutsConfig is the YAML section timeouts:, the timing settings of
// acme.Config. A zero or absent key keeps acme's default (in the comments);
// a negative one is refused at load.
//
//	timeouts:
//	  validation_wait: 3s   # a challenge POST waits this long for its validation
//	  finalize_wait: 5s     # a finalize request waits this long for the brand
//	  brand_timeout: 90s    # bound on one Submit or Poll call to a brand
//	  job_lease: 2m         # a claimed job's lease; at least brand_timeout+10s
//	  review_poll: 1m       # how often a job held for review looks for a decision
//	  nonce_ttl: 1h         # how long an issued nonce stays redeemable
type TimeoutsConfig struct {
	ValidationWait Duration `yaml:"validation_wait"`
	FinalizeWait   Duration `yaml:"finalize_wait"`
	BrandTimeout   Duration `yaml:"brand_timeout"`
	JobLease       Duration `yaml:"job_lease"`
	ReviewPoll     Duration `yaml:"review_poll"`
	NonceTTL       Duration `yaml:"nonce_ttl"`
}

// validate refuses negative durations, naming the key.
func (t TimeoutsConfig) validate() error {
	for _, k := range []struct {
		key string
		d   Duration
	}{
		{"validation_wait", t.ValidationWait},
		{"finalize_wait", t.FinalizeWait},
		{"brand_timeout", t.BrandTimeout},
		{"job_lease", t.JobLease},
		{"review_poll", t.ReviewPoll},
		{"nonce_ttl", t.NonceTTL},
	} {
		if k.d < 0 {
			return fmt.Errorf("config timeouts.%s: %s is negative (0 or absent keeps the default)", k.key, time.Duration(k.d))
		}
	}
	return nil
}

// acmeConfig is the front end's configuration that serve starts: the
// settings of cfg, with the pieces serve built from it (store, validator,
// router, logger, rate limits).
func acmeConfig(cfg Config, store storage.Store, validator acme.Validator, router *issuer.Router, log *slog.Logger, rateLimits acme.RateLimits) acme.Config {
	return acme.Config{
		Store:                   store,
		Validator:               validator,
		Router:                  router,
		Logger:                  log,
		BaseURL:                 cfg.BaseURL,
		TermsOfService:          cfg.TermsOfService,
		Website:                 cfg.Website,
		CAAIdentities:           cfg.CAAIdentities,
		RateLimits:              rateLimits,
		ExternalAccountRequired: cfg.EAB.Required,
		ValidationWait:          time.Duration(cfg.Timeouts.ValidationWait),
		NonceTTL:                time.Duration(cfg.Timeouts.NonceTTL),
		FinalizeWait:            time.Duration(cfg.Timeouts.FinalizeWait),
		BrandTimeout:            time.Duration(cfg.Timeouts.BrandTimeout),
		JobLease:                time.Duration(cfg.Timeouts.JobLease),
		ReviewPoll:              time.Duration(cfg.Timeouts.ReviewPoll),
	}
}

// ProfileConfig is one orderable profile.
type ProfileConfig struct {
	Brand       string   `yaml:"brand"`
	Description string   `yaml:"description"`
	Validity    Duration `yaml:"validity"`
	// Deadline is how long a finalized order waits for its brand (e.g. 30d
	// for OV/EV reviews) before it becomes invalid; default 24h.
	Deadline Duration `yaml:"deadline"`
	// Rules are the profile's product rules (see rules.go).
	Rules RulesConfig `yaml:"rules"`
}

// BrandConfig is one backend CA: its type and the keys that type reads.
type BrandConfig struct {
	Type string `yaml:"type"`
	// ACMEBrandConfig holds the keys of type "acme" (see brands.go).
	ACMEBrandConfig `yaml:",inline"`
	// ManualBrandConfig holds the keys of type "manual" (see review.go).
	ManualBrandConfig `yaml:",inline"`
	// CommercialBrandConfig holds the keys of types "tencent", "aliyun"
	// and "digicert" (see brands.go).
	CommercialBrandConfig `yaml:",inline"`
}

// Duration reads "90d", "160h", "30m" from YAML and the environment.
type Duration time.Duration

// UnmarshalYAML accepts Go durations plus a "d" suffix for days.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n.Value)
	*d = Duration(v)
	return err
}

func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %w", s, err)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func defaultConfig() Config {
	c := Config{
		Listen:        "127.0.0.1:14000",
		DataDir:       defaultDataDir(),
		HTTP01Port:    80,
		TLSALPN01Port: 443,
		LogLevel:      "info",
		LogFormat:     "text",
	}
	c.ValidationTimeout = Duration(10 * time.Second)
	c.CA.KeyType = "ecdsa"
	c.CA.Name = "acmegw"
	return c
}

// defaultDataDir keeps the CA keys in the user's data directory so that the
// root a client trusts survives restarts and does not depend on the cwd.
func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "acmegw")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "acmegw")
	}
	return "acmegw-data"
}

// withDefaultProfiles fills in the zero-config profiles of the built-in CA.
func (c *Config) withDefaultProfiles() {
	if c.Storage.Redis.URL != "" && c.Redis == "" {
		c.Redis = c.Storage.Redis.URL
	}
	if len(c.Brands) == 0 {
		c.Brands = map[string]BrandConfig{"local": {Type: "local"}}
	}
	if len(c.Profiles) == 0 {
		c.Profiles = map[string]ProfileConfig{
			"default":    {Brand: "local", Description: "built-in CA, 90 days", Validity: Duration(90 * 24 * time.Hour)},
			"shortlived": {Brand: "local", Description: "built-in CA, 160 hours", Validity: Duration(160 * time.Hour)},
		}
	}
	if c.DefaultProfile == "" {
		c.DefaultProfile = "default"
	}
}

// option binds one setting to its flag, environment variable and YAML key.
type option struct {
	flag, env, usage string
	set              func(c *Config, v string) error
}

var options = []option{
	{"listen", "ACMEGW_LISTEN", "address to serve HTTPS on", func(c *Config, v string) error { c.Listen = v; return nil }},
	{"base-url", "ACMEGW_BASE_URL", "external URL prefix (default: from each request's Host)", func(c *Config, v string) error { c.BaseURL = v; return nil }},
	{"data-dir", "ACMEGW_DATA_DIR", "directory for the built-in CA's keys and root.pem", func(c *Config, v string) error { c.DataDir = v; return nil }},
	{"redis", "ACMEGW_REDIS", "redis:// URL of the shared store (default: in memory)", func(c *Config, v string) error { c.Redis = v; return nil }},
	{"dns-resolver", "ACMEGW_DNS_RESOLVER", "DNS server HOST:PORT for validation (default: system resolver)", func(c *Config, v string) error { c.DNSResolver = v; return nil }},
	{"http01-port", "ACMEGW_HTTP01_PORT", "port http-01 validation connects to", intSetter(func(c *Config) *int { return &c.HTTP01Port })},
	{"tlsalpn01-port", "ACMEGW_TLSALPN01_PORT", "port tls-alpn-01 validation connects to", intSetter(func(c *Config) *int { return &c.TLSALPN01Port })},
	{"tls-cert", "ACMEGW_TLS_CERT", "PEM certificate for the listener (default: one from the built-in CA)", func(c *Config, v string) error { c.TLSCert = v; return nil }},
	{"tls-key", "ACMEGW_TLS_KEY", "PEM key for --tls-cert", func(c *Config, v string) error { c.TLSKey = v; return nil }},
	{"validation-allow-private", "ACMEGW_VALIDATION_ALLOW_PRIVATE", "let http-01 and tls-alpn-01 connect to loopback and private addresses", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		c.ValidationAllowPrivate = b
		return err
	}},
	{"log-level", "ACMEGW_LOG_LEVEL", "debug, info, warn or error", func(c *Config, v string) error { c.LogLevel = v; return nil }},
	{"log-format", "ACMEGW_LOG_FORMAT", "text or json", func(c *Config, v string) error { c.LogFormat = v; return nil }},
	{"debug-listen", "ACMEGW_DEBUG_LISTEN", "HOST:PORT serving /debug/pprof/ over plain HTTP (default: off; keep it on loopback)", func(c *Config, v string) error { c.DebugListen = v; return nil }},
}

func intSetter(field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		*field(c) = n
		return nil
	}
}

// loadConfig parses args into a Config, reading the YAML file named by
// --config or ACMEGW_CONFIG first.
func loadConfig(name string, args []string) (Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	configPath := fs.String("config", os.Getenv("ACMEGW_CONFIG"), "YAML configuration file (env ACMEGW_CONFIG)")
	values := map[string]*string{}
	for _, o := range options {
		if o.flag == "validation-allow-private" {
			values[o.flag] = new(string)
			fs.BoolFunc(o.flag, o.usage+" (env "+o.env+")", func(v string) error { *values["validation-allow-private"] = v; return nil })
			continue
		}
		values[o.flag] = fs.String(o.flag, "", o.usage+" (env "+o.env+")")
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	cfg := defaultConfig()
	if *configPath != "" {
		raw, err := os.ReadFile(*configPath)
		if err != nil {
			return cfg, fmt.Errorf("reading config: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(raw)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", *configPath, err)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, o := range options {
		v, fromFlag := *values[o.flag], set[o.flag]
		if !fromFlag {
			var ok bool
			if v, ok = os.LookupEnv(o.env); !ok {
				continue
			}
		}
		if err := o.set(&cfg, v); err != nil {
			return cfg, fmt.Errorf("--%s: %w", o.flag, err)
		}
	}
	if err := cfg.Timeouts.validate(); err != nil {
		return cfg, err
	}
	cfg.withDefaultProfiles()
	return cfg, nil
}
