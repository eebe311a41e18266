package dcv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/acmegw/acmegw/internal/tc3"
)

// DNSPod API 3.0 on Tencent Cloud.
const (
	DefaultTencentCloudEndpoint = "dnspod.tencentcloudapi.com"
	tencentDNSPodVersion        = "2021-03-23"
	tencentDNSPodService        = "dnspod"
	// tencentDefaultLine is the resolution line every plan has ("默认",
	// default).
	tencentDefaultLine = "默认"
)

// TencentCloudConfig configures a TencentCloud Publisher.
type TencentCloudConfig struct {
	// SecretID and SecretKey are a Tencent Cloud API key with DNSPod
	// record permissions. ParseConfig reads them from the variables named
	// by secret_id_env and secret_key_env.
	SecretID  string
	SecretKey string
	// Domains are the DNSPod zones (e.g. "example.com"); a record goes to
	// the longest one its name is in.
	Domains []string
	// Endpoint is the API host or URL; DefaultTencentCloudEndpoint if
	// empty.
	Endpoint string
	// TTL of the records; 600s if 0 (the minimum of DNSPod's free plan).
	TTL time.Duration
}

// TencentCloud is a dns-provider Publisher writing the brand's record
// through the DNSPod API (version 2021-03-23), signed with TC3-HMAC-SHA256
// by internal/tc3, the signer issuer/tencent uses too.
type TencentCloud struct {
	cfg      TencentCloudConfig
	endpoint string // URL
	host     string
	now      func() time.Time
}

var _ Publisher = (*TencentCloud)(nil)

// NewTencentCloud checks cfg and returns the Publisher.
func NewTencentCloud(cfg TencentCloudConfig) (*TencentCloud, error) {
	if cfg.SecretID == "" || cfg.SecretKey == "" {
		return nil, errors.New("dcv: tencentcloud: a SecretId and SecretKey are required (secret_id_env, secret_key_env)")
	}
	if len(cfg.Domains) == 0 {
		return nil, errors.New("dcv: tencentcloud: the DNSPod domain (zone) is required (domain)")
	}
	u, err := endpointURL(cfg.Endpoint, DefaultTencentCloudEndpoint)
	if err != nil {
		return nil, fmt.Errorf("dcv: tencentcloud: %w", err)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 600 * time.Second
	}
	domains := make([]string, len(cfg.Domains))
	for i, d := range cfg.Domains {
		domains[i] = canonical(d)
	}
	cfg.Domains = domains
	u.Path = "/"
	return &TencentCloud{cfg: cfg, endpoint: u.String(), host: u.Host, now: time.Now}, nil
}

// Method implements Publisher.
func (t *TencentCloud) Method() string { return MethodDNSProvider }

// String describes the Publisher for logs.
func (t *TencentCloud) String() string { return "tencentcloud(" + t.host + ")" }

type dnspodRecord struct {
	RecordID uint64 `json:"RecordId"`
	Name     string `json:"Name"`
	Type     string `json:"Type"`
	Value    string `json:"Value"`
}

// Publish implements Publisher: it creates the record unless one with the
// same name, type and value exists already.
func (t *TencentCloud) Publish(ctx context.Context, r Record) error {
	rec, zone, sub, err := t.prepare(r, "publish")
	if err != nil {
		return err
	}
	ctx, cancel := withAPITimeout(ctx)
	defer cancel()
	found, err := t.find(ctx, zone, sub, rec)
	if err != nil {
		return t.errorf(rec, "publish", err)
	}
	if len(found) > 0 {
		return nil
	}
	req := map[string]any{
		"Domain":     zone,
		"SubDomain":  sub,
		"RecordType": rec.Type,
		"RecordLine": tencentDefaultLine,
		"Value":      wireValue(rec),
		"TTL":        uint64(t.cfg.TTL / time.Second),
	}
	var out struct {
		RecordID uint64 `json:"RecordId"`
	}
	if err := t.call(ctx, "CreateRecord", req, &out); err != nil {
		return t.errorf(rec, "publish", err)
	}
	return nil
}

// Unpublish implements Publisher: it deletes the records with the name,
// type and value of r, and only those.
func (t *TencentCloud) Unpublish(ctx context.Context, r Record) error {
	rec, zone, sub, err := t.prepare(r, "unpublish")
	if err != nil {
		return err
	}
	ctx, cancel := withAPITimeout(ctx)
	defer cancel()
	found, err := t.find(ctx, zone, sub, rec)
	if err != nil {
		return t.errorf(rec, "unpublish", err)
	}
	for _, f := range found {
		if err := t.call(ctx, "DeleteRecord", map[string]any{"Domain": zone, "RecordId": f.RecordID}, nil); err != nil {
			return t.errorf(rec, "unpublish", err)
		}
	}
	return nil
}

func (t *TencentCloud) prepare(r Record, op string) (rec Record, zone, sub string, err error) {
	if rec, err = normalize(r); err != nil {
		return rec, "", "", err
	}
	if zone, err = pickZone(rec.Name, t.cfg.Domains); err == nil {
		sub, err = relativeName(rec.Name, zone)
	}
	if err != nil {
		return rec, "", "", t.errorf(rec, op, err)
	}
	return rec, zone, sub, nil
}

func (t *TencentCloud) errorf(r Record, op string, err error) error {
	return fmt.Errorf("dcv: tencentcloud: %s %s %s: %w", op, r.Type, r.Name, err)
}

// find lists the records at sub of zone with r's type and keeps those with
// r's value.
func (t *TencentCloud) find(ctx context.Context, zone, sub string, r Record) ([]dnspodRecord, error) {
	const limit = 3000 // the API's maximum page size
	var out []dnspodRecord
	for offset := 0; ; offset += limit {
		var resp struct {
			RecordCountInfo struct {
				TotalCount uint64 `json:"TotalCount"`
			} `json:"RecordCountInfo"`
			RecordList []dnspodRecord `json:"RecordList"`
		}
		req := map[string]any{"Domain": zone, "Subdomain": sub, "RecordType": r.Type, "Offset": offset, "Limit": limit}
		err := t.call(ctx, "DescribeRecordList", req, &resp)
		var apiErr *tencentAPIError
		if errors.As(err, &apiErr) && apiErr.Code == "ResourceNotFound.NoDataOfRecord" {
			return out, nil // DNSPod's answer for an empty list
		}
		if err != nil {
			return nil, err
		}
		for _, x := range resp.RecordList {
			if strings.EqualFold(x.Name, sub) && strings.EqualFold(x.Type, r.Type) && sameValue(r.Type, r.Value, x.Value) {
				out = append(out, x)
			}
		}
		if len(resp.RecordList) < limit || uint64(offset+limit) >= resp.RecordCountInfo.TotalCount {
			return out, nil
		}
	}
}

// tencentAPIError is an error a Tencent Cloud API answered with.
type tencentAPIError struct {
	Action, Code, Message, RequestID string
}

func (e *tencentAPIError) Error() string {
	s := e.Action + ": " + e.Code + ": " + e.Message
	if strings.HasPrefix(e.Code, "AuthFailure") {
		s += " (check the SecretId/SecretKey and their DNSPod permissions)"
	}
	if e.RequestID != "" {
		s += " (RequestId " + e.RequestID + ")"
	}
	return s
}

// call does one signed API 3.0 request and decodes Response into out.
func (t *TencentCloud) call(ctx context.Context, action string, params map[string]any, out any) error {
	body, err := json.Marshal(params)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	const contentType = "application/json; charset=utf-8"
	ts := t.now().Unix()
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-TC-Action", action)
	req.Header.Set("X-TC-Version", tencentDNSPodVersion)
	req.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("Authorization", tc3.Request{
		SecretID:    t.cfg.SecretID,
		SecretKey:   t.cfg.SecretKey,
		Service:     tencentDNSPodService,
		Host:        t.host,
		ContentType: contentType,
		Payload:     body,
		Timestamp:   ts,
	}.Authorization())
	status, raw, err := doAPI(req, action)
	if err != nil {
		return err
	}
	var env struct {
		Response json.RawMessage `json:"Response"`
	}
	var head struct {
		Error *struct {
			Code    string `json:"Code"`
			Message string `json:"Message"`
		} `json:"Error"`
		RequestID string `json:"RequestId"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || len(env.Response) == 0 || json.Unmarshal(env.Response, &head) != nil {
		return fmt.Errorf("%s: HTTP %d, not an API 3.0 response: %s", action, status, redact(clipMessage(string(raw)), t.cfg.SecretKey))
	}
	if head.Error != nil {
		return &tencentAPIError{Action: action, Code: head.Error.Code,
			Message: redact(clipMessage(head.Error.Message), t.cfg.SecretKey), RequestID: head.RequestID}
	}
	if out != nil {
		if err := json.Unmarshal(env.Response, out); err != nil {
			return fmt.Errorf("%s: decoding the response: %w", action, err)
		}
	}
	return nil
}
