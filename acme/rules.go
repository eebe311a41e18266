package acme

// A profile's product rules (issuer.Rules) beyond what newOrder checks
// inline: quotas of free products, the key types finalize accepts, and the
// manual review that an order for a name with a review word waits for
// before its brand is asked.

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/storage"
)

// defaultReviewPoll is how often a job held for review looks for a decision.
const defaultReviewPoll = time.Minute

// Names of the quota limits, in the detail of their rateLimited problems.
const (
	quotaPerAccount          = "quota per_account"
	quotaPerRegisteredDomain = "quota per_registered_domain"
)

// quotaChecks lists the profile's quota checks for an order of the account
// for ids: one per account, one per distinct registered domain. Their keys
// are scoped to the profile, and unlike the rate limits they count renewals
// too (a free product's quota does) and stay on when rate limits are off.
func quotaChecks(profile issuer.Profile, accountID string, ids []storage.Identifier) []limitCheck {
	q := profile.Rules.Quota
	if !q.On() {
		return nil
	}
	var out []limitCheck
	if q.PerAccount > 0 {
		out = append(out, limitCheck{
			name:  quotaPerAccount,
			key:   "quota:" + profile.Name + ":account:" + accountID,
			limit: storage.RateLimit{Count: q.PerAccount, Period: q.Period},
			what:  fmt.Sprintf("profile %q: this account's certificates quota is used up", profile.Name),
		})
	}
	if q.PerRegisteredDomain > 0 {
		seen := make(map[string]bool, len(ids))
		for _, id := range ids {
			d := registeredDomain(id)
			if seen[d] {
				continue
			}
			seen[d] = true
			out = append(out, limitCheck{
				name:  quotaPerRegisteredDomain,
				key:   "quota:" + profile.Name + ":domain:" + d,
				limit: storage.RateLimit{Count: q.PerRegisteredDomain, Period: q.Period},
				what:  fmt.Sprintf("profile %q: the certificates quota of %s is used up", profile.Name, d),
			})
		}
	}
	return out
}

// checkQuota checks, without spending, that the profile's quotas leave room
// for one more certificate for ids; the issuance job spends them.
func (s *Server) checkQuota(ctx context.Context, profile issuer.Profile, accountID string, ids []storage.Identifier) *Problem {
	for _, c := range quotaChecks(profile, accountID, ids) {
		if p := s.spend(ctx, c, 0); p != nil {
			return p
		}
	}
	return nil
}

// checkProfileCSR applies the order's profile rules to a CSR that passed
// the gateway's own checks: its key type.
func (s *Server) checkProfileCSR(csr *x509.CertificateRequest, o *storage.Order) *Problem {
	profile, ok := s.cfg.Router.Profile(o.Profile)
	if !ok {
		return nil
	}
	if v := profile.Rules.CheckKey(profile.Name, csr.PublicKey); v != nil {
		return badCSR("%s", v.Detail)
	}
	return nil
}

// awaitingReview reports whether the order is held for a review that has
// not decided yet.
func awaitingReview(o *storage.Order) bool {
	if !o.NeedsReview {
		return false
	}
	return o.Review == nil || (o.Review.Decision != storage.ReviewApproved && o.Review.Decision != storage.ReviewRejected)
}

// holdForReview is the issuance job's step for an order that needs manual
// review and was not submitted yet: undecided, the job looks again after
// Config.ReviewPoll ("review"); rejected, the order becomes invalid with the
// operator's reason ("failed"); approved, it reports false and the job
// submits the order to its brand.
func (s *Server) holdForReview(ctx context.Context, log *slog.Logger, j *storage.Job, o *storage.Order, now time.Time) (held bool, result string) {
	if !o.NeedsReview || j.Ticket != "" {
		return false, ""
	}
	if awaitingReview(o) {
		j.LastError = "the order awaits manual review (acmegw review approve|reject)"
		poll := s.cfg.ReviewPoll
		if poll <= 0 {
			poll = defaultReviewPoll
		}
		s.rescheduleJob(ctx, log, j, now.Add(poll))
		log.Debug("issuance held for manual review", "next_look", poll)
		return true, "review"
	}
	if o.Review.Decision == storage.ReviewApproved {
		return false, ""
	}
	profile, _ := s.cfg.Router.Profile(o.Profile)
	detail := fmt.Sprintf("rejected by review (profile %q reviews names with sensitive words)", profile.Name)
	if o.Review.Reason != "" {
		detail = fmt.Sprintf("rejected by review: %s (profile %q reviews names with sensitive words)", o.Review.Reason, profile.Name)
	}
	log.Info("issuance refused by manual review", "reason", o.Review.Reason)
	s.finishJob(ctx, log, j, o, "", &storage.Problem{Type: "rejectedIdentifier", Detail: detail}, nil)
	return true, "failed"
}
