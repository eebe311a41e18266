package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// ariCommand runs "acmegw ari reschedule": during an incident an operator
// pulls the ARI renewal window of some certificates into the past (or to a
// chosen time), so that clients polling renewalInfo renew them at once.
func ariCommand(args []string) error {
	if len(args) == 0 || args[0] != "reschedule" {
		return errors.New(`usage: acmegw ari reschedule [--redis URL] [--start RFC3339] [--end RFC3339] SERIAL...`)
	}
	fs := flag.NewFlagSet("ari reschedule", flag.ContinueOnError)
	redisURL := fs.String("redis", os.Getenv("ACMEGW_REDIS"), "redis:// URL of the store the gateway uses (env ACMEGW_REDIS)")
	start := fs.String("start", "", "window start (default: now minus one hour, i.e. renew now)")
	end := fs.String("end", "", "window end (default: start plus one hour)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *redisURL == "" {
		return errors.New("ari reschedule needs --redis: a gateway on the in-memory store keeps its state in its own process")
	}
	if fs.NArg() == 0 {
		return errors.New("name at least one certificate serial (hex, as in the certificate URL)")
	}
	from := time.Now().Add(-time.Hour).UTC()
	if *start != "" {
		t, err := time.Parse(time.RFC3339, *start)
		if err != nil {
			return fmt.Errorf("--start: %w", err)
		}
		from = t
	}
	to := from.Add(time.Hour)
	if *end != "" {
		t, err := time.Parse(time.RFC3339, *end)
		if err != nil {
			return fmt.Errorf("--end: %w", err)
		}
		to = t
	}
	if !to.After(from) {
		return errors.New("--end must be after --start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := defaultConfig()
	cfg.Redis = *redisURL
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	var failed []string
	for _, serial := range fs.Args() {
		serial = strings.ToLower(strings.TrimPrefix(serial, "0x"))
		c, err := store.GetCertificate(ctx, serial)
		if err == nil {
			c.RenewalStart, c.RenewalEnd = from, to
			err = store.UpdateCertificate(ctx, c)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", serial, err)
			failed = append(failed, serial)
			continue
		}
		fmt.Printf("%s: renewal window %s to %s\n", serial, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d certificates not rescheduled", len(failed), fs.NArg())
	}
	return nil
}
