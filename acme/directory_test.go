package acme_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/acmegw/acmegw/storage/memory"
)

func TestDirectory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, memory.New())
	r := e.get(t, e.srv.URL+"/directory")
	var raw map[string]json.RawMessage
	r.mustJSON(t, http.StatusOK, &raw)
	for _, k := range []string{"newNonce", "newAccount", "newOrder", "revokeCert", "keyChange", "meta"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("directory lacks %q: %s", k, r.Body)
		}
	}
	for name, u := range map[string]string{
		"newNonce": e.dir.NewNonce, "newAccount": e.dir.NewAccount, "newOrder": e.dir.NewOrder,
		"revokeCert": e.dir.RevokeCert, "keyChange": e.dir.KeyChange,
	} {
		if !strings.HasPrefix(u, e.srv.URL+"/") {
			t.Errorf("%s = %q, not below %s", name, u, e.srv.URL)
		}
	}
	m := e.dir.Meta
	if len(m.Profiles) != 2 || m.Profiles["default"] != "built-in CA, 90 days" || m.Profiles["shortlived"] == "" {
		t.Errorf("meta.profiles = %v", m.Profiles)
	}
	if m.TermsOfService == "" || m.ExternalAccountRequired {
		t.Errorf("meta = %+v", m)
	}

	t.Run("POST-as-GET", func(t *testing.T) {
		a := e.newAccount(t)
		r := a.post(t, e.srv.URL+"/directory", nil)
		var d directoryDoc
		r.mustJSON(t, http.StatusOK, &d)
		if d.NewOrder != e.dir.NewOrder {
			t.Errorf("POST-as-GET directory: %s", r.Body)
		}
	})
}

func TestNewNonce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, memory.New())
	seen := map[string]bool{}
	for _, c := range []struct {
		method string
		status int
	}{{http.MethodHead, http.StatusOK}, {http.MethodGet, http.StatusNoContent}, {http.MethodHead, http.StatusOK}} {
		r, err := e.do(c.method, e.dir.NewNonce, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != c.status {
			t.Errorf("%s newNonce: status %d, want %d", c.method, r.Status, c.status)
		}
		n := r.Header.Get("Replay-Nonce")
		if n == "" || seen[n] || strings.Trim(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Errorf("%s newNonce: nonce %q (not fresh base64url)", c.method, n)
		}
		seen[n] = true
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s newNonce: Cache-Control %q, want no-store", c.method, cc)
		}
		sameStrings(t, `Link rel="index"`, links(r.Header, "index"), []string{e.srv.URL + "/directory"})
		if len(r.Body) != 0 {
			t.Errorf("%s newNonce has a body: %q", c.method, r.Body)
		}
	}

	t.Run("POST to newNonce", func(t *testing.T) {
		r := e.postRaw(t, e.dir.NewNonce, []byte("{}"))
		r.wantProblem(t, http.StatusMethodNotAllowed, "malformed")
	})
	t.Run("POST to an unknown resource", func(t *testing.T) {
		r := e.postRaw(t, e.srv.URL+"/acme/nothing-here", []byte("{}"))
		r.wantProblem(t, http.StatusNotFound, "malformed", "/acme/nothing-here")
	})
}
