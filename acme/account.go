package acme

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/gorilla/mux"

	"github.com/acmegw/acmegw/storage"
)

// accountJSON is the account resource of RFC 8555 §7.1.2.
type accountJSON struct {
	Status               string   `json:"status"`
	Contact              []string `json:"contact,omitempty"`
	TermsOfServiceAgreed bool     `json:"termsOfServiceAgreed,omitempty"`
	Orders               string   `json:"orders"`
	CreatedAt            string   `json:"createdAt,omitempty"`
}

func (s *Server) accountURL(r *http.Request, id string) string {
	return s.baseURL(r) + accountPath + id
}

func (s *Server) renderAccount(r *http.Request, a *storage.Account) accountJSON {
	return accountJSON{
		Status:               a.Status,
		Contact:              a.Contact,
		TermsOfServiceAgreed: a.TermsAgreed,
		Orders:               s.accountURL(r, a.ID) + "/orders",
		CreatedAt:            a.CreatedAt.UTC().Format(time.RFC3339),
	}
}

func (s *Server) handleNewAccount(w http.ResponseWriter, r *http.Request, req *request) *Problem {
	var in struct {
		Contact              []string        `json:"contact"`
		TermsOfServiceAgreed bool            `json:"termsOfServiceAgreed"`
		OnlyReturnExisting   bool            `json:"onlyReturnExisting"`
		ExternalAccountBind  json.RawMessage `json:"externalAccountBinding"`
	}
	if req.postAsGet {
		return malformed("newAccount needs a JSON payload, not an empty POST-as-GET")
	}
	if err := json.Unmarshal(req.payload, &in); err != nil {
		return malformed("newAccount payload: %v", err)
	}
	tp, err := thumbprint(req.jwk)
	if err != nil {
		return badPublicKey("%v", err)
	}
	existing, err := s.store.GetAccountByThumbprint(r.Context(), tp)
	switch {
	case err == nil:
		return s.answerExistingAccount(w, r, existing)
	case !errors.Is(err, storage.ErrNotFound):
		return storeProblem("looking up account key", err)
	}
	if in.OnlyReturnExisting {
		return accountDoesNotExist("no account exists with this key")
	}
	var eabKey *storage.EABKey
	if len(in.ExternalAccountBind) > 0 && string(in.ExternalAccountBind) != "null" {
		var p *Problem
		if eabKey, p = s.verifyEAB(r.Context(), in.ExternalAccountBind, req.url, req.jwk); p != nil {
			return p
		}
	} else if s.cfg.ExternalAccountRequired {
		return newProblem("externalAccountRequired", http.StatusUnauthorized,
			"this server requires an External Account Binding; ask the operator for a key id and MAC key")
	}
	if p := checkContacts(in.Contact); p != nil {
		return p
	}
	if p := s.limitNewAccount(r); p != nil {
		return p
	}
	keyJSON, err := json.Marshal(req.jwk.Public())
	if err != nil {
		return badPublicKey("encoding key: %v", err)
	}
	acct := &storage.Account{
		ID:          newID(12),
		KeyJWK:      keyJSON,
		Thumbprint:  tp,
		Status:      storage.StatusValid,
		Contact:     in.Contact,
		TermsAgreed: in.TermsOfServiceAgreed,
		CreatedAt:   time.Now().UTC(),
	}
	if eabKey != nil {
		acct.EABKeyID = eabKey.KID
	}
	err = s.store.CreateAccount(r.Context(), acct)
	if errors.Is(err, storage.ErrExists) {
		// Another request registered the same key a moment ago.
		existing, err := s.store.GetAccountByThumbprint(r.Context(), tp)
		if err != nil {
			return storeProblem("looking up account key", err)
		}
		return s.answerExistingAccount(w, r, existing)
	}
	if err != nil {
		return storeProblem("creating account", err)
	}
	logWith(r, "account", acct.ID)
	logFrom(r).Info("account created")
	w.Header().Set("Location", s.accountURL(r, acct.ID))
	addLink(w, s.baseURL(r)+directoryPath, "index")
	s.writeJSON(w, r, http.StatusCreated, s.renderAccount(r, acct))
	return nil
}

func (s *Server) answerExistingAccount(w http.ResponseWriter, r *http.Request, a *storage.Account) *Problem {
	if a.Status != storage.StatusValid {
		return unauthorized("the account with this key is %s", a.Status)
	}
	w.Header().Set("Location", s.accountURL(r, a.ID))
	s.writeJSON(w, r, http.StatusOK, s.renderAccount(r, a))
	return nil
}

// checkContacts accepts mailto: addresses only, as Let's Encrypt does; other
// schemes would never be used and hfields could smuggle headers into mail.
func checkContacts(contacts []string) *Problem {
	if len(contacts) > 10 {
		return invalidContact("at most 10 contacts are accepted, got %d", len(contacts))
	}
	for _, c := range contacts {
		addr, ok := strings.CutPrefix(c, "mailto:")
		if !ok {
			return unsupportedContact("contact %q is not a mailto: URL; only mailto: contacts are supported", c)
		}
		if strings.ContainsAny(addr, "?,") {
			return invalidContact("contact %q must be one plain address without hfields", c)
		}
		parsed, err := mail.ParseAddress(addr)
		if err != nil || parsed.Address != addr || parsed.Name != "" {
			return invalidContact("contact %q is not a valid e-mail address", c)
		}
	}
	return nil
}

// handleAccount serves POST-as-GET, contact updates and deactivation (RFC 8555 §7.3.2, §7.3.6).
func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request, req *request) *Problem {
	if mux.Vars(r)["id"] != req.account.ID {
		return unauthorized("the request is signed by another account than the one it addresses")
	}
	acct := req.account
	if !req.postAsGet {
		var in struct {
			Contact *[]string `json:"contact"`
			Status  string    `json:"status"`
		}
		if err := json.Unmarshal(req.payload, &in); err != nil {
			return malformed("account update payload: %v", err)
		}
		if in.Status != "" && in.Status != storage.StatusDeactivated {
			return malformed("an account's status can only be set to \"deactivated\", not %q", in.Status)
		}
		if in.Contact != nil {
			if p := checkContacts(*in.Contact); p != nil {
				return p
			}
		}
		var p *Problem
		acct, p = s.updateAccount(r.Context(), acct, func(a *storage.Account) {
			if in.Contact != nil {
				a.Contact = *in.Contact
			}
			if in.Status == storage.StatusDeactivated {
				a.Status = storage.StatusDeactivated
			}
		})
		if p != nil {
			return p
		}
		if in.Status == storage.StatusDeactivated {
			logFrom(r).Info("account deactivated")
		}
	}
	w.Header().Set("Location", s.accountURL(r, acct.ID))
	s.writeJSON(w, r, http.StatusOK, s.renderAccount(r, acct))
	return nil
}

// updateAccount applies change with compare-and-swap, re-reading on conflict.
func (s *Server) updateAccount(ctx context.Context, a *storage.Account, change func(*storage.Account)) (*storage.Account, *Problem) {
	for attempt := 0; ; attempt++ {
		change(a)
		err := s.store.UpdateAccount(ctx, a)
		if err == nil {
			return a, nil
		}
		if !errors.Is(err, storage.ErrConflict) || attempt == 4 {
			return nil, storeProblem("updating account", err)
		}
		if a, err = s.store.GetAccount(ctx, a.ID); err != nil {
			return nil, storeProblem("reloading account", err)
		}
	}
}

// handleKeyChange rolls an account over to a new key (RFC 8555 §7.3.5).
func (s *Server) handleKeyChange(w http.ResponseWriter, r *http.Request, req *request) *Problem {
	inner, hdr, p := parseJWS(req.payload)
	if p != nil {
		p.Detail = "inner JWS: " + p.Detail
		return p
	}
	sig := inner.Signatures[0].Protected
	if sig.JSONWebKey == nil || sig.KeyID != "" {
		return malformed("inner JWS must carry the new key in \"jwk\" and no \"kid\"")
	}
	if hdr.url != req.url {
		return malformed("inner JWS \"url\" %q differs from the outer %q", hdr.url, req.url)
	}
	if p := checkAccountKey(sig.JSONWebKey, sig.Algorithm); p != nil {
		return p
	}
	payload, err := inner.Verify(sig.JSONWebKey)
	if err != nil {
		return malformed("inner JWS signature does not verify with its \"jwk\"")
	}
	var in struct {
		Account string          `json:"account"`
		OldKey  json.RawMessage `json:"oldKey"`
	}
	if err := json.Unmarshal(payload, &in); err != nil {
		return malformed("inner JWS payload: %v", err)
	}
	acct := req.account
	if in.Account != s.accountURL(r, acct.ID) {
		return unauthorized("inner JWS names account %q, but the outer JWS is signed by %q", in.Account, s.accountURL(r, acct.ID))
	}
	var oldKey jose.JSONWebKey
	if err := oldKey.UnmarshalJSON(in.OldKey); err != nil {
		return malformed("inner JWS \"oldKey\" is not a JWK: %v", err)
	}
	oldTP, err := thumbprint(&oldKey)
	if err != nil || oldTP != acct.Thumbprint {
		return unauthorized("\"oldKey\" is not the account's current key")
	}
	newTP, err := thumbprint(sig.JSONWebKey)
	if err != nil {
		return badPublicKey("%v", err)
	}
	if other, err := s.store.GetAccountByThumbprint(r.Context(), newTP); err == nil {
		return conflict(s.accountURL(r, other.ID), "the new key already belongs to an account")
	}
	keyJSON, err := json.Marshal(sig.JSONWebKey.Public())
	if err != nil {
		return badPublicKey("encoding key: %v", err)
	}
	acct.KeyJWK, acct.Thumbprint = keyJSON, newTP
	err = s.store.UpdateAccount(r.Context(), acct)
	if errors.Is(err, storage.ErrExists) {
		return conflict("", "the new key already belongs to an account")
	}
	if errors.Is(err, storage.ErrConflict) {
		return newProblem("malformed", http.StatusConflict, "the account changed during the key change; retry")
	}
	if err != nil {
		return storeProblem("changing account key", err)
	}
	logFrom(r).Info("account key changed")
	w.Header().Set("Location", s.accountURL(r, acct.ID))
	s.writeJSON(w, r, http.StatusOK, s.renderAccount(r, acct))
	return nil
}

// handleOrderList serves the account's orders, 50 a page (RFC 8555 §7.1.2.1).
func (s *Server) handleOrderList(w http.ResponseWriter, r *http.Request, req *request) *Problem {
	if mux.Vars(r)["id"] != req.account.ID {
		return unauthorized("the request is signed by another account than the one it addresses")
	}
	ids, next, err := s.store.ListOrders(r.Context(), req.account.ID, r.URL.Query().Get("cursor"), 50)
	if err != nil {
		return storeProblem("listing orders", err)
	}
	urls := make([]string, len(ids))
	for i, id := range ids {
		urls[i] = s.baseURL(r) + orderPath + id
	}
	if next != "" {
		addLink(w, s.accountURL(r, req.account.ID)+"/orders?cursor="+url.QueryEscape(next), "next")
	}
	s.writeJSON(w, r, http.StatusOK, map[string][]string{"orders": urls})
	return nil
}
