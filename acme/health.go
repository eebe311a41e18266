package acme

import (
	"context"
	"net/http"
	"time"
)

// handleHealthz says the process is alive; it checks nothing else so that a
// Redis outage does not get healthy instances restarted.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// handleReadyz says whether this instance can serve ACME now: the store
// answers and the brands are loaded. Load balancers take it out otherwise.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.store.Ping(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("storage unreachable\n"))
		return
	}
	if len(s.cfg.Router.Names()) == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("no profiles loaded\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}
