package acme

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/acmegw/acmegw/storage"
)

// authzJSON is the authorization resource of RFC 8555 §7.1.4.
type authzJSON struct {
	Identifier storage.Identifier `json:"identifier"`
	Status     string             `json:"status"`
	Expires    string             `json:"expires"`
	Challenges []challengeJSON    `json:"challenges"`
	Wildcard   bool               `json:"wildcard,omitempty"`
}

// newAuthorization makes a pending authorization with the challenges the
// identifier can use: dns-01 only for wildcards (CA/B Forum), no dns-01 for
// IP addresses (RFC 8738).
func newAuthorization(accountID string, id storage.Identifier, expires time.Time, caaIdentities []string) *storage.Authorization {
	a := &storage.Authorization{
		ID:            newID(12),
		AccountID:     accountID,
		Identifier:    id,
		Status:        storage.StatusPending,
		Expires:       expires,
		CAAIdentities: caaIdentities,
	}
	var types []string
	switch {
	case id.Type == "ip":
		types = []string{"http-01", "tls-alpn-01"}
	case strings.HasPrefix(id.Value, "*."):
		a.Identifier.Value = strings.TrimPrefix(id.Value, "*.")
		a.Wildcard = true
		types = []string{"dns-01"}
	default:
		types = []string{"http-01", "dns-01", "tls-alpn-01"}
	}
	for _, t := range types {
		a.Challenges = append(a.Challenges, storage.Challenge{
			ID: newID(8), Type: t, Token: newID(32), Status: storage.StatusPending,
		})
	}
	return a
}

// authzStatus is the stored status, or "expired" once a pending or valid
// authorization has outlived its expiry.
func (s *Server) authzStatus(a *storage.Authorization) string {
	if (a.Status == storage.StatusPending || a.Status == storage.StatusValid) && time.Now().After(a.Expires) {
		return storage.StatusExpired
	}
	return a.Status
}

func (s *Server) renderAuthz(r *http.Request, a *storage.Authorization) authzJSON {
	out := authzJSON{
		Identifier: a.Identifier,
		Status:     s.authzStatus(a),
		Expires:    a.Expires.UTC().Format(time.RFC3339),
		Wildcard:   a.Wildcard,
		Challenges: make([]challengeJSON, len(a.Challenges)),
	}
	for i := range a.Challenges {
		out.Challenges[i] = s.renderChallenge(r, a, &a.Challenges[i])
	}
	return out
}

func (s *Server) authzURL(r *http.Request, id string) string { return s.baseURL(r) + authzPath + id }

// loadAuthz fetches an authorization of the requesting account; another
// account's authorization is reported as missing.
func (s *Server) loadAuthz(r *http.Request, req *request, id string) (*storage.Authorization, *Problem) {
	a, err := s.getAuthorization(r.Context(), req, id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && a.AccountID != req.account.ID) {
		return nil, notFound("no authorization %q for this account", id)
	}
	if err != nil {
		return nil, storeProblem("loading authorization", err)
	}
	return a, nil
}

// handleAuthorization serves POST-as-GET and deactivation (RFC 8555 §7.5.2).
func (s *Server) handleAuthorization(w http.ResponseWriter, r *http.Request, req *request) *Problem {
	a, p := s.loadAuthz(r, req, mux.Vars(r)["id"])
	if p != nil {
		return p
	}
	if !req.postAsGet {
		var in struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(req.payload, &in); err != nil {
			return malformed("authorization update payload: %v", err)
		}
		if in.Status != storage.StatusDeactivated {
			return malformed("an authorization's status can only be set to \"deactivated\"")
		}
		if st := s.authzStatus(a); st != storage.StatusPending && st != storage.StatusValid {
			return malformed("only a pending or valid authorization can be deactivated; this one is %s", st)
		}
		a.Status = storage.StatusDeactivated
		if err := s.store.UpdateAuthorization(r.Context(), a); err != nil {
			if errors.Is(err, storage.ErrConflict) {
				return newProblem("malformed", http.StatusConflict, "the authorization changed meanwhile; fetch it and retry")
			}
			return storeProblem("deactivating authorization", err)
		}
	} else {
		s.resumeStaleValidation(r, a)
	}
	if s.authzStatus(a) == storage.StatusPending && hasProcessing(a) {
		w.Header().Set("Retry-After", "1")
	}
	addLink(w, s.baseURL(r)+directoryPath, "index")
	s.writeJSON(w, r, http.StatusOK, s.renderAuthz(r, a))
	return nil
}

func hasProcessing(a *storage.Authorization) bool {
	for _, c := range a.Challenges {
		if c.Status == storage.StatusProcessing {
			return true
		}
	}
	return false
}
