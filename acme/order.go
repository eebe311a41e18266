package acme

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/acmegw/acmegw/storage"
)

// orderJSON is the order resource of RFC 8555 §7.1.3.
type orderJSON struct {
	Status         string               `json:"status"`
	Expires        string               `json:"expires"`
	Identifiers    []storage.Identifier `json:"identifiers"`
	NotBefore      string               `json:"notBefore,omitempty"`
	NotAfter       string               `json:"notAfter,omitempty"`
	Profile        string               `json:"profile,omitempty"`
	Replaces       string               `json:"replaces,omitempty"`
	Authorizations []string             `json:"authorizations"`
	Finalize       string               `json:"finalize"`
	Certificate    string               `json:"certificate,omitempty"`
	Error          *Problem             `json:"error,omitempty"`
}

func (s *Server) orderURL(r *http.Request, id string) string { return s.baseURL(r) + orderPath + id }

func (s *Server) renderOrder(r *http.Request, o *storage.Order) orderJSON {
	base := s.baseURL(r)
	out := orderJSON{
		Status:         o.Status,
		Expires:        o.Expires.UTC().Format(time.RFC3339),
		Identifiers:    o.Identifiers,
		Profile:        o.Profile,
		Replaces:       o.Replaces,
		Authorizations: make([]string, len(o.AuthzIDs)),
		Finalize:       base + orderPath + o.ID + "/finalize",
		Error:          problemFromStored(o.Error),
	}
	for i, id := range o.AuthzIDs {
		out.Authorizations[i] = base + authzPath + id
	}
	if !o.NotBefore.IsZero() {
		out.NotBefore = o.NotBefore.UTC().Format(time.RFC3339)
	}
	if !o.NotAfter.IsZero() {
		out.NotAfter = o.NotAfter.UTC().Format(time.RFC3339)
	}
	if o.CertSerial != "" {
		out.Certificate = base + certPath + o.CertSerial
	}
	return out
}

// writeOrder answers with an order, its Location (cert-manager polls it) and,
// while it is processing, a Retry-After (see orderRetryAfter).
func (s *Server) writeOrder(w http.ResponseWriter, r *http.Request, status int, o *storage.Order) {
	w.Header().Set("Location", s.orderURL(r, o.ID))
	if o.Status == storage.StatusProcessing {
		w.Header().Set("Retry-After", s.orderRetryAfter(r.Context(), o))
	}
	addLink(w, s.baseURL(r)+directoryPath, "index")
	s.writeJSON(w, r, status, s.renderOrder(r, o))
}

func (s *Server) handleNewOrder(w http.ResponseWriter, r *http.Request, req *request) *Problem {
	var in struct {
		Identifiers []storage.Identifier `json:"identifiers"`
		NotBefore   string               `json:"notBefore"`
		NotAfter    string               `json:"notAfter"`
		Profile     string               `json:"profile"`
		Replaces    string               `json:"replaces"`
	}
	if req.postAsGet {
		return malformed("newOrder needs a JSON payload with \"identifiers\"")
	}
	if err := json.Unmarshal(req.payload, &in); err != nil {
		return malformed("newOrder payload: %v", err)
	}
	ids, p := checkIdentifiers(in.Identifiers, s.cfg.MaxIdentifiers)
	if p != nil {
		return p
	}
	eabKey, p := s.accountEAB(r.Context(), req.account)
	if p != nil {
		return p
	}
	profileName := in.Profile
	if profileName == "" && eabKey != nil && len(eabKey.Profiles) > 0 {
		// An external account's first profile is its default.
		profileName = eabKey.Profiles[0]
	}
	profile, ok := s.cfg.Router.Profile(profileName)
	if !ok {
		return invalidProfile("profile %q is not offered here; choose one of: %s", profileName, strings.Join(s.cfg.Router.Names(), ", "))
	}
	if p := checkEntitlement(eabKey, profile.Name, ids); p != nil {
		return p
	}
	brand, _ := s.cfg.Router.Issuer(profile.Brand)
	// The profile's product: the brand's, narrowed by the profile's rules.
	product := profile.Rules.Product(brand.Describe())
	if v := profile.Rules.CheckIdentifiers(profile.Name, product, ids); v != nil {
		p := rejectedIdentifier("%s", v.Detail)
		if v.Name != "" {
			p.Identifier = identifierOf(ids, v.Name)
		}
		return p
	}
	now := time.Now().UTC().Truncate(time.Second)
	notBefore, notAfter, p := parseValidity(in.NotBefore, in.NotAfter, now)
	if p != nil {
		return p
	}
	if !notAfter.IsZero() {
		start := notBefore
		if start.IsZero() {
			start = now
		}
		if v := profile.Rules.CheckValidity(profile.Name, product, notAfter.Sub(start)); v != nil {
			return malformed("%s", v.Detail)
		}
	}
	reuseKey := orderReuseKey(req.account.ID, profile.Name, ids, notBefore, notAfter)
	// One round trip looks up both kinds of reuse: the earlier order for
	// this very request, and each identifier's valid authorization.
	lookup := make([]string, 0, len(ids)+1)
	for _, id := range ids {
		lookup = append(lookup, authzReuseKeyFor(req.account.ID, id))
	}
	lookup = append(lookup, reuseKey)
	found, err := s.store.GetOrderKeys(r.Context(), lookup)
	if err != nil {
		return storeProblem("looking up earlier orders", err)
	}
	if in.Replaces == "" {
		earlier, p := s.reusableOrder(r.Context(), req.account, found[len(ids)])
		if p != nil {
			return p
		}
		if earlier != nil {
			logWith(r, "order", earlier.ID)
			logFrom(r).Info("order reused", "status", earlier.Status)
			s.writeOrder(w, r, http.StatusCreated, earlier)
			return nil
		}
	}
	if p := s.checkQuota(r.Context(), profile, req.account.ID, ids); p != nil {
		return p
	}
	if p := s.limitNewOrder(r.Context(), req.account, ids); p != nil {
		return p
	}
	word, reviewName, needsReview := profile.Rules.ReviewWord(ids)

	order := &storage.Order{
		ID:          newID(12),
		AccountID:   req.account.ID,
		Status:      storage.StatusPending,
		Identifiers: ids,
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		Expires:     now.Add(s.cfg.OrderLifetime),
		Profile:     profileName,
		Brand:       profile.Brand,
		Replaces:    in.Replaces,
		CreatedAt:   now,
		NeedsReview: needsReview,
	}
	var authzs []*storage.Authorization
	for i, id := range ids {
		if reused := s.reusableAuthz(r.Context(), req.account.ID, id, found[i]); reused != nil {
			order.AuthzIDs = append(order.AuthzIDs, reused.ID)
			continue
		}
		a := newAuthorization(req.account.ID, id, order.Expires, product.CAAIdentities)
		authzs = append(authzs, a)
		order.AuthzIDs = append(order.AuthzIDs, a.ID)
	}
	if len(authzs) == 0 {
		// Every authorization was reused: nothing is left to prove.
		order.Status = storage.StatusReady
	}
	if in.Replaces != "" {
		release, p := s.claimReplacement(r, req.account, in.Replaces, ids, order.ID)
		if p != nil {
			return p
		}
		defer func() {
			if order.Version == 0 {
				release()
			}
		}()
	}
	if err := s.store.CreateOrderIndexed(r.Context(), order, authzs, reuseKey, orderReuseTTL); err != nil {
		return storeProblem("creating order", err)
	}
	logWith(r, "order", order.ID)
	s.metrics.orders.WithLabelValues(storage.StatusPending, order.Brand).Inc()
	logFrom(r).Info("order created", "identifiers", len(ids), "profile", profile.Name, "brand", profile.Brand)
	if needsReview {
		logFrom(r).Warn("order held for manual review; issue it with \"acmegw review approve\"",
			"profile", profile.Name, "name", reviewName, "review_word", word)
	}
	s.writeOrder(w, r, http.StatusCreated, order)
	return nil
}

// identifierOf is the identifier of ids with value name, for a problem's
// "identifier" field.
func identifierOf(ids []storage.Identifier, name string) *storage.Identifier {
	for _, id := range ids {
		if id.Value == name {
			return &storage.Identifier{Type: id.Type, Value: id.Value}
		}
	}
	return nil
}

// parseValidity reads newOrder's optional notBefore/notAfter (RFC 3339);
// the profile's maximum lifetime is checked by its rules (CheckValidity).
func parseValidity(nb, na string, now time.Time) (time.Time, time.Time, *Problem) {
	var notBefore, notAfter time.Time
	var err error
	if nb != "" {
		if notBefore, err = time.Parse(time.RFC3339, nb); err != nil {
			return notBefore, notAfter, malformed("notBefore %q is not an RFC 3339 date", nb)
		}
	}
	if na != "" {
		if notAfter, err = time.Parse(time.RFC3339, na); err != nil {
			return notBefore, notAfter, malformed("notAfter %q is not an RFC 3339 date", na)
		}
		if !notAfter.After(now) {
			return notBefore, notAfter, malformed("notAfter %s is in the past", na)
		}
	}
	start := notBefore
	if start.IsZero() {
		start = now
	}
	if !notAfter.IsZero() && !notAfter.After(start) {
		return notBefore, notAfter, malformed("notAfter %s must be later than notBefore %s", na, start.Format(time.RFC3339))
	}
	if !notBefore.IsZero() && notBefore.After(now.Add(7*24*time.Hour)) {
		return notBefore, notAfter, malformed("notBefore %s is more than 7 days ahead", nb)
	}
	// The CA/Browser Forum allows backdating by at most 48 hours.
	if !notBefore.IsZero() && notBefore.Before(now.Add(-48*time.Hour)) {
		return notBefore, notAfter, malformed("notBefore %s is more than 48 hours in the past; certificates are not backdated further", nb)
	}
	return notBefore.UTC(), notAfter.UTC(), nil
}

// loadOrder fetches an order of the requesting account. Another account's
// order is reported as missing so that nothing about it leaks.
func (s *Server) loadOrder(r *http.Request, req *request, id string) (*storage.Order, *Problem) {
	o, err := s.getOrder(r.Context(), req, id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && o.AccountID != req.account.ID) {
		return nil, notFound("no order %q for this account", id)
	}
	if err != nil {
		return nil, storeProblem("loading order", err)
	}
	logWith(r, "order", o.ID)
	return s.refreshOrder(r.Context(), o)
}

func (s *Server) handleOrder(w http.ResponseWriter, r *http.Request, req *request) *Problem {
	if !req.postAsGet {
		return malformed("fetch an order with POST-as-GET (an empty payload)")
	}
	o, p := s.loadOrder(r, req, mux.Vars(r)["id"])
	if p != nil {
		return p
	}
	s.writeOrder(w, r, http.StatusOK, o)
	return nil
}

// refreshOrder moves a pending order to ready or invalid from the state of its
// authorizations, and any unfinished order past its expiry to invalid. The
// order's status is derived here, on read, so that a validation never has to
// find and update the orders that use its authorization.
//
// Ready is not written back: it follows from the authorizations, which are
// read every time anyway (a deactivated one must stop a ready order), and
// finalize's compare-and-swap from the stored version to processing is what
// settles a race. Storing it would cost a write on every issuance. Invalid
// is final and carries its error, so it is stored.
func (s *Server) refreshOrder(ctx context.Context, o *storage.Order) (*storage.Order, *Problem) {
	for attempt := 0; attempt < 5; attempt++ {
		next, changed, err := s.nextOrderState(ctx, o)
		if err != nil {
			return nil, storeProblem("loading authorizations", err)
		}
		if !changed || next.Status == storage.StatusReady {
			return next, nil
		}
		err = s.store.UpdateOrder(ctx, next)
		if err == nil {
			s.metrics.orders.WithLabelValues(next.Status, next.Brand).Inc()
			return next, nil
		}
		if !errors.Is(err, storage.ErrConflict) {
			return nil, storeProblem("updating order", err)
		}
		if o, err = s.store.GetOrder(ctx, o.ID); err != nil {
			return nil, storeProblem("reloading order", err)
		}
	}
	return o, nil
}

func (s *Server) nextOrderState(ctx context.Context, o *storage.Order) (*storage.Order, bool, error) {
	if o.Status == storage.StatusProcessing {
		return s.orphanState(ctx, o)
	}
	if o.Status != storage.StatusPending && o.Status != storage.StatusReady {
		return o, false, nil
	}
	next := *o
	if time.Now().After(o.Expires) {
		next.Status = storage.StatusInvalid
		next.Error = &storage.Problem{Type: "malformed", Detail: fmt.Sprintf("order expired at %s before it was finalized", o.Expires.UTC().Format(time.RFC3339))}
		return &next, true, nil
	}
	// A ready order is checked again too: an authorization deactivated
	// since (RFC 8555 §7.5.2) must not be used to finalize it.
	allValid := true
	for _, id := range o.AuthzIDs {
		a, err := s.store.GetAuthorization(ctx, id)
		if err != nil {
			return nil, false, fmt.Errorf("authorization %s: %w", id, err)
		}
		switch s.authzStatus(a) {
		case storage.StatusValid:
		case storage.StatusPending:
			allValid = false
		default:
			next.Status = storage.StatusInvalid
			next.Error = authzFailure(a)
			return &next, true, nil
		}
	}
	if !allValid || o.Status == storage.StatusReady {
		return o, false, nil
	}
	next.Status = storage.StatusReady
	return &next, true, nil
}

// authzFailure explains why an order cannot proceed, from its failed authorization.
func authzFailure(a *storage.Authorization) *storage.Problem {
	id := a.Identifier
	for _, c := range a.Challenges {
		if c.Status == storage.StatusInvalid && c.Error != nil {
			p := *c.Error
			p.Identifier = &id
			return &p
		}
	}
	return &storage.Problem{Type: "unauthorized", Detail: fmt.Sprintf("authorization for %s is %s", id.Value, a.Status), Identifier: &id}
}

// orphanRecheck is how long orphanState waits before it looks for the job
// a second time.
const orphanRecheck = time.Second

// orphanState finds an order whose issuance was lost: processing for longer
// than a job lease, and no job left to finish it. Finalize stores the job
// before the order moves and a job ends only after moving it, so this takes
// an instance dying in the few milliseconds between FinishJob losing the
// order's move and re-queueing the job (jobs.go). The CSR lived only in the
// job, so the order cannot be issued any more: it becomes invalid, and the
// client's next poll tells it to start over instead of polling for ever.
// Orders stored before FinalizedAt existed are left alone.
func (s *Server) orphanState(ctx context.Context, o *storage.Order) (*storage.Order, bool, error) {
	if o.FinalizedAt.IsZero() || time.Since(o.FinalizedAt) <= s.cfg.JobLease {
		return o, false, nil
	}
	// FinishJob deletes a job before the order's move is known and
	// re-queues it a round trip later if the move failed (a conflicting
	// write, such as a review decision): one look could fall in that gap.
	// So the job must be missing twice, a second apart.
	for look := range 2 {
		if look > 0 && !sleep(ctx, orphanRecheck) {
			return o, false, nil
		}
		_, err := s.store.GetJob(ctx, o.ID)
		if !errors.Is(err, storage.ErrNotFound) {
			// Its job exists (a brand taking its time), or the store
			// cannot tell now: nothing to decide on this read.
			return o, false, nil
		}
	}
	s.log.Warn("order processing with no issuance job left; marking it invalid", "order", o.ID, "account", o.AccountID, "finalized_at", o.FinalizedAt)
	next := *o
	next.Status = storage.StatusInvalid
	next.Error = &storage.Problem{Type: "serverInternal", Detail: fmt.Sprintf(
		"the issuance of this order, finalized at %s, was lost with the gateway instance running it; create a new order and finalize it again",
		o.FinalizedAt.UTC().Format(time.RFC3339))}
	return &next, true, nil
}
