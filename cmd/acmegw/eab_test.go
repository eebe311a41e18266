package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/acmegw/acmegw/internal/testredis"
)

// eabAdd runs "acmegw eab add" with args and returns the kid and MAC key it printed.
func eabAdd(t *testing.T, args ...string) (kid string, mac []byte) {
	t.Helper()
	out, err := exec.Command(binary, append([]string{"eab", "add"}, args...)...).Output()
	if err != nil {
		t.Fatalf("eab add: %v %s", err, exitStderr(err))
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "kid:  "); ok {
			kid = v
		}
		if v, ok := strings.CutPrefix(line, "hmac: "); ok {
			mac, err = base64.RawURLEncoding.DecodeString(v)
			if err != nil {
				t.Fatalf("MAC key %q is not unpadded base64url: %v", v, err)
			}
		}
	}
	if kid == "" || len(mac) == 0 {
		t.Fatalf("eab add printed %q", out)
	}
	return kid, mac
}

func exitStderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

func eabClient(t *testing.T, gw *gateway, kid string, mac []byte) (*acme.Client, error) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := &acme.Client{Key: key, DirectoryURL: gw.DirURL, HTTPClient: gw.HTTPClient(t)}
	acct := &acme.Account{}
	if kid != "" {
		acct.ExternalAccountBinding = &acme.ExternalAccountBinding{KID: kid, Key: mac}
	}
	_, err := c.Register(context.Background(), acct, acme.AcceptTOS)
	return c, err
}

// TestEAB shows tenants managed without a restart: "acmegw eab add" on the
// running gateway (over its admin socket with memory, or through Redis),
// registration with the key, its profile and domain limits, and "eab revoke"
// cutting the tenant off.
func TestEAB(t *testing.T) {
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "acmegw.yaml")
			if err := os.WriteFile(cfg, []byte("eab: {required: true}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			opts := gatewayOptions{Args: []string{"--config", cfg}}
			target := func(gw *gateway) []string { return []string{"--data-dir", gw.DataDir} }
			if store == "redis" {
				opts.RedisURL = testredis.Start(t)
				target = func(*gateway) []string { return []string{"--redis", opts.RedisURL} }
			}
			gw := startGateway(t, opts)

			if _, err := eabClient(t, gw, "", nil); err == nil || !strings.Contains(err.Error(), "externalAccountRequired") {
				t.Fatalf("registration without EAB: %v, want externalAccountRequired", err)
			}
			kid, mac := eabAdd(t, append(target(gw), "--kid", "team-a", "--profiles", "default", "--domains", "*.a.eab.test")...)
			client, err := eabClient(t, gw, kid, mac)
			if err != nil {
				t.Fatalf("registration with EAB: %v", err)
			}
			issueDNS01(t, gw, client, "www.a.eab.test")

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err = client.AuthorizeOrder(ctx, acme.DomainIDs("www.b.eab.test"))
			if err == nil || !strings.Contains(err.Error(), "rejectedIdentifier") {
				t.Fatalf("order outside the tenant's domains: %v, want rejectedIdentifier", err)
			}

			list, err := exec.Command(binary, append([]string{"eab", "list"}, target(gw)...)...).Output()
			if err != nil || !strings.Contains(string(list), "team-a") || strings.Contains(string(list), base64.RawURLEncoding.EncodeToString(mac)) {
				t.Fatalf("eab list: %v\n%s", err, list)
			}
			if out, err := exec.Command(binary, append([]string{"eab", "revoke", "team-a"}, target(gw)...)...).CombinedOutput(); err != nil {
				t.Fatalf("eab revoke: %v %s", err, out)
			}
			_, err = client.AuthorizeOrder(ctx, acme.DomainIDs("new.a.eab.test"))
			if err == nil || !strings.Contains(err.Error(), "unauthorized") {
				t.Fatalf("order after revoke: %v, want unauthorized", err)
			}
		})
	}
}
