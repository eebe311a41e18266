package dcv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/acmegw/acmegw/internal/acs3"
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
// Alibaba Cloud DNS, signed with ACS3-HMAC-SHA256 by internal/acs3, the
// signer issuer/aliyun uses too.
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
	q := []acs3.Param{
		{Key: "DomainName", Value: zone}, {Key: "RR", Value: rr}, {Key: "Type", Value: rec.Type},
		{Key: "Value", Value: rec.Value}, {Key: "TTL", Value: strconv.Itoa(int(a.cfg.TTL / time.Second))},
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
		if err := a.call(ctx, "DeleteDomainRecord", []acs3.Param{{Key: "RecordId", Value: f.RecordID}}, nil); err != nil {
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
		q := []acs3.Param{
			{Key: "DomainName", Value: zone}, {Key: "RRKeyWord", Value: rr}, {Key: "TypeKeyWord", Value: r.Type},
			{Key: "PageNumber", Value: strconv.Itoa(page)}, {Key: "PageSize", Value: strconv.Itoa(pageSize)},
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

// call does one signed RPC request (POST, parameters in the query, empty
// body) and decodes the JSON answer into out.
func (a *AliDNS) call(ctx context.Context, action string, params []acs3.Param, out any) error {
	query := acs3.CanonicalQuery(params)
	u := a.endpoint
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, http.NoBody)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	acs3.SignHTTP(req, action, aliDNSVersion, params, nil, a.cfg.AccessKeyID, a.cfg.AccessKeySecret, a.now(), acs3.NewNonce())
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
