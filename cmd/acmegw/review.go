package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
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

const reviewUsage = `usage: acmegw review approve|reject ORDER-ID [--reason TEXT] [--data-dir DIR | --redis URL]`

// reviewView is the admin API's answer to a review decision.
type reviewView struct {
	Order       string          `json:"order"`
	Status      string          `json:"status"`
	Brand       string          `json:"brand"`
	Profile     string          `json:"profile,omitempty"`
	NeedsReview bool            `json:"needsReview,omitempty"`
	Review      *storage.Review `json:"review"`
	// Previous is the decision this one replaced, if any.
	Previous *storage.Review `json:"previous,omitempty"`
}

// reviewAdmin serves POST /review/{order} of the admin API.
type reviewAdmin struct{ store storage.Store }

// decide records an operator's decision ({"decision": "approved"|"rejected",
// "reason": ...}) on an order that is not final yet, as a compare-and-swap,
// for its issuance job (an order held for its profile's review words) or
// its brand (a manual brand in review mode) to act on.
func (a reviewAdmin) decide(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Decision string `json:"decision"`
		Reason   string `json:"reason"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		adminError(w, http.StatusBadRequest, "bad request: %v", err)
		return
	}
	if in.Decision != storage.ReviewApproved && in.Decision != storage.ReviewRejected {
		adminError(w, http.StatusBadRequest, "decision %q: want %q or %q", in.Decision, storage.ReviewApproved, storage.ReviewRejected)
		return
	}
	id := r.PathValue("order")
	for range 5 {
		o, err := a.store.GetOrder(r.Context(), id)
		if errors.Is(err, storage.ErrNotFound) {
			adminError(w, http.StatusNotFound, "no order %q", id)
			return
		}
		if err != nil {
			adminError(w, http.StatusInternalServerError, "review %s: %v", id, err)
			return
		}
		if o.Status == storage.StatusValid || o.Status == storage.StatusInvalid {
			adminError(w, http.StatusConflict, "order %s is already %s; a decision cannot change it", id, o.Status)
			return
		}
		prev := o.Review
		o.Review = &storage.Review{Decision: in.Decision, Reason: in.Reason, At: time.Now().UTC()}
		err = a.store.UpdateOrder(r.Context(), o)
		if errors.Is(err, storage.ErrConflict) {
			continue // the gateway moved the order meanwhile; decide on the fresh copy
		}
		if err != nil {
			adminError(w, http.StatusInternalServerError, "review %s: %v", id, err)
			return
		}
		writeAdminJSON(w, reviewView{Order: o.ID, Status: o.Status, Brand: o.Brand, Profile: o.Profile,
			NeedsReview: o.NeedsReview, Review: o.Review, Previous: prev})
		return
	}
	adminError(w, http.StatusConflict, "order %s kept changing; try again", id)
}

// reviewCommand runs "acmegw review approve|reject ORDER-ID": an operator's
// decision on an order held for manual review, recorded on the order
// through the admin API (the running gateway's socket in --data-dir, or
// the shared store with --redis) for its issuance job or brand to read.
func reviewCommand(args []string) error {
	if len(args) == 0 || (args[0] != "approve" && args[0] != "reject") {
		return errors.New(reviewUsage)
	}
	decision := storage.ReviewApproved
	if args[0] == "reject" {
		decision = storage.ReviewRejected
	}
	fs := flag.NewFlagSet("review "+args[0], flag.ContinueOnError)
	dataDir := fs.String("data-dir", envOr("ACMEGW_DATA_DIR", defaultDataDir()), "data directory of the running gateway (env ACMEGW_DATA_DIR)")
	redisURL := fs.String("redis", os.Getenv("ACMEGW_REDIS"), "redis:// URL of the store the gateway uses (env ACMEGW_REDIS)")
	reason := fs.String("reason", "", "why; a rejection's reason is shown to the client")
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		return errors.New(reviewUsage)
	}
	id := positional[0]
	// The order URL works as well as its id.
	id = id[strings.LastIndex(id, "/")+1:]

	c, err := newAdminClient(*dataDir, *redisURL)
	if err != nil {
		if *redisURL == "" {
			return fmt.Errorf("%w\n(a gateway on the in-memory store keeps its orders in its own process: review reaches them through the admin socket of its --data-dir; a gateway on Redis is reviewed with --redis)", err)
		}
		return err
	}
	defer c.close()
	var v reviewView
	in := map[string]string{"decision": decision, "reason": *reason}
	if err := c.do(http.MethodPost, "/review/"+url.PathEscape(id), in, &v); err != nil {
		return err
	}
	if p := v.Previous; p != nil && p.Decision != decision {
		fmt.Fprintf(os.Stderr, "order %s was %s at %s; now %s\n", id, p.Decision, p.At.Format(time.RFC3339), decision)
	}
	actor := "the brand acts on it at its next poll"
	if v.NeedsReview {
		actor = "its issuance job acts on it within a minute once the order is finalized"
	}
	fmt.Printf("order %s (%s, brand %s): %s; %s\n", id, v.Status, v.Brand, decision, actor)
	return nil
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
