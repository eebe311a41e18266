package validation

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/validation/validationtest"
)

const (
	testToken   = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
	testKeyAuth = testToken + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
)

// newTestValidator points a Validator at srv with private addresses allowed,
// since every test server lives on loopback.
func newTestValidator(t *testing.T, srv *validationtest.DNSServer, edit func(*Config)) *Validator {
	t.Helper()
	cfg := Config{AllowPrivate: true, Timeout: 5 * time.Second}
	if srv != nil {
		cfg.Resolver = srv.Addr()
	}
	if edit != nil {
		edit(&cfg)
	}
	return New(cfg)
}

// allowOnly accepts the listed addresses and otherwise applies the real
// policy, so a test can reach its loopback server and still show that every
// other special-purpose address is refused.
func allowOnly(addrs ...string) func(netip.Addr) error {
	ok := map[netip.Addr]bool{}
	for _, a := range addrs {
		ok[netip.MustParseAddr(a)] = true
	}
	return func(ip netip.Addr) error {
		if ok[ip] {
			return nil
		}
		return CheckAddress(ip)
	}
}

// wantError fails unless err is an *Error of type typ whose detail contains
// every one of parts.
func wantError(t *testing.T, err error, typ string, parts ...string) {
	t.Helper()
	var ve *Error
	if !errors.As(err, &ve) {
		t.Fatalf("got %v (%T), want a *validation.Error of type %q", err, err, typ)
	}
	if ve.Type != typ {
		t.Fatalf("got type %q (%s), want %q", ve.Type, ve.Detail, typ)
	}
	for _, p := range parts {
		if !strings.Contains(ve.Detail, p) {
			t.Errorf("detail %q does not contain %q", ve.Detail, p)
		}
	}
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}
