package dcv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultCloudflareBaseURL is Cloudflare's API v4 root.
const DefaultCloudflareBaseURL = "https://api.cloudflare.com/client/v4"

// CloudflareConfig configures a Cloudflare Publisher.
type CloudflareConfig struct {
	// APIToken is an API token with Zone.DNS edit permission (sent as
	// "Authorization: Bearer"). ParseConfig reads it from the variable
	// named by api_token_env.
	APIToken string
	// ZoneID is the zone's id. If empty, the id is looked up by name:
	// Zone if set, else each parent of the record name in turn.
	ZoneID string
	Zone   string
	// BaseURL is the API root; DefaultCloudflareBaseURL if empty.
	BaseURL string
	// TTL of the records; 60s if 0 (Cloudflare's minimum outside
	// Enterprise plans).
	TTL time.Duration
}

// Cloudflare is a dns-provider Publisher writing the brand's record through
// Cloudflare's API v4.
type Cloudflare struct {
	cfg  CloudflareConfig
	base string

	mu    sync.Mutex
	zones map[string]string // zone name → id, as looked up
}

var _ Publisher = (*Cloudflare)(nil)

// NewCloudflare checks cfg and returns the Publisher.
func NewCloudflare(cfg CloudflareConfig) (*Cloudflare, error) {
	if cfg.APIToken == "" {
		return nil, errors.New("dcv: cloudflare: an API token is required (api_token_env)")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultCloudflareBaseURL
	}
	u, err := endpointURL(cfg.BaseURL, DefaultCloudflareBaseURL)
	if err != nil {
		return nil, fmt.Errorf("dcv: cloudflare: %w", err)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 60 * time.Second
	}
	cfg.Zone = canonical(cfg.Zone)
	return &Cloudflare{cfg: cfg, base: strings.TrimSuffix(u.String(), "/"), zones: map[string]string{}}, nil
}

// Method implements Publisher.
func (c *Cloudflare) Method() string { return MethodDNSProvider }

// String describes the Publisher for logs.
func (c *Cloudflare) String() string { return "cloudflare(" + c.base + ")" }

// cfRecord is a DNS record as API v4 lists it.
type cfRecord struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Name    string `json:"name"`
	Content string `json:"content"`
}

// Publish implements Publisher: it creates the record unless one with the
// same name, type and value exists already.
func (c *Cloudflare) Publish(ctx context.Context, r Record) error {
	rec, err := normalize(r)
	if err != nil {
		return err
	}
	ctx, cancel := withAPITimeout(ctx)
	defer cancel()
	zoneID, err := c.zoneID(ctx, rec.Name)
	if err != nil {
		return c.errorf(rec, "publish", err)
	}
	found, err := c.find(ctx, zoneID, rec)
	if err != nil {
		return c.errorf(rec, "publish", err)
	}
	if len(found) > 0 {
		return nil
	}
	ttl := int(c.cfg.TTL / time.Second)
	body := map[string]any{"type": rec.Type, "name": rec.Name, "content": rec.Value, "ttl": ttl}
	if rec.Type == TypeCNAME {
		body["proxied"] = false
	}
	if err := c.call(ctx, http.MethodPost, "/zones/"+url.PathEscape(zoneID)+"/dns_records", nil, body, nil); err != nil {
		return c.errorf(rec, "publish", err)
	}
	return nil
}

// Unpublish implements Publisher: it deletes the records with the name,
// type and value of r, and only those.
func (c *Cloudflare) Unpublish(ctx context.Context, r Record) error {
	rec, err := normalize(r)
	if err != nil {
		return err
	}
	ctx, cancel := withAPITimeout(ctx)
	defer cancel()
	zoneID, err := c.zoneID(ctx, rec.Name)
	if err != nil {
		return c.errorf(rec, "unpublish", err)
	}
	found, err := c.find(ctx, zoneID, rec)
	if err != nil {
		return c.errorf(rec, "unpublish", err)
	}
	for _, f := range found {
		path := "/zones/" + url.PathEscape(zoneID) + "/dns_records/" + url.PathEscape(f.ID)
		if err := c.call(ctx, http.MethodDelete, path, nil, nil, nil); err != nil {
			return c.errorf(rec, "unpublish", err)
		}
	}
	return nil
}

func (c *Cloudflare) errorf(r Record, op string, err error) error {
	return fmt.Errorf("dcv: cloudflare: %s %s %s: %w", op, r.Type, r.Name, err)
}

// find lists the records at r's name and type and keeps those with r's
// value. The content is compared here rather than through the content
// filter, since Cloudflare may hand TXT content back quoted.
func (c *Cloudflare) find(ctx context.Context, zoneID string, r Record) ([]cfRecord, error) {
	var out []cfRecord
	for page := 1; ; page++ {
		q := url.Values{"type": {r.Type}, "name": {r.Name}, "per_page": {"100"}, "page": {strconv.Itoa(page)}}
		var list []cfRecord
		var info cfResultInfo
		if err := c.call(ctx, http.MethodGet, "/zones/"+url.PathEscape(zoneID)+"/dns_records", q, nil, &cfEnvelope{Result: &list, ResultInfo: &info}); err != nil {
			return nil, err
		}
		for _, x := range list {
			if strings.EqualFold(x.Type, r.Type) && canonical(x.Name) == r.Name && sameValue(r.Type, r.Value, x.Content) {
				out = append(out, x)
			}
		}
		if len(list) == 0 || info.TotalPages <= page {
			return out, nil
		}
	}
}

// zoneID returns the configured zone id or looks it up.
func (c *Cloudflare) zoneID(ctx context.Context, name string) (string, error) {
	if c.cfg.ZoneID != "" {
		return c.cfg.ZoneID, nil
	}
	var candidates []string
	if c.cfg.Zone != "" {
		if _, err := relativeName(name, c.cfg.Zone); err != nil {
			return "", err
		}
		candidates = []string{c.cfg.Zone}
	} else {
		// The record name and its parents, most specific first; a zone
		// is never a single label (a TLD) for a DCV record.
		labels := strings.Split(name, ".")
		for i := 0; i < len(labels)-1; i++ {
			candidates = append(candidates, strings.Join(labels[i:], "."))
		}
	}
	for _, zone := range candidates {
		c.mu.Lock()
		id, ok := c.zones[zone]
		c.mu.Unlock()
		if ok {
			return id, nil
		}
		var list []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		}
		if err := c.call(ctx, http.MethodGet, "/zones", url.Values{"name": {zone}}, nil, &cfEnvelope{Result: &list}); err != nil {
			return "", fmt.Errorf("looking up zone %s: %w", zone, err)
		}
		for _, z := range list {
			if canonical(z.Name) == zone && z.ID != "" {
				c.mu.Lock()
				c.zones[zone] = z.ID
				c.mu.Unlock()
				return z.ID, nil
			}
		}
	}
	return "", fmt.Errorf("no Cloudflare zone this token can see holds %s (tried %s)", name, strings.Join(candidates, ", "))
}

type cfEnvelope struct {
	Success    bool          `json:"success"`
	Errors     []cfMessage   `json:"errors"`
	Result     any           `json:"result"`
	ResultInfo *cfResultInfo `json:"result_info"`
}

type cfMessage struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type cfResultInfo struct {
	Page       int `json:"page"`
	TotalPages int `json:"total_pages"`
}

// call does one API request and decodes the envelope into out (whose
// Result points at the caller's value), turning success=false into an
// error with Cloudflare's codes and messages.
func (c *Cloudflare) call(ctx context.Context, method, path string, q url.Values, body any, out *cfEnvelope) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.APIToken)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	what := method + " " + path
	status, raw, err := doAPI(req, what)
	if err != nil {
		return err
	}
	if out == nil {
		out = &cfEnvelope{}
	}
	jerr := json.Unmarshal(raw, out)
	if jerr == nil && out.Success && status/100 == 2 {
		return nil
	}
	var msgs []string
	for _, m := range out.Errors {
		msgs = append(msgs, fmt.Sprintf("%d %s", m.Code, clipMessage(m.Message)))
	}
	detail := strings.Join(msgs, "; ")
	if detail == "" {
		detail = clipMessage(string(raw))
	}
	detail = redact(detail, c.cfg.APIToken)
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%s: HTTP %d, the API token was refused or lacks Zone.DNS edit permission: %s", what, status, detail)
	}
	return fmt.Errorf("%s: HTTP %d: %s", what, status, detail)
}
