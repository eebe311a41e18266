package tencent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/acmegw/acmegw/internal/tc3"
)

// APIVersion is the Tencent Cloud SSL Certificates API version the brand
// speaks, sent as X-TC-Version.
const APIVersion = "2019-12-05"

// DefaultEndpoint is the SSL Certificates API of Tencent Cloud's mainland
// site. The international site answers at https://ssl.intl.tencentcloudapi.com.
const DefaultEndpoint = "https://ssl.tencentcloudapi.com"

// apiService is the service name in the TC3 credential scope.
const apiService = "ssl"

// contentType is the request body type Tencent's signature documentation
// uses in its examples; the API also accepts plain application/json.
const contentType = "application/json; charset=utf-8"

// maxResponseBytes bounds what the brand reads from one answer. The largest
// legitimate one is DownloadCertificate's base64 ZIP, well under this.
const maxResponseBytes = 8 << 20

// The API actions the brand calls, in the order an issuance uses them.
const (
	actCreateCertificate         = "CreateCertificate"
	actCertificateInfoSubmit     = "CertificateInfoSubmit"
	actCertificateOrderSubmit    = "CertificateOrderSubmit"
	actDescribeCertificateDetail = "DescribeCertificateDetail"
	actCompleteCertificate       = "CompleteCertificate"
	actDownloadCertificate       = "DownloadCertificate"
	actModifyCertificateAlias    = "ModifyCertificateAlias"
	actDescribeCertificates      = "DescribeCertificates"
	actRevokeCertificate         = "RevokeCertificate"
)

// APIError is an error answer of the Tencent Cloud API: HTTP 200 with
// Response.Error set. Issuance code reads it through the *issuer.Error it
// converts to (see As); tests and logs can use the fields.
type APIError struct {
	// Action is the API action that failed, e.g. "CertificateInfoSubmit".
	Action string
	// Code is Tencent's error code, e.g. "FailedOperation.ExceedsFreeLimit".
	Code string
	// Message is Tencent's explanation, often in Chinese.
	Message string
	// RequestID identifies the call to Tencent support.
	RequestID string
}

// Error returns the action, code, message and request id.
func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s: %s: %s", e.Action, e.Code, e.Message)
	if e.RequestID != "" {
		msg += " (RequestId " + e.RequestID + ")"
	}
	return msg
}

// apiErrorBody is Response.Error.
type apiErrorBody struct {
	Code    string `json:"Code"`
	Message string `json:"Message"`
}

// envelope is every answer's outer shape: {"Response": {...}}.
type envelope struct {
	Response json.RawMessage `json:"Response"`
}

// responseMeta is the part of Response every action shares.
type responseMeta struct {
	Error     *apiErrorBody `json:"Error,omitempty"`
	RequestID string        `json:"RequestId"`
}

// client signs and sends API calls. It holds the credentials and is safe for
// concurrent use.
type client struct {
	endpoint  string // scheme://host[:port], no path
	host      string
	region    string
	secretID  string
	secretKey string
	http      *http.Client
	now       func() time.Time
}

// call sends action with the JSON of in and decodes Response into out (nil:
// decode nothing). An error answer is an *APIError; transport failures and
// unreadable answers are plain errors, which the caller treats as transient.
func (c *client) call(ctx context.Context, action string, in, out any) error {
	payload, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%s: encoding request: %w", action, err)
	}
	ts := c.now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint+"/", bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	req.Host = c.host
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-TC-Action", action)
	req.Header.Set("X-TC-Version", APIVersion)
	req.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts, 10))
	if c.region != "" {
		req.Header.Set("X-TC-Region", c.region)
	}
	req.Header.Set("Authorization", tc3.Request{
		SecretID:    c.secretID,
		SecretKey:   c.secretKey,
		Service:     apiService,
		Host:        c.host,
		ContentType: contentType,
		Payload:     payload,
		Timestamp:   ts,
	}.Authorization())

	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("%s: reading answer: %w", action, err)
	}
	if resp.StatusCode != http.StatusOK {
		// Tencent answers API errors with 200 and Response.Error; any
		// other status comes from a proxy or an outage.
		return fmt.Errorf("%s: HTTP %d: %s", action, resp.StatusCode, snippet(body))
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil || len(env.Response) == 0 {
		return fmt.Errorf("%s: answer is not a Tencent Cloud API response: %s", action, snippet(body))
	}
	var meta responseMeta
	if err := json.Unmarshal(env.Response, &meta); err != nil {
		return fmt.Errorf("%s: decoding answer: %w", action, err)
	}
	if meta.Error != nil && meta.Error.Code != "" {
		return &APIError{Action: action, Code: meta.Error.Code, Message: meta.Error.Message, RequestID: meta.RequestID}
	}
	if out != nil {
		if err := json.Unmarshal(env.Response, out); err != nil {
			return fmt.Errorf("%s: decoding answer: %w", action, err)
		}
	}
	return nil
}

// snippet shortens an unexpected body for an error message.
func snippet(b []byte) string {
	const n = 200
	b = bytes.TrimSpace(b)
	if len(b) > n {
		return strconv.Quote(string(b[:n])) + "..."
	}
	return strconv.Quote(string(b))
}

// Wire types, as documented for API 2019-12-05 (field names are Tencent's).
// Only the fields the brand uses are modelled; pointers or omitempty keep
// unset optional parameters out of the request.

// tag is one resource tag (Tags.N).
type tag struct {
	TagKey   string `json:"TagKey"`
	TagValue string `json:"TagValue"`
}

type createCertificateRequest struct {
	ProductID int64 `json:"ProductId"`
	DomainNum int64 `json:"DomainNum"`
	TimeSpan  int64 `json:"TimeSpan"`
	// AutoVoucher 0: pay from the account balance; vouchers are spent only
	// when the operator configures it.
	AutoVoucher int64 `json:"AutoVoucher"`
	Tags        []tag `json:"Tags,omitempty"`
}

type createCertificateResponse struct {
	CertificateIDs []string `json:"CertificateIds"`
	DealIDs        []string `json:"DealIds"`
}

type certificateInfoSubmitRequest struct {
	CertID         string   `json:"CertId"`
	GenCsrType     string   `json:"GenCsrType"`
	CertCommonName string   `json:"CertCommonName"`
	CompanyType    int64    `json:"CompanyType"`
	CompanyID      string   `json:"CompanyId,omitempty"`
	ManagerID      string   `json:"ManagerId,omitempty"`
	Csr            string   `json:"Csr"`
	DNSNames       []string `json:"DnsNames,omitempty"`
	VerifyType     string   `json:"VerifyType"`
	ContactEmail   string   `json:"ContactEmail,omitempty"`
	CaType         string   `json:"CaType,omitempty"`
}

type certificateOrderSubmitRequest struct {
	CertID     string `json:"CertId"`
	VerifyType string `json:"VerifyType"`
}

type certificateOrderSubmitResponse struct {
	OrderID string `json:"OrderId"`
	Status  int64  `json:"Status"`
}

// certificateIDRequest is the body of every action that takes only a
// certificate id (DescribeCertificateDetail, CompleteCertificate,
// DownloadCertificate).
type certificateIDRequest struct {
	CertificateID string `json:"CertificateId"`
}

// Certificate status codes (Status in DescribeCertificateDetail).
const (
	statusReviewing       = 0  // 审核中: CA review or domain validation under way
	statusIssued          = 1  // 已通过
	statusFailed          = 2  // 审核失败
	statusExpired         = 3  // 已过期
	statusDNSAdded        = 4  // 已添加DNS记录 (DNS_AUTO)
	statusAwaitingInfo    = 5  // 企业证书，待提交资料
	statusCancelling      = 6  // 订单取消中
	statusCancelled       = 7  // 已取消
	statusAwaitingLetter  = 8  // 已提交资料，待上传确认函
	statusRevoking        = 9  // 证书吊销中
	statusRevoked         = 10 // 已吊销
	statusReissuing       = 11 // 重颁发中
	statusAwaitingRevoke  = 12 // 待上传吊销确认函
	statusAwaitingFreeDoc = 13 // 免费证书待提交资料
	statusRefunded        = 14 // 已退款
)

type certificateDetail struct {
	CertificateID        string        `json:"CertificateId"`
	Domain               string        `json:"Domain"`
	Status               int64         `json:"Status"`
	StatusMsg            string        `json:"StatusMsg"`
	StatusName           string        `json:"StatusName"`
	VerifyType           string        `json:"VerifyType"`
	CertBeginTime        string        `json:"CertBeginTime"`
	CertEndTime          string        `json:"CertEndTime"`
	CertificatePublicKey string        `json:"CertificatePublicKey"`
	SubjectAltName       []string      `json:"SubjectAltName"`
	DvAuthDetail         *dvAuthDetail `json:"DvAuthDetail"`
	DvRevokeAuthDetail   []dvAuth      `json:"DvRevokeAuthDetail"`
	CertFingerprint      string        `json:"CertFingerprint"`
	Alias                string        `json:"Alias"`
}

// dvAuthDetail is where Tencent hands out the domain validation records:
// the top-level fields for a single name, DvAuths for each name.
type dvAuthDetail struct {
	DvAuthKey          string   `json:"DvAuthKey"`
	DvAuthValue        string   `json:"DvAuthValue"`
	DvAuthDomain       string   `json:"DvAuthDomain"`
	DvAuthPath         string   `json:"DvAuthPath"`
	DvAuthKeySubDomain string   `json:"DvAuthKeySubDomain"`
	DvAuths            []dvAuth `json:"DvAuths"`
}

type dvAuth struct {
	DvAuthKey        string `json:"DvAuthKey"`
	DvAuthValue      string `json:"DvAuthValue"`
	DvAuthDomain     string `json:"DvAuthDomain"`
	DvAuthPath       string `json:"DvAuthPath"`
	DvAuthSubDomain  string `json:"DvAuthSubDomain"`
	DvAuthVerifyType string `json:"DvAuthVerifyType"` // TXT, CNAME or FILE
}

type downloadCertificateResponse struct {
	Content     string `json:"Content"` // base64 of a ZIP
	ContentType string `json:"ContentType"`
}

type modifyCertificateAliasRequest struct {
	CertificateID string `json:"CertificateId"`
	Alias         string `json:"Alias"`
}

type describeCertificatesRequest struct {
	Offset            int64   `json:"Offset"`
	Limit             int64   `json:"Limit"`
	SearchKey         string  `json:"SearchKey,omitempty"`
	CertificateStatus []int64 `json:"CertificateStatus,omitempty"`
	Tags              []tag   `json:"Tags,omitempty"`
}

type describeCertificatesResponse struct {
	TotalCount   int64             `json:"TotalCount"`
	Certificates []certificateItem `json:"Certificates"`
}

type certificateItem struct {
	CertificateID  string   `json:"CertificateId"`
	Domain         string   `json:"Domain"`
	Alias          string   `json:"Alias"`
	Status         int64    `json:"Status"`
	CertBeginTime  string   `json:"CertBeginTime"`
	CertEndTime    string   `json:"CertEndTime"`
	SubjectAltName []string `json:"SubjectAltName"`
}

type revokeCertificateRequest struct {
	CertificateID string `json:"CertificateId"`
	Reason        string `json:"Reason,omitempty"`
}

type revokeCertificateResponse struct {
	RevokeDomainValidateAuths []revokeAuth `json:"RevokeDomainValidateAuths"`
}

// revokeAuth is a record Tencent wants to see before it revokes a DV
// certificate: the revocation is a second proof of domain control.
type revokeAuth struct {
	DomainValidateAuthPath   string `json:"DomainValidateAuthPath"`
	DomainValidateAuthKey    string `json:"DomainValidateAuthKey"`
	DomainValidateAuthValue  string `json:"DomainValidateAuthValue"`
	DomainValidateAuthDomain string `json:"DomainValidateAuthDomain"`
}
