package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// EABConfig is the eab section: whether binding is required and the
// external accounts to create (or update) in the store at start-up.
type EABConfig struct {
	Required bool               `yaml:"required"`
	Accounts []EABAccountConfig `yaml:"accounts"`
}

// EABAccountConfig is one external account of the configuration.
type EABAccountConfig struct {
	KID string `yaml:"kid"`
	// HMACEnv names the environment variable holding the base64url MAC
	// key, so the key stays out of the file; HMAC holds it inline.
	HMACEnv     string   `yaml:"hmac_env"`
	HMAC        string   `yaml:"hmac"`
	Profiles    []string `yaml:"profiles"`
	Domains     []string `yaml:"domains"`
	Description string   `yaml:"description"`
}

// eabView is an EAB key as the admin API shows it: never with its MAC key,
// except once, when it is created.
type eabView struct {
	KID         string    `json:"kid"`
	HMAC        string    `json:"hmac,omitempty"`
	Profiles    []string  `json:"profiles,omitempty"`
	Domains     []string  `json:"domains,omitempty"`
	Description string    `json:"description,omitempty"`
	Status      string    `json:"status"`
	CreatedAt   time.Time `json:"createdAt"`
}

func viewOf(k *storage.EABKey) eabView {
	return eabView{KID: k.KID, Profiles: k.Profiles, Domains: k.Domains, Description: k.Description, Status: k.Status, CreatedAt: k.CreatedAt}
}

// decodeMACKey accepts the unpadded base64url form handed out (and padded
// or standard base64, which people paste from elsewhere).
func decodeMACKey(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	s = strings.NewReplacer("+", "-", "/", "_").Replace(s)
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 16 {
		return nil, errors.New("MAC key must be base64url of at least 16 bytes")
	}
	return b, nil
}

// applyEABConfig creates or updates the configured external accounts.
func applyEABConfig(ctx context.Context, store storage.Store, cfg EABConfig) error {
	for _, a := range cfg.Accounts {
		raw := a.HMAC
		if a.HMACEnv != "" {
			raw = os.Getenv(a.HMACEnv)
		}
		if a.KID == "" || raw == "" {
			return fmt.Errorf("eab account %q: needs kid and hmac (or hmac_env naming a set variable)", a.KID)
		}
		key, err := decodeMACKey(raw)
		if err != nil {
			return fmt.Errorf("eab account %q: %w", a.KID, err)
		}
		k := &storage.EABKey{KID: a.KID, HMACKey: key, Profiles: a.Profiles, Domains: a.Domains,
			Description: a.Description, Status: storage.StatusValid, CreatedAt: time.Now().UTC()}
		err = store.CreateEABKey(ctx, k)
		if errors.Is(err, storage.ErrExists) {
			cur, gerr := store.GetEABKey(ctx, a.KID)
			if gerr != nil {
				return fmt.Errorf("eab account %q: %w", a.KID, gerr)
			}
			k.CreatedAt, k.Version = cur.CreatedAt, cur.Version
			err = store.UpdateEABKey(ctx, k)
		}
		if err != nil {
			return fmt.Errorf("eab account %q: %w", a.KID, err)
		}
	}
	return nil
}

type eabAdmin struct{ store storage.Store }

func (a *eabAdmin) add(w http.ResponseWriter, r *http.Request) {
	var in eabView
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		adminError(w, http.StatusBadRequest, "bad request: %v", err)
		return
	}
	if in.KID == "" {
		in.KID = "kid-" + randomToken(9)
	}
	mac := make([]byte, 32)
	_, _ = rand.Read(mac)
	k := &storage.EABKey{KID: in.KID, HMACKey: mac, Profiles: in.Profiles, Domains: in.Domains,
		Description: in.Description, Status: storage.StatusValid, CreatedAt: time.Now().UTC()}
	if err := a.store.CreateEABKey(r.Context(), k); err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, storage.ErrExists) {
			status = http.StatusConflict
		}
		adminError(w, status, "eab add %s: %v", in.KID, err)
		return
	}
	v := viewOf(k)
	v.HMAC = base64.RawURLEncoding.EncodeToString(mac)
	writeAdminJSON(w, v)
}

func (a *eabAdmin) list(w http.ResponseWriter, r *http.Request) {
	keys, err := a.store.ListEABKeys(r.Context())
	if err != nil {
		adminError(w, http.StatusInternalServerError, "eab list: %v", err)
		return
	}
	out := make([]eabView, len(keys))
	for i, k := range keys {
		out[i] = viewOf(k)
	}
	writeAdminJSON(w, out)
}

func (a *eabAdmin) revoke(w http.ResponseWriter, r *http.Request) {
	kid := r.PathValue("kid")
	for attempt := 0; attempt < 5; attempt++ {
		k, err := a.store.GetEABKey(r.Context(), kid)
		if errors.Is(err, storage.ErrNotFound) {
			adminError(w, http.StatusNotFound, "eab revoke: no key %q", kid)
			return
		}
		if err != nil {
			adminError(w, http.StatusInternalServerError, "eab revoke %s: %v", kid, err)
			return
		}
		k.Status = storage.StatusRevoked
		err = a.store.UpdateEABKey(r.Context(), k)
		if err == nil {
			writeAdminJSON(w, viewOf(k))
			return
		}
		if !errors.Is(err, storage.ErrConflict) {
			adminError(w, http.StatusInternalServerError, "eab revoke %s: %v", kid, err)
			return
		}
	}
	adminError(w, http.StatusConflict, "eab revoke %s: key kept changing; retry", kid)
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

const eabUsage = `usage:
  acmegw eab add [--kid KID] [--profiles a,b] [--domains "*.a.example,a.example"] [--description TEXT]
  acmegw eab list
  acmegw eab revoke KID
each with [--data-dir DIR] (talk to the gateway running on DIR) or [--redis URL] (change the shared store)`

// eabCommand runs "acmegw eab add|list|revoke".
func eabCommand(args []string) error {
	if len(args) == 0 {
		return errors.New(eabUsage)
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("eab "+sub, flag.ContinueOnError)
	dataDir := fs.String("data-dir", envOr("ACMEGW_DATA_DIR", defaultDataDir()), "data directory of the running gateway (env ACMEGW_DATA_DIR)")
	redisURL := fs.String("redis", os.Getenv("ACMEGW_REDIS"), "redis:// URL of the shared store (env ACMEGW_REDIS)")
	kid := fs.String("kid", "", "key id (default: random)")
	profiles := fs.String("profiles", "", "comma-separated profiles the accounts may order (default: any; the first is their default)")
	domains := fs.String("domains", "", `comma-separated patterns: "a.example", "*.a.example", an IP or CIDR (default: any)`)
	desc := fs.String("description", "", "free text, e.g. the team")
	// "eab revoke KID --redis URL" reads as naturally as the flags-first form.
	var positional []string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		positional, args = args[:1], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	positional = append(positional, fs.Args()...)
	c, err := newAdminClient(*dataDir, *redisURL)
	if err != nil {
		return err
	}
	defer c.close()
	switch sub {
	case "add":
		var v eabView
		in := eabView{KID: *kid, Profiles: splitList(*profiles), Domains: splitList(*domains), Description: *desc}
		if err := c.do(http.MethodPost, "/eab", in, &v); err != nil {
			return err
		}
		fmt.Printf("kid:  %s\nhmac: %s\n", v.KID, v.HMAC)
		fmt.Fprintln(os.Stderr, "Give both to the client (lego --eab --kid ... --hmac ..., certbot --eab-kid ... --eab-hmac-key ...); the MAC key is not shown again.")
	case "list":
		var list []eabView
		if err := c.do(http.MethodGet, "/eab", nil, &list); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KID\tSTATUS\tPROFILES\tDOMAINS\tCREATED\tDESCRIPTION")
		for _, v := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.KID, v.Status, orAny(v.Profiles), orAny(v.Domains), v.CreatedAt.Format(time.RFC3339), v.Description)
		}
		return tw.Flush()
	case "revoke":
		if len(positional) != 1 {
			return errors.New("usage: acmegw eab revoke KID")
		}
		if err := c.do(http.MethodPost, "/eab/"+url.PathEscape(positional[0])+"/revoke", nil, nil); err != nil {
			return err
		}
		fmt.Printf("revoked %s: its accounts can no longer order\n", positional[0])
	default:
		return errors.New(eabUsage)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func orAny(list []string) string {
	if len(list) == 0 {
		return "any"
	}
	return strings.Join(list, ",")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
