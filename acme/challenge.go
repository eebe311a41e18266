package acme

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/mux"

	"github.com/acmegw/acmegw/storage"
	"github.com/acmegw/acmegw/validation"
)

// staleValidation is how long a challenge may stay "processing" before it is
// assumed that the instance validating it died, and it is validated again.
const staleValidation = time.Minute

// resultRetryBudget bounds how long a finished validation keeps trying to
// record its result while the store fails; well under staleValidation.
const resultRetryBudget = 30 * time.Second

// challengeJSON is the challenge resource of RFC 8555 §7.1.5.
type challengeJSON struct {
	Type      string   `json:"type"`
	URL       string   `json:"url"`
	Status    string   `json:"status"`
	Token     string   `json:"token"`
	Validated string   `json:"validated,omitempty"`
	Error     *Problem `json:"error,omitempty"`
}

func (s *Server) renderChallenge(r *http.Request, a *storage.Authorization, c *storage.Challenge) challengeJSON {
	out := challengeJSON{
		Type:   c.Type,
		URL:    s.baseURL(r) + challengePath + a.ID + "/" + c.ID,
		Status: c.Status,
		Token:  c.Token,
		Error:  problemFromStored(c.Error),
	}
	if !c.Validated.IsZero() {
		out.Validated = c.Validated.UTC().Format(time.RFC3339)
	}
	return out
}

func findChallenge(a *storage.Authorization, id string) *storage.Challenge {
	for i := range a.Challenges {
		if a.Challenges[i].ID == id {
			return &a.Challenges[i]
		}
	}
	return nil
}

// handleChallenge serves POST-as-GET and "respond to challenge" (RFC 8555 §7.5.1).
// A validation that finishes within ValidationWait is answered in this very
// response, so that a client polling once already sees the result.
func (s *Server) handleChallenge(w http.ResponseWriter, r *http.Request, req *request) *Problem {
	vars := mux.Vars(r)
	a, p := s.loadAuthz(r, req, vars["authz"])
	if p != nil {
		return p
	}
	c := findChallenge(a, vars["id"])
	if c == nil {
		return notFound("no challenge %q in authorization %q", vars["id"], a.ID)
	}
	if req.postAsGet {
		s.resumeStaleValidation(r, a)
	} else if c.Status == storage.StatusPending {
		if st := s.authzStatus(a); st != storage.StatusPending {
			return malformed("authorization for %s is %s; its challenges can no longer be answered", a.Identifier.Value, st)
		}
		if p := s.limitValidation(r.Context(), a); p != nil {
			return p
		}
		run, p := s.startValidation(r.Context(), a, c.ID, req.account.Thumbprint, s.accountURL(r, req.account.ID))
		if p != nil {
			return p
		}
		if run != nil {
			a = s.awaitValidation(r, a, run)
			c = findChallenge(a, vars["id"])
		}
	}
	// Any other state is answered as it is: repeating a POST is harmless.
	if c.Status == storage.StatusProcessing {
		w.Header().Set("Retry-After", "1")
	}
	addLink(w, s.authzURL(r, a.ID), "up")
	addLink(w, s.baseURL(r)+directoryPath, "index")
	s.writeJSON(w, r, http.StatusOK, s.renderChallenge(r, a, c))
	return nil
}

// validationRun is a validation started by this instance. done is closed
// when it has finished; authz is then the authorization as finishValidation
// stored it, or nil if it stored nothing (the request re-reads it then).
type validationRun struct {
	done  chan struct{}
	authz *storage.Authorization
}

// startValidation marks the challenge processing (compare-and-swap, so only
// one instance validates it) and launches the validation. It returns the
// run, or nil if another request won.
func (s *Server) startValidation(ctx context.Context, a *storage.Authorization, challID, thumbprint, accountURI string) (*validationRun, *Problem) {
	c := findChallenge(a, challID)
	c.Status = storage.StatusProcessing
	c.Started = time.Now().UTC()
	c.Error = nil
	err := s.store.UpdateAuthorization(ctx, a)
	if errors.Is(err, storage.ErrConflict) {
		return nil, nil
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, storeProblem("starting validation", err)
	}
	// Any other error leaves the outcome unknown: the write may have
	// happened (its reply lost with the connection). The validation runs
	// all the same, and finishValidation records its result only on a
	// challenge that did become processing, which would otherwise wait a
	// minute for resumeStaleValidation.
	vc := validation.Challenge{
		Type:             c.Type,
		IdentifierType:   a.Identifier.Type,
		Identifier:       a.Identifier.Value,
		Token:            c.Token,
		KeyAuthorization: c.Token + "." + thumbprint,
	}
	var caaChecked time.Time
	run := &validationRun{done: make(chan struct{})}
	// The goroutine records its result starting from this copy, whose
	// version is the one just stored, so it need not read the
	// authorization again; a conflict makes it re-read.
	var processing *storage.Authorization
	if err == nil {
		processing = cloneAuthz(a)
	}
	s.validations.Add(1)
	go func() {
		defer s.validations.Done()
		defer close(run.done)
		err := s.cfg.Validator.Validate(s.baseCtx, vc)
		if err == nil && vc.IdentifierType == "dns" {
			// CAA is checked once control is proven, as RFC 8659 wants it
			// checked close to the validation; finalize repeats it if stale.
			err = s.cfg.Validator.CheckCAA(s.baseCtx, validation.CAARequest{
				Name: vc.Identifier, Wildcard: a.Wildcard, IssuerDomains: a.CAAIdentities,
				AccountURI: accountURI, Method: vc.Type,
			})
			if err == nil {
				caaChecked = time.Now().UTC()
			}
		}
		run.authz = s.finishValidation(a.ID, challID, processing, err, caaChecked)
	}()
	if err != nil {
		return nil, storeProblem("starting validation", err)
	}
	return run, nil
}

// cloneAuthz copies an authorization deeply enough that the copy's status
// and challenges can change without touching the original.
func cloneAuthz(a *storage.Authorization) *storage.Authorization {
	c := *a
	c.Challenges = slices.Clone(a.Challenges)
	c.CAAIdentities = slices.Clone(a.CAAIdentities)
	return &c
}

// awaitValidation waits a little for a validation and returns the fresh authorization.
func (s *Server) awaitValidation(r *http.Request, a *storage.Authorization, run *validationRun) *storage.Authorization {
	t := time.NewTimer(s.cfg.ValidationWait)
	defer t.Stop()
	select {
	case <-run.done:
		if run.authz != nil {
			return run.authz
		}
	case <-t.C:
	case <-r.Context().Done():
	}
	if fresh, err := s.store.GetAuthorization(r.Context(), a.ID); err == nil {
		return fresh
	}
	return a
}

// finishValidation records the result on the challenge and its authorization together.
// A store that fails (an outage, a failover) is retried with backoff for up
// to resultRetryBudget, so that a brief outage does not leave the challenge
// processing until resumeStaleValidation redoes it a minute later. Shutdown
// ends the retries; the stale-validation path covers that case.
//
// cur, when not nil, is the authorization as the processing mark stored it:
// the first attempt starts from it instead of reading it back. It returns
// the authorization as stored with the result, or nil if it stored none.
func (s *Server) finishValidation(authzID, challID string, cur *storage.Authorization, verr error, caaChecked time.Time) *storage.Authorization {
	ctx, cancel := context.WithTimeout(context.Background(), resultRetryBudget)
	defer cancel()
	log := s.log.With("authz", authzID, "challenge", challID)
	retryCtx, stop := context.WithCancel(ctx)
	defer stop()
	defer context.AfterFunc(s.baseCtx, stop)()
	wait := 100 * time.Millisecond
	storeDown := func(err error) bool {
		log.Warn("recording validation result; will retry", "err", err, "retry_in", wait)
		ok := sleep(retryCtx, wait)
		wait = min(wait*2, 2*time.Second)
		return ok
	}
	for attempt := 0; attempt < 5; {
		a, err := cur, error(nil)
		cur = nil
		if a == nil {
			a, err = s.store.GetAuthorization(ctx, authzID)
		}
		if err != nil {
			if !errors.Is(err, storage.ErrNotFound) && storeDown(err) {
				continue
			}
			log.Error("recording validation result", "err", err)
			return nil
		}
		c := findChallenge(a, challID)
		if c == nil || c.Status != storage.StatusProcessing {
			return nil
		}
		now := time.Now().UTC()
		// Another challenge of this authorization may have finished first
		// (or the client deactivated it): the authorization's outcome is
		// final then (RFC 8555 §7.1.6), only this challenge's is recorded.
		decided := a.Status != storage.StatusPending
		if verr == nil {
			c.Status, c.Validated = storage.StatusValid, now
			if !decided {
				a.Status = storage.StatusValid
				a.Expires = now.Add(s.cfg.AuthzValidity)
				a.CAACheckedAt = caaChecked
			}
		} else {
			c.Status = storage.StatusInvalid
			c.Error = validationProblem(verr)
			if !decided {
				a.Status = storage.StatusInvalid
			}
		}
		err = s.recordAuthz(ctx, a)
		if err == nil {
			if verr != nil && c.Error.Type != "serverInternal" {
				s.spendFailedValidation(ctx, a)
			}
			s.metrics.validations.WithLabelValues(c.Type, c.Status).Inc()
			log.Info("validation finished", "type", c.Type, "identifier", a.Identifier.Value, "status", c.Status)
			return a
		}
		if !errors.Is(err, storage.ErrConflict) {
			if storeDown(err) {
				continue
			}
			log.Error("recording validation result", "err", err)
			return nil
		}
		attempt++
	}
	return nil
}

func validationProblem(err error) *storage.Problem {
	var ve *validation.Error
	if errors.As(err, &ve) {
		return &storage.Problem{Type: ve.Type, Detail: ve.Detail}
	}
	return &storage.Problem{Type: "serverInternal", Detail: "validation failed: " + err.Error()}
}

// resumeStaleValidation restarts a validation whose instance died while it
// was processing, so the client polling it does not wait forever.
func (s *Server) resumeStaleValidation(r *http.Request, a *storage.Authorization) {
	if a.Status != storage.StatusPending {
		return
	}
	for _, c := range a.Challenges {
		if c.Status == storage.StatusProcessing && time.Since(c.Started) > staleValidation {
			acct, err := s.store.GetAccount(context.Background(), a.AccountID)
			if err != nil {
				return
			}
			_, _ = s.startValidation(context.Background(), a, c.ID, acct.Thumbprint, s.accountURL(r, acct.ID))
			return
		}
	}
}
