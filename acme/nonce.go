package acme

import (
	"net/http"
)

// issueNonce makes a nonce redeemable once, on any instance sharing the store.
func (s *Server) issueNonce(r *http.Request) (string, *Problem) {
	n := newID(16)
	if err := s.store.AddNonce(r.Context(), n, s.cfg.NonceTTL); err != nil {
		return "", storeProblem("issuing nonce", err)
	}
	return n, nil
}

// addNonce sets Replay-Nonce, which RFC 8555 §6.5 wants on every POST
// response, errors included: certbot and dehydrated retry with it.
func (s *Server) addNonce(w http.ResponseWriter, r *http.Request) *Problem {
	n, p := s.issueNonce(r)
	if p != nil {
		return p
	}
	w.Header().Set("Replay-Nonce", n)
	w.Header().Set("Cache-Control", "no-store")
	return nil
}

func (s *Server) addNonceIfPost(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		_ = s.addNonce(w, r)
	}
}

func (s *Server) handleNewNonce(w http.ResponseWriter, r *http.Request) {
	if p := s.addNonce(w, r); p != nil {
		writeProblem(w, r, p)
		return
	}
	addLink(w, s.baseURL(r)+directoryPath, "index")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
