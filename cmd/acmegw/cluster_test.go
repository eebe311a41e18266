package main

import (
	"context"
	"testing"
	"time"

	"github.com/acmegw/acmegw/internal/bench"
	"github.com/acmegw/acmegw/internal/testredis"
)

// TestRedisCluster issues certificates through two acmegw instances
// sharing a real Redis Cluster of three masters: every store operation of
// an issuance must work there (keys hash-tagged, no MULTI or script
// spanning two slots). CreateOrder's MULTI across slots failed here with
// CROSSSLOT until it learned to write in two pipelines on a Cluster.
func TestRedisCluster(t *testing.T) {
	url := testredis.StartCluster(t)
	dnsSrv, err := bench.ListenDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dnsSrv.Close)
	dataDir := t.TempDir()
	opts := gatewayOptions{RedisURL: url, DataDir: dataDir, Args: []string{"--dns-resolver", dnsSrv.Addr()}}
	a := startGateway(t, opts)
	b := startGateway(t, opts)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, gw := range []*gateway{a, b} {
		res, err := bench.Run(ctx, bench.Config{
			Directory:    gw.DirURL,
			RootCAs:      gw.RootPool(t),
			Clients:      4,
			Certificates: 8,
			NamesPerCert: 2,
			TXT:          dnsSrv,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.ErrorsTotal != 0 || res.Certificates != 8 {
			t.Fatalf("%s: %d certificates, errors %v %v\nlog:\n%s", gw.DirURL, res.Certificates, res.Errors, res.ErrorSamples, gw.Log())
		}
	}
}
