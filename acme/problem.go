package acme

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/acmegw/acmegw/storage"
)

const errorNS = "urn:ietf:params:acme:error:"

// Problem is an RFC 7807 problem document with ACME's error types (RFC 8555 §6.7).
// Handlers return a *Problem; writeProblem turns it into the response.
type Problem struct {
	Type        string              `json:"type"`
	Detail      string              `json:"detail"`
	Status      int                 `json:"status"`
	Identifier  *storage.Identifier `json:"identifier,omitempty"`
	Subproblems []*Problem          `json:"subproblems,omitempty"`

	// retryAfter, when set, is sent as the Retry-After header.
	retryAfter time.Duration
	// location, when set, is sent as the Location header (e.g. the account
	// that already holds a key, on keyChange conflicts).
	location string
	// storeFailure marks problems caused by the store, for metrics.
	storeFailure bool
	// cause is the error behind a server-side problem: logged for the
	// operator, never sent to the client (it may name internal hosts).
	cause error
}

func (p *Problem) Error() string { return p.Type + ": " + p.Detail }

func newProblem(kind string, status int, format string, args ...any) *Problem {
	return &Problem{Type: errorNS + kind, Status: status, Detail: fmt.Sprintf(format, args...)}
}

func malformed(format string, args ...any) *Problem {
	return newProblem("malformed", http.StatusBadRequest, format, args...)
}
func badNonce(format string, args ...any) *Problem {
	return newProblem("badNonce", http.StatusBadRequest, format, args...)
}
func badSignatureAlgorithm(format string, args ...any) *Problem {
	return newProblem("badSignatureAlgorithm", http.StatusBadRequest, format, args...)
}
func badPublicKey(format string, args ...any) *Problem {
	return newProblem("badPublicKey", http.StatusBadRequest, format, args...)
}
func badCSR(format string, args ...any) *Problem {
	return newProblem("badCSR", http.StatusBadRequest, format, args...)
}
func badRevocationReason(format string, args ...any) *Problem {
	return newProblem("badRevocationReason", http.StatusBadRequest, format, args...)
}
func alreadyRevoked(format string, args ...any) *Problem {
	return newProblem("alreadyRevoked", http.StatusBadRequest, format, args...)
}
func unauthorized(format string, args ...any) *Problem {
	return newProblem("unauthorized", http.StatusForbidden, format, args...)
}
func accountDoesNotExist(format string, args ...any) *Problem {
	return newProblem("accountDoesNotExist", http.StatusBadRequest, format, args...)
}
func orderNotReady(format string, args ...any) *Problem {
	return newProblem("orderNotReady", http.StatusForbidden, format, args...)
}
func rejectedIdentifier(format string, args ...any) *Problem {
	return newProblem("rejectedIdentifier", http.StatusBadRequest, format, args...)
}
func unsupportedIdentifier(format string, args ...any) *Problem {
	return newProblem("unsupportedIdentifier", http.StatusBadRequest, format, args...)
}
func invalidProfile(format string, args ...any) *Problem {
	return newProblem("invalidProfile", http.StatusBadRequest, format, args...)
}
func invalidContact(format string, args ...any) *Problem {
	return newProblem("invalidContact", http.StatusBadRequest, format, args...)
}
func unsupportedContact(format string, args ...any) *Problem {
	return newProblem("unsupportedContact", http.StatusBadRequest, format, args...)
}
func userActionRequired(format string, args ...any) *Problem {
	return newProblem("userActionRequired", http.StatusForbidden, format, args...)
}
func serverInternal(format string, args ...any) *Problem {
	return newProblem("serverInternal", http.StatusInternalServerError, format, args...)
}

// notFound is not an ACME error type; RFC 8555 leaves 404 bodies to the server
// and clients only look at the status. Using "malformed" keeps parsers happy.
func notFound(format string, args ...any) *Problem {
	return newProblem("malformed", http.StatusNotFound, format, args...)
}

func methodNotAllowed() *Problem {
	return newProblem("malformed", http.StatusMethodNotAllowed, "method not allowed")
}

// conflict is a 409 carrying the Location of the resource in the way.
func conflict(location, format string, args ...any) *Problem {
	p := newProblem("malformed", http.StatusConflict, format, args...)
	p.location = location
	return p
}

// storeProblem maps a storage failure to a problem. ErrNotFound is the caller's
// business (it knows what was missing); everything else is the server's fault,
// reported with a Retry-After so clients back off instead of failing hard.
func storeProblem(op string, err error) *Problem {
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("%s: no such resource", op)
	}
	p := serverInternal("%s: storage unavailable, try again shortly", op)
	p.Status = http.StatusServiceUnavailable
	p.retryAfter = 5 * time.Second
	p.storeFailure = true
	p.cause = err
	return p
}

// problemFromStored converts a stored problem (short type) to a document.
func problemFromStored(sp *storage.Problem) *Problem {
	if sp == nil {
		return nil
	}
	return &Problem{Type: errorNS + sp.Type, Detail: sp.Detail, Identifier: sp.Identifier, Status: statusOf(sp.Type)}
}

func statusOf(kind string) int {
	switch kind {
	case "unauthorized", "orderNotReady", "userActionRequired", "caa":
		return http.StatusForbidden
	case "serverInternal":
		return http.StatusInternalServerError
	case "rateLimited":
		return http.StatusTooManyRequests
	}
	return http.StatusBadRequest
}

func writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p.Status == 0 {
		p.Status = http.StatusInternalServerError
	}
	if p.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(p.retryAfter.Seconds())))
	}
	if p.location != "" {
		w.Header().Set("Location", p.location)
	}
	level := slog.LevelInfo
	if p.Status >= 500 {
		level = slog.LevelError
	}
	if rl, ok := r.Context().Value(logKey{}).(*requestLog); ok && rl.metrics != nil {
		rl.metrics.problems.WithLabelValues(p.Type).Inc()
		if p.storeFailure {
			rl.metrics.storeErrors.Inc()
		}
	}
	attrs := []any{"type", p.Type, "status", p.Status, "detail", p.Detail}
	if p.cause != nil {
		attrs = append(attrs, "err", p.cause)
	}
	logFrom(r).Log(r.Context(), level, "problem", attrs...)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
