package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// The admin API lets the admin subcommands (eab, review) change a running
// gateway's state without a restart. It is served on a Unix socket in the
// data directory, so only users who may read the CA keys may use it; the
// same handler also runs in-process over Redis when --redis is given, so
// there is one implementation of each operation.
const adminSocketName = "admin.sock"

// adminHandler serves the admin API over store.
func adminHandler(store storage.Store) http.Handler {
	mux := http.NewServeMux()
	eab := &eabAdmin{store: store}
	mux.HandleFunc("POST /eab", eab.add)
	mux.HandleFunc("GET /eab", eab.list)
	mux.HandleFunc("POST /eab/{kid}/revoke", eab.revoke)
	mux.HandleFunc("POST /review/{order}", reviewAdmin{store: store}.decide)
	return mux
}

// serveAdmin listens on the data directory's admin socket unless another
// live instance already does (instances may share a data directory).
func serveAdmin(ctx context.Context, dataDir string, store storage.Store, log *slog.Logger) (stop func()) {
	path := filepath.Join(dataDir, adminSocketName)
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		log.Info("admin socket already served by another instance", "path", path)
		return func() {}
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		log.Warn("admin socket unavailable; admin commands need --redis", "path", path, "err", err)
		return func() {}
	}
	_ = os.Chmod(path, 0o600)
	srv := &http.Server{Handler: adminHandler(store), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
		_ = os.Remove(path)
	}
}

// adminClient sends admin requests to a running gateway's socket or, with a
// Redis URL, straight to the shared store.
type adminClient struct {
	http  *http.Client
	close func()
}

// newAdminClient picks the transport: Redis when redisURL is set, else the
// socket of the gateway using dataDir.
func newAdminClient(dataDir, redisURL string) (*adminClient, error) {
	if redisURL != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cfg := defaultConfig()
		cfg.Redis = redisURL
		store, err := openStore(ctx, cfg)
		if err != nil {
			return nil, err
		}
		h := adminHandler(store)
		return &adminClient{http: &http.Client{Transport: handlerTransport{h}}, close: func() { store.Close() }}, nil
	}
	path := filepath.Join(dataDir, adminSocketName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no running acmegw found (no %s); start one with this --data-dir, or pass --redis to change the shared store directly", path)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &adminClient{http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, close: tr.CloseIdleConnections}, nil
}

// do sends a request with an optional JSON body and decodes a JSON answer into out.
func (c *adminClient) do(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, "http://acmegw"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin request: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return errors.New(strings.TrimSpace(string(raw)))
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// handlerTransport runs requests through an in-process handler.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// adminError answers an admin request with a plain-text error.
func adminError(w http.ResponseWriter, status int, format string, args ...any) {
	http.Error(w, fmt.Sprintf(format, args...), status)
}

func writeAdminJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
