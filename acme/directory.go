package acme

import (
	"net/http"
	"strings"
)

func (s *Server) handleDirectory(w http.ResponseWriter, r *http.Request) {
	// POST-as-GET of the directory is a POST too: certbot wants a nonce on it.
	s.addNonceIfPost(w, r)
	base := s.baseURL(r)
	tos := s.cfg.TermsOfService
	if tos == "" {
		tos = base + termsPath
	}
	meta := map[string]any{
		"termsOfService":          tos,
		"externalAccountRequired": s.cfg.ExternalAccountRequired,
		"profiles":                s.cfg.Router.Descriptions(),
	}
	if s.cfg.Website != "" {
		meta["website"] = s.cfg.Website
	}
	if len(s.cfg.CAAIdentities) > 0 {
		meta["caaIdentities"] = s.cfg.CAAIdentities
	}
	s.writeJSON(w, r, http.StatusOK, map[string]any{
		"newNonce":    base + newNoncePath,
		"newAccount":  base + newAccountPath,
		"newOrder":    base + newOrderPath,
		"revokeCert":  base + revokeCertPath,
		"keyChange":   base + keyChangePath,
		"renewalInfo": base + strings.TrimSuffix(renewalInfoPath, "/"),
		"meta":        meta,
	})
}

func (s *Server) handleTerms(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("This acmegw instance has no terms of service of its own; ask its operator.\n"))
}
