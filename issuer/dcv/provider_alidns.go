package dcv

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Alibaba Cloud DNS, RPC-style API version 2015-01-09.
const (
	DefaultAliDNSEndpoint = "alidns.aliyuncs.com"
	aliDNSVersion         = "2015-01-09"
)

// AliDNSConfig configures an AliDNS Publisher.
type AliDNSConfig struct {
	// AccessKeyID and AccessKeySecret are an AccessKey pair with
	// AliyunDNSFullAccess (or record-level) permission. ParseConfig reads
	// them from the variables named by access_key_id_env and
	// access_key_secret_env.
	AccessKeyID     string
	AccessKeySecret string
	// Domains are the Alibaba Cloud DNS zones (e.g. "example.com"); a
	// record goes to the longest one its name is in.
	Domains []string
	// Endpoint is the API host or URL; DefaultAliDNSEndpoint if empty.
	Endpoint string
	// TTL of the records; 600s if 0 (the minimum of the free edition).
	TTL time.Duration
}

// AliDNS is a dns-provider Publisher writing the brand's record through
// Alibaba Cloud DNS, signed with ACS3-HMAC-SHA256.
type AliDNS struct {
	cfg      AliDNSConfig
	endpoint string // URL with path "/"
	host     string
	now      func() time.Time
}

var _ Publisher = (*AliDNS)(nil)

// NewAliDNS checks cfg and returns the Publisher.
func NewAliDNS(cfg AliDNSConfig) (*AliDNS, error) {
	if cfg.AccessKeyID == "" || cfg.AccessKeySecret == "" {
		return nil, errors.New("dcv: alidns: an AccessKey pair is required (access_key_id_env, access_key_secret_env)")
	}
	if len(cfg.Domains) == 0 {
		return nil, errors.New("dcv: alidns: the DNS domain (zone) is required (domain)")
	}
	u, err := endpointURL(cfg.Endpoint, DefaultAliDNSEndpoint)
	if err != nil {
		return nil, fmt.Errorf("dcv: alidns: %w", err)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 600 * time.Second
	}
	domains := make([]string, len(cfg.Domains))
	for i, d := range cfg.Domains {
		domains[i] = canonical(d)
	}
	cfg.Domains = domains
	u.Path, u.RawQuery = "/", ""
	return &AliDNS{cfg: cfg, endpoint: u.String(), host: u.Host, now: time.Now}, nil
}

// Method implements Publisher.
func (a *AliDNS) Method() string { return MethodDNSProvider }

// String describes the Publisher for logs.
func (a *AliDNS) String() string { return "alidns(" + a.host + ")" }

type aliRecord struct {
	RecordID string `json:"RecordId"`
	RR       string `json:"RR"`
	Type     string `json:"Type"`
	Value    string `json:"Value"`
}

// Publish implements Publisher: it creates the record unless one with the
// same name, type and value exists already.
func (a *AliDNS) Publish(ctx context.Context, r Record) error {
	rec, zone, rr, err := a.prepare(r, "publish")
	if err != nil {
		return err
	}
	ctx, cancel := withAPITimeout(ctx)
	defer cancel()
	found, err := a.find(ctx, zone, rr, rec)
	if err != nil {
		return a.errorf(rec, "publish", err)
	}
	if len(found) > 0 {
		return nil
	}
	q := []aliParam{
		{"DomainName", zone}, {"RR", rr}, {"Type", rec.Type}, {"Value", rec.Value},
		{"TTL", strconv.Itoa(int(a.cfg.TTL / time.Second))},
	}
	var out struct {
		RecordID string `json:"RecordId"`
	}
	if err := a.call(ctx, "AddDomainRecord", q, &out); err != nil {
		return a.errorf(rec, "publish", err)
	}
	return nil
}

// Unpublish implements Publisher: it deletes the records with the name,
// type and value of r, and only those.
func (a *AliDNS) Unpublish(ctx context.Context, r Record) error {
	rec, zone, rr, err := a.prepare(r, "unpublish")
	if err != nil {
		return err
	}
	ctx, cancel := withAPITimeout(ctx)
	defer cancel()
	found, err := a.find(ctx, zone, rr, rec)
	if err != nil {
		return a.errorf(rec, "unpublish", err)
	}
	for _, f := range found {
		if err := a.call(ctx, "DeleteDomainRecord", []aliParam{{"RecordId", f.RecordID}}, nil); err != nil {
			return a.errorf(rec, "unpublish", err)
		}
	}
	return nil
}

func (a *AliDNS) prepare(r Record, op string) (rec Record, zone, rr string, err error) {
	if rec, err = normalize(r); err != nil {
		return rec, "", "", err
	}
	if zone, err = pickZone(rec.Name, a.cfg.Domains); err == nil {
		rr, err = relativeName(rec.Name, zone)
	}
	if err != nil {
		return rec, "", "", a.errorf(rec, op, err)
	}
	return rec, zone, rr, nil
}

func (a *AliDNS) errorf(r Record, op string, err error) error {
	return fmt.Errorf("dcv: alidns: %s %s %s: %w", op, r.Type, r.Name, err)
}

// find lists the records of zone at rr with r's type and keeps those with
// r's value. The keyword filters are fuzzy, so the match is exact here.
func (a *AliDNS) find(ctx context.Context, zone, rr string, r Record) ([]aliRecord, error) {
	const pageSize = 500 // the API's maximum
	var out []aliRecord
	for page := 1; ; page++ {
		var resp struct {
			TotalCount    int `json:"TotalCount"`
			DomainRecords struct {
				Record []aliRecord `json:"Record"`
			} `json:"DomainRecords"`
		}
		q := []aliParam{
			{"DomainName", zone}, {"RRKeyWord", rr}, {"TypeKeyWord", r.Type},
			{"PageNumber", strconv.Itoa(page)}, {"PageSize", strconv.Itoa(pageSize)},
		}
		if err := a.call(ctx, "DescribeDomainRecords", q, &resp); err != nil {
			return nil, err
		}
		for _, x := range resp.DomainRecords.Record {
			if strings.EqualFold(x.RR, rr) && strings.EqualFold(x.Type, r.Type) && sameValue(r.Type, r.Value, x.Value) {
				out = append(out, x)
			}
		}
		if len(resp.DomainRecords.Record) < pageSize || page*pageSize >= resp.TotalCount {
			return out, nil
		}
	}
}

// aliAPIError is an error Alibaba Cloud answered with.
type aliAPIError struct {
	Action, Code, Message, RequestID string
	Status                           int
}

func (e *aliAPIError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d: %s: %s", e.Action, e.Status, e.Code, e.Message)
	if strings.HasPrefix(e.Code, "InvalidAccessKeyId") || strings.HasPrefix(e.Code, "SignatureDoesNotMatch") ||
		strings.HasPrefix(e.Code, "Forbidden") || strings.HasPrefix(e.Code, "IncompleteSignature") {
		s += " (check the AccessKey pair and its Alibaba Cloud DNS permissions)"
	}
	if e.RequestID != "" {
		s += " (RequestId " + e.RequestID + ")"
	}
	return s
}

// aliParam is one RPC parameter, sent in the query string.
type aliParam struct{ key, value string }

// call does one signed RPC request (POST, parameters in the query, empty
// body) and decodes the JSON answer into out.
func (a *AliDNS) call(ctx context.Context, action string, params []aliParam, out any) error {
	query := aliCanonicalQuery(params)
	u := a.endpoint
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, http.NoBody)
	if err != nil {
		return err
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	h := map[string]string{
		"host":                  a.host,
		"x-acs-action":          action,
		"x-acs-version":         aliDNSVersion,
		"x-acs-date":            a.now().UTC().Format("2006-01-02T15:04:05Z"),
		"x-acs-signature-nonce": hex.EncodeToString(nonce[:]),
		"x-acs-content-sha256":  sha256Hex(nil),
	}
	for k, v := range h {
		if k != "host" {
			req.Header.Set(k, v)
		}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", acs3Authorization(a.cfg.AccessKeyID, a.cfg.AccessKeySecret, http.MethodPost, "/", query, h, nil))
	status, raw, err := doAPI(req, action)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		var e struct {
			Code, Message, RequestId string
		}
		if json.Unmarshal(raw, &e) != nil || e.Code == "" {
			return fmt.Errorf("%s: HTTP %d: %s", action, status, redact(clipMessage(string(raw)), a.cfg.AccessKeySecret))
		}
		return &aliAPIError{Action: action, Status: status, Code: e.Code,
			Message: redact(clipMessage(e.Message), a.cfg.AccessKeySecret), RequestID: e.RequestId}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s: decoding the response: %w", action, err)
		}
	}
	return nil
}

// acs3Authorization signs a request with ACS3-HMAC-SHA256, from Alibaba's
// published "signature method V3"; its twin is issuer/aliyun's
// signedRequest (unexported there). headers are by lower-case name; all of
// them are signed. query is already in canonical form.
func acs3Authorization(id, secret, method, path, query string, headers map[string]string, body []byte) string {
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	var hb strings.Builder
	for _, n := range names {
		hb.WriteString(n + ":" + strings.TrimSpace(headers[n]) + "\n")
	}
	signed := strings.Join(names, ";")
	canonicalRequest := method + "\n" + path + "\n" + query + "\n" + hb.String() + "\n" + signed + "\n" + sha256Hex(body)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("ACS3-HMAC-SHA256\n" + sha256Hex([]byte(canonicalRequest))))
	return "ACS3-HMAC-SHA256 Credential=" + id + ",SignedHeaders=" + signed + ",Signature=" + hex.EncodeToString(mac.Sum(nil))
}

// aliCanonicalQuery encodes params the V3 way (RFC 3986, sorted by name
// then value); the same string goes on the wire, so the two cannot differ.
func aliCanonicalQuery(params []aliParam) string {
	enc := make([]aliParam, len(params))
	for i, p := range params {
		enc[i] = aliParam{rfc3986Escape(p.key), rfc3986Escape(p.value)}
	}
	sort.Slice(enc, func(i, j int) bool {
		if enc[i].key != enc[j].key {
			return enc[i].key < enc[j].key
		}
		return enc[i].value < enc[j].value
	})
	parts := make([]string, len(enc))
	for i, p := range enc {
		parts[i] = p.key + "=" + p.value
	}
	return strings.Join(parts, "&")
}

// rfc3986Escape keeps A-Z a-z 0-9 - _ . ~ and percent-encodes every other
// byte in upper-case hex.
func rfc3986Escape(s string) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
	return b.String()
}
