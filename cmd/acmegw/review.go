package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/local"
	"github.com/acmegw/acmegw/issuer/manual"
	"github.com/acmegw/acmegw/storage"
)

// ManualBrandConfig holds the keys of a brand of type "manual", the test
// and demonstration brand of issuer/manual:
//
//	brands:
//	  slow:   {type: manual, issue_after: 10s}   # issues 10 s after finalize
//	  review: {type: manual, review: true}       # issues once "acmegw review approve" says so
type ManualBrandConfig struct {
	IssueAfter Duration `yaml:"issue_after"`
	Review     bool     `yaml:"review"`
}

// buildManualBrand makes a manual brand that signs with the built-in CA and
// reads review decisions off the orders in store.
func buildManualBrand(name string, b BrandConfig, ca *local.CA, store storage.Store) (issuer.Issuer, error) {
	m := b.ManualBrandConfig
	brand, err := manual.New(ca, manual.Options{
		IssueAfter: time.Duration(m.IssueAfter),
		Review:     m.Review,
		Decisions:  orderDecisions{store: store},
	})
	if err != nil {
		return nil, fmt.Errorf("brand %q: %w", name, err)
	}
	return brand, nil
}

// orderDecisions reads the operator's decision ("acmegw review") from the
// order's Review; it implements manual.Decisions.
type orderDecisions struct{ store storage.Store }

func (d orderDecisions) Decision(ctx context.Context, orderID string) (approved, rejected bool, reason string, err error) {
	o, err := d.store.GetOrder(ctx, orderID)
	if err != nil {
		return false, false, "", err
	}
	if o.Review == nil {
		return false, false, "", nil
	}
	switch o.Review.Decision {
	case storage.ReviewApproved:
		return true, false, o.Review.Reason, nil
	case storage.ReviewRejected:
		return false, true, o.Review.Reason, nil
	}
	return false, false, "", nil
}

const reviewUsage = `usage: acmegw review approve|reject ORDER-ID [--reason TEXT] [--redis URL]`

// reviewCommand runs "acmegw review approve|reject ORDER-ID": an operator's
// decision on an order held for manual review, recorded on the order (a
// compare-and-swap) for its brand to read at its next poll.
func reviewCommand(args []string) error {
	if len(args) == 0 || (args[0] != "approve" && args[0] != "reject") {
		return errors.New(reviewUsage)
	}
	decision := storage.ReviewApproved
	if args[0] == "reject" {
		decision = storage.ReviewRejected
	}
	fs := flag.NewFlagSet("review "+args[0], flag.ContinueOnError)
	redisURL := fs.String("redis", os.Getenv("ACMEGW_REDIS"), "redis:// URL of the store the gateway uses (env ACMEGW_REDIS)")
	reason := fs.String("reason", "", "why; a rejection's reason is shown to the client")
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		return errors.New(reviewUsage)
	}
	if *redisURL == "" {
		return errors.New("review needs --redis: a gateway on the in-memory store keeps its orders in its own process, out of this command's reach; run the gateway with --redis to review orders")
	}
	id := positional[0]
	// The order URL works as well as its id.
	id = id[strings.LastIndex(id, "/")+1:]

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := defaultConfig()
	cfg.Redis = *redisURL
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	for range 5 {
		o, err := store.GetOrder(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("no order %q", id)
		}
		if err != nil {
			return err
		}
		if o.Status == storage.StatusValid || o.Status == storage.StatusInvalid {
			return fmt.Errorf("order %s is already %s; a decision cannot change it", id, o.Status)
		}
		if o.Review != nil && o.Review.Decision != decision {
			fmt.Fprintf(os.Stderr, "order %s was %s at %s; now %s\n", id, o.Review.Decision, o.Review.At.Format(time.RFC3339), decision)
		}
		o.Review = &storage.Review{Decision: decision, Reason: *reason, At: time.Now().UTC()}
		err = store.UpdateOrder(ctx, o)
		if errors.Is(err, storage.ErrConflict) {
			continue // the gateway moved the order meanwhile; decide on the fresh copy
		}
		if err != nil {
			return err
		}
		fmt.Printf("order %s (%s, brand %s): %s; the brand acts on it at its next poll\n", id, o.Status, o.Brand, decision)
		return nil
	}
	return fmt.Errorf("order %s kept changing; try again", id)
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments ("review approve ID --redis URL").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
