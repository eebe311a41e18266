package validation

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckAddress(t *testing.T) {
	tests := []struct {
		addr   string
		reason string // "" means allowed
	}{
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"93.184.215.14", ""},
		{"2606:4700:4700::1111", ""},
		{"2a00:1450:4001:81b::200e", ""},
		{"::ffff:8.8.8.8", ""},

		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"::ffff:192.168.1.1", "private"},
		{"fc00::1", "unique local"},
		{"fd12:3456::1", "unique local"},
		{"169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "scoped"},
		{"0.0.0.0", "this network"},
		{"0.1.2.3", "this network"},
		{"::", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"100.64.0.1", "CGNAT"},
		{"100.127.255.255", "CGNAT"},
		{"192.0.0.8", "IETF protocol assignment"},
		{"192.0.2.1", "TEST-NET-1"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"198.51.100.7", "TEST-NET-2"},
		{"203.0.113.9", "TEST-NET-3"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.255", "broadcast"},
		{"64:ff9b::808:808", "NAT64"},
		{"2001:db8::1", "documentation"},
		{"3fff::1", "documentation"},
		{"2001::1", "Teredo"},
		{"2002:c000:0204::1", "6to4"},
		{"100::1", "discard-only"},
		{"::8.8.8.8", "IPv4-compatible"},
		{"4000::1", "global unicast"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := CheckAddress(netip.MustParseAddr(tt.addr))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("CheckAddress(%s) = %v, want nil", tt.addr, err)
				}
				return
			}
			var ae *AddressError
			if !errors.As(err, &ae) {
				t.Fatalf("CheckAddress(%s) = %v, want an *AddressError", tt.addr, err)
			}
			if !strings.Contains(ae.Reason, tt.reason) {
				t.Errorf("reason %q does not mention %q", ae.Reason, tt.reason)
			}
			if !strings.Contains(err.Error(), "--validation-allow-private") {
				t.Errorf("error %q does not say how to allow private addresses", err)
			}
		})
	}
	if err := CheckAddress(netip.Addr{}); err == nil {
		t.Error("the zero Addr was allowed")
	}
}

func TestCheckAddressMessage(t *testing.T) {
	got := CheckAddress(netip.MustParseAddr("127.0.0.1")).Error()
	want := "127.0.0.1 is a loopback address; validation of private addresses is disabled (--validation-allow-private)"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestNewDefaults(t *testing.T) {
	v := New(Config{Resolver: "127.0.0.1:53"})
	if v.cfg.HTTPPort != 80 || v.cfg.TLSALPNPort != 443 || v.cfg.Timeout != DefaultTimeout {
		t.Errorf("defaults = %d, %d, %v", v.cfg.HTTPPort, v.cfg.TLSALPNPort, v.cfg.Timeout)
	}
	if v.checkAddr(netip.MustParseAddr("127.0.0.1")) == nil {
		t.Error("the default policy allows loopback")
	}
	if New(Config{AllowPrivate: true}).checkAddr(netip.MustParseAddr("127.0.0.1")) != nil {
		t.Error("AllowPrivate does not allow loopback")
	}
}

func TestValidateUnsupportedType(t *testing.T) {
	err := New(Config{Resolver: "127.0.0.1:1"}).Validate(t.Context(), Challenge{Type: "tls-sni-01"})
	wantError(t, err, "malformed", "tls-sni-01")
}
