package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/acmegw/acmegw/internal/bench"
	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/storage"
	redisstore "github.com/acmegw/acmegw/storage/redis"
)

// TestPreload fills a Redis with 200 orders, reads some back through the
// store, and has a gateway on that Redis issue new certificates.
func TestPreload(t *testing.T) {
	url := testredis.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const orders, accounts = 200, 10
	cfg := defaultPreloadConfig()
	cfg.RedisURL, cfg.Orders, cfg.Accounts, cfg.Batch, cfg.Workers = url, orders, accounts, 16, 4
	res, err := runPreload(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Orders != orders || res.Accounts != accounts {
		t.Fatalf("wrote %d orders over %d accounts, want %d over %d", res.Orders, res.Accounts, orders, accounts)
	}
	if res.Authorizations < orders || res.Authorizations > 2*orders {
		t.Errorf("%d authorizations for %d orders, want one or two each", res.Authorizations, orders)
	}
	// 70% valid: no certificate at all would be a 1-in-10^100 draw.
	if res.Certificates == 0 || res.Certificates == orders {
		t.Errorf("%d certificates for %d orders, want a share", res.Certificates, orders)
	}
	if res.UsedMemoryAfter <= res.UsedMemoryBefore || res.BytesPerOrder <= 0 {
		t.Errorf("used_memory %d → %d, %.0f bytes per order", res.UsedMemoryBefore, res.UsedMemoryAfter, res.BytesPerOrder)
	}
	if len(res.SampleOrders) == 0 || len(res.SampleCertificates) == 0 || len(res.SampleAccounts) == 0 {
		t.Fatalf("no samples: %+v", res)
	}

	store, err := redisstore.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, id := range res.SampleOrders {
		o, err := store.GetOrder(ctx, id)
		if err != nil {
			t.Fatalf("order %s: %v", id, err)
		}
		if _, err := store.GetAccount(ctx, o.AccountID); err != nil {
			t.Errorf("order %s: account: %v", id, err)
		}
		if n := len(o.AuthzIDs); n < 1 || n > 2 || n != len(o.Identifiers) {
			t.Errorf("order %s: %d authorizations for %d identifiers", id, n, len(o.Identifiers))
		}
		for i, aid := range o.AuthzIDs {
			a, err := store.GetAuthorization(ctx, aid)
			if err != nil {
				t.Fatalf("order %s: authorization %s: %v", id, aid, err)
			}
			if a.AccountID != o.AccountID || a.Identifier != o.Identifiers[i] || len(a.Challenges) != 3 {
				t.Errorf("order %s: authorization %+v", id, a)
			}
			if o.Status == storage.StatusValid && a.Status != storage.StatusValid {
				t.Errorf("valid order %s has a %s authorization", id, a.Status)
			}
		}
	}
	for _, serial := range res.SampleCertificates {
		c, err := store.GetCertificate(ctx, serial)
		if err != nil {
			t.Fatalf("certificate %s: %v", serial, err)
		}
		o, err := store.GetOrder(ctx, c.OrderID)
		if err != nil || o.Status != storage.StatusValid || o.CertSerial != serial || o.AccountID != c.AccountID {
			t.Errorf("certificate %s: order %+v, %v", serial, o, err)
		}
		var chain []*x509.Certificate
		for rest := c.ChainPEM; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatalf("certificate %s: chain: %v", serial, err)
			}
			chain = append(chain, cert)
		}
		if len(chain) != 2 || chain[0].CheckSignatureFrom(chain[1]) != nil {
			t.Errorf("certificate %s: want a leaf and its intermediate, got %d certificates", serial, len(chain))
		}
		if latest, err := store.LatestCertificate(ctx, c.AccountID, c.Names); err != nil || latest.Serial != serial {
			t.Errorf("certificate %s: not indexed by its names: %v", serial, err)
		}
	}
	ids, _, err := store.ListOrders(ctx, res.SampleAccounts[0], "", 100)
	if err != nil || len(ids) != orders/accounts {
		t.Errorf("account %s lists %d orders (%v), want %d", res.SampleAccounts[0], len(ids), err, orders/accounts)
	}

	// The command itself, with its JSON report.
	out := filepath.Join(t.TempDir(), "preload.json")
	cmd := exec.Command(binary, "preload", "--redis", url, "--orders", "30", "--accounts", "3", "--quiet", "--json", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("acmegw preload: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var cli preloadResult
	if err := json.Unmarshal(b, &cli); err != nil || cli.Orders != 30 || cli.Accounts != 3 {
		t.Errorf("acmegw preload --json: %+v, %v", cli, err)
	}

	// A gateway on the filled store still issues.
	dnsSrv, err := bench.ListenDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dnsSrv.Close)
	gw := startGateway(t, gatewayOptions{RedisURL: url, Args: []string{"--dns-resolver", dnsSrv.Addr(), "--log-level", "info"}})
	run, err := bench.Run(ctx, bench.Config{
		Directory:    gw.DirURL,
		RootCAs:      gw.RootPool(t),
		Clients:      2,
		Certificates: 4,
		TXT:          dnsSrv,
	})
	if err != nil {
		t.Fatal(err)
	}
	if run.ErrorsTotal != 0 || run.Certificates != 4 {
		t.Fatalf("on the preloaded store: %d certificates, errors %v %v", run.Certificates, run.Errors, run.ErrorSamples)
	}
}
