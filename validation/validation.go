// Package validation is the validation authority: it checks http-01, dns-01
// and tls-alpn-01 challenges (RFC 8555 §8, RFC 8737, RFC 8738) against the
// real network, with an injected resolver, ports and address policy so that
// tests can point it at loopback servers.
package validation

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultHTTPPort    = 80
	DefaultTLSALPNPort = 443
	DefaultTimeout     = 10 * time.Second
)

// Challenge is what the validator needs to check one challenge.
type Challenge struct {
	Type             string // "http-01", "dns-01" or "tls-alpn-01"
	IdentifierType   string // "dns" or "ip"
	Identifier       string // the name (without "*.") or the IP address
	Token            string
	KeyAuthorization string // token + "." + base64url(JWK thumbprint)
}

// Config sets where and how the validator connects.
type Config struct {
	// Resolver is the DNS server as HOST:PORT; empty uses the system's (/etc/resolv.conf).
	Resolver string
	// HTTPPort is the port http-01 connects to (80 unless testing).
	HTTPPort int
	// TLSALPNPort is the port tls-alpn-01 connects to (443 unless testing).
	TLSALPNPort int
	// AllowPrivate lets http-01 and tls-alpn-01 connect to loopback, private
	// and other special-purpose addresses; a public CA must refuse them.
	AllowPrivate bool
	// Timeout bounds one validation attempt; zero means 10 seconds.
	Timeout time.Duration
}

// Error is a failed validation. Type is the short ACME error name:
// "dns", "connection", "tls", "unauthorized", "incorrectResponse", "rejectedIdentifier", "malformed".
type Error struct {
	Type   string
	Detail string
}

// Error formats the problem as "type: detail" for logs.
func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Type, e.Detail) }

// Validator checks challenges against the network. It is safe for concurrent
// use; one Validator serves a whole worker pool.
type Validator struct {
	cfg      Config
	resolver *Resolver
	// checkAddr is the address policy applied to every address before it is
	// dialled. It is a field rather than a direct call so that tests can
	// accept their loopback servers while still refusing everything else.
	checkAddr func(netip.Addr) error
}

// New returns a Validator for cfg, filling in the default ports and timeout
// and setting up the DNS resolver (cfg.Resolver, else the first nameserver of
// /etc/resolv.conf, else Go's system resolver).
func New(cfg Config) *Validator {
	if cfg.HTTPPort == 0 {
		cfg.HTTPPort = DefaultHTTPPort
	}
	if cfg.TLSALPNPort == 0 {
		cfg.TLSALPNPort = DefaultTLSALPNPort
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	v := &Validator{cfg: cfg, resolver: NewResolver(cfg.Resolver), checkAddr: CheckAddress}
	if cfg.AllowPrivate {
		v.checkAddr = func(netip.Addr) error { return nil }
	}
	return v
}

// Resolver returns the DNS resolver the Validator uses, so that related
// checks (CAA, for one) see the same DNS view as the challenges.
func (v *Validator) Resolver() *Resolver { return v.resolver }

// Validate checks one challenge; it returns nil on success or an *Error.
func (v *Validator) Validate(ctx context.Context, ch Challenge) error {
	if v.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, v.cfg.Timeout)
		defer cancel()
	}
	switch ch.Type {
	case "http-01":
		return v.validateHTTP01(ctx, ch)
	case "dns-01":
		return v.validateDNS01(ctx, ch)
	case "tls-alpn-01":
		return v.validateTLSALPN01(ctx, ch)
	}
	return &Error{Type: "malformed", Detail: fmt.Sprintf("unsupported challenge type %q", ch.Type)}
}
