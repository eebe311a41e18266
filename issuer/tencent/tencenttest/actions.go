package tencenttest

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Certificate status codes, as Tencent documents them.
const (
	StatusReviewing      = 0
	StatusIssued         = 1
	StatusFailed         = 2
	StatusExpired        = 3
	StatusDNSAdded       = 4
	StatusAwaitingInfo   = 5
	StatusCancelled      = 7
	StatusAwaitingLetter = 8
	StatusRevoking       = 9
	StatusRevoked        = 10
	StatusAwaitingRevoke = 12
)

var statusNames = map[int64]string{
	0: "审核中", 1: "已通过", 2: "审核失败", 3: "已过期", 4: "已添加DNS记录", 5: "待提交资料", 6: "订单取消中",
	7: "已取消", 8: "待上传确认函", 9: "证书吊销中", 10: "已吊销", 11: "重颁发中", 12: "待上传吊销确认函",
	13: "待提交资料", 14: "已退款",
}

// cnTime is Tencent's time zone for the times it reports (GMT+8).
var cnTime = time.FixedZone("CST", 8*60*60)

// timeLayout is how Tencent writes times.
const timeLayout = "2006-01-02 15:04:05"

// DCVRecord is a domain validation record the fake expects to see.
type DCVRecord struct {
	// Name is the fully qualified record name, e.g. _dnsauth.www.example.com.
	Name string
	// Type is "TXT".
	Type string
	// Value is the random value the record must hold.
	Value string
	// key and domain are how the answer splits Name (DvAuthKey, DvAuthDomain).
	key, domain, sub string
}

// Certificate is a snapshot of a certificate the fake sold.
type Certificate struct {
	ID           string
	ProductID    int64
	Status       int64
	StatusMsg    string
	CommonName   string
	Names        []string // the common name first
	VerifyType   string
	CompanyType  int64
	CompanyID    string
	ManagerID    string
	ContactEmail string
	CAType       string
	Tags         map[string]string
	Alias        string
	// Completes counts CompleteCertificate calls.
	Completes int
	Approved  bool
	// DCV are the records the issuance waits for, RevokeDCV those a DV
	// revocation waits for.
	DCV          []DCVRecord
	RevokeDCV    []DCVRecord
	RevokeReason string
	// Leaf is the issued certificate, nil before issuance.
	Leaf *x509.Certificate
}

// cert is the fake's state of one certificate; guarded by Fake.mu.
type cert struct {
	Certificate
	product   Product
	domainNum int64
	inserted  time.Time
	submitted bool // CertificateInfoSubmit accepted
	csr       *x509.CertificateRequest
	orderID   string
	dcvPassed bool
	chain     string
}

func (c *cert) snapshot() Certificate {
	s := c.Certificate
	s.Names = slices.Clone(c.Names)
	s.DCV = slices.Clone(c.DCV)
	s.RevokeDCV = slices.Clone(c.RevokeDCV)
	s.Tags = map[string]string{}
	for k, v := range c.Tags {
		s.Tags[k] = v
	}
	return s
}

// Certificate returns a snapshot of the certificate with that id.
func (f *Fake) Certificate(id string) (Certificate, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.certs[id]
	if !ok {
		return Certificate{}, false
	}
	return c.snapshot(), true
}

// CertificateIDs lists the certificates sold, oldest first.
func (f *Fake) CertificateIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.order)
}

// Approve ends the CA's organization review of an OV/EV certificate: it is
// issued as soon as its DCV records are seen too.
func (f *Fake) Approve(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.certs[id]
	if !ok {
		f.tb.Errorf("tencenttest: Approve(%q): no such certificate", id)
		return
	}
	c.Approved = true
	f.maybeIssue(c)
}

// Reject fails the certificate's review with reason as its StatusMsg
// (status 2), as a CA refusing the organization or a name would.
func (f *Fake) Reject(id, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.certs[id]
	if !ok {
		f.tb.Errorf("tencenttest: Reject(%q): no such certificate", id)
		return
	}
	c.Status, c.StatusMsg = StatusFailed, reason
}

// SetStatus forces a certificate into a status with a StatusMsg, for states
// the fake does not reach by itself (5/13 awaiting information, 8 awaiting
// the confirmation letter, 3 expired, 7 cancelled).
func (f *Fake) SetStatus(id string, status int64, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.certs[id]
	if !ok {
		f.tb.Errorf("tencenttest: SetStatus(%q): no such certificate", id)
		return
	}
	c.Status, c.StatusMsg = status, msg
}

type handler func(ctx context.Context, body []byte) (map[string]any, *apiError)

func (f *Fake) actions() map[string]handler {
	return map[string]handler{
		"CreateCertificate":         f.createCertificate,
		"CertificateInfoSubmit":     f.certificateInfoSubmit,
		"CertificateOrderSubmit":    f.certificateOrderSubmit,
		"DescribeCertificateDetail": f.describeCertificateDetail,
		"CompleteCertificate":       f.completeCertificate,
		"DownloadCertificate":       f.downloadCertificate,
		"ModifyCertificateAlias":    f.modifyCertificateAlias,
		"DescribeCertificates":      f.describeCertificates,
		"RevokeCertificate":         f.revokeCertificate,
	}
}

type tagParam struct {
	TagKey   string `json:"TagKey"`
	TagValue string `json:"TagValue"`
}

func (f *Fake) createCertificate(_ context.Context, body []byte) (map[string]any, *apiError) {
	var in struct {
		ProductID   *int64     `json:"ProductId"`
		DomainNum   *int64     `json:"DomainNum"`
		TimeSpan    *int64     `json:"TimeSpan"`
		AutoVoucher *int64     `json:"AutoVoucher"`
		Tags        []tagParam `json:"Tags"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.ProductID == nil || in.DomainNum == nil || in.TimeSpan == nil {
		return nil, &apiError{"MissingParameter", "ProductId, DomainNum and TimeSpan are required."}
	}
	prod, ok := f.opts.Products[*in.ProductID]
	if !ok {
		return nil, &apiError{"InvalidParameter.ProductPidInvalid", fmt.Sprintf("ProductId %d is not a certificate product.", *in.ProductID)}
	}
	if *in.DomainNum < 1 || *in.DomainNum > int64(max(prod.MaxNames, 1)) {
		return nil, &apiError{"InvalidParameter.DomainCountInvalid", fmt.Sprintf("DomainNum %d is outside 1..%d for product %d.", *in.DomainNum, max(prod.MaxNames, 1), *in.ProductID)}
	}
	if *in.TimeSpan < 1 || *in.TimeSpan > 5 {
		return nil, &apiError{"InvalidParameter.PeriodInvalid", fmt.Sprintf("TimeSpan %d is not a valid number of years.", *in.TimeSpan)}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.opts.Quota > 0 && f.sold >= f.opts.Quota {
		return nil, &apiError{"FailedOperation.ExceedsFreeLimit", fmt.Sprintf("The account may buy %d certificates; the limit is reached.", f.opts.Quota)}
	}
	f.sold++
	id := newID()
	c := &cert{
		Certificate: Certificate{ID: id, ProductID: *in.ProductID, Status: StatusAwaitingInfo, Tags: map[string]string{}},
		product:     prod,
		domainNum:   *in.DomainNum,
		inserted:    f.opts.Now(),
	}
	for _, t := range in.Tags {
		c.Tags[t.TagKey] = t.TagValue
	}
	f.certs[id] = c
	f.order = append(f.order, id)
	return map[string]any{
		"CertificateIds": []string{id},
		"DealIds":        []string{"deal" + id},
		"ResourceIds":    []string{"ssl-" + strings.ToLower(id)},
	}, nil
}

func (f *Fake) certificateInfoSubmit(_ context.Context, body []byte) (map[string]any, *apiError) {
	var in struct {
		CertID         string   `json:"CertId"`
		GenCsrType     string   `json:"GenCsrType"`
		CertCommonName string   `json:"CertCommonName"`
		CompanyType    int64    `json:"CompanyType"`
		CompanyID      string   `json:"CompanyId"`
		ManagerID      string   `json:"ManagerId"`
		Csr            string   `json:"Csr"`
		DNSNames       []string `json:"DnsNames"`
		VerifyType     string   `json:"VerifyType"`
		ContactEmail   string   `json:"ContactEmail"`
		CaType         string   `json:"CaType"`
		// Documented parameters the fake accepts and ignores.
		KeyPass          string `json:"KeyPass"`
		OrgOrganization  string `json:"OrgOrganization"`
		OrgDivision      string `json:"OrgDivision"`
		OrgAddress       string `json:"OrgAddress"`
		OrgCountry       string `json:"OrgCountry"`
		OrgCity          string `json:"OrgCity"`
		OrgRegion        string `json:"OrgRegion"`
		OrgPhoneArea     string `json:"OrgPhoneArea"`
		OrgPhoneNumber   string `json:"OrgPhoneNumber"`
		AdminFirstName   string `json:"AdminFirstName"`
		AdminLastName    string `json:"AdminLastName"`
		AdminPhone       string `json:"AdminPhone"`
		AdminEmail       string `json:"AdminEmail"`
		AdminTitle       string `json:"AdminTitle"`
		TechFirstName    string `json:"TechFirstName"`
		TechLastName     string `json:"TechLastName"`
		TechPhone        string `json:"TechPhone"`
		TechEmail        string `json:"TechEmail"`
		TechTitle        string `json:"TechTitle"`
		AutoRenewFlag    int64  `json:"AutoRenewFlag"`
		CsrKeyParameter  string `json:"CsrKeyParameter"`
		CsrEncryptAlgo   string `json:"CsrEncryptAlgo"`
		SignAlgo         string `json:"SignAlgo"`
		UseCrossSignRoot bool   `json:"UseCrossSignRoot"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.certs[in.CertID]
	if !ok {
		return nil, &apiError{"FailedOperation.CertificateNotFound", "The certificate does not exist."}
	}
	if c.Status != StatusAwaitingInfo {
		return nil, &apiError{"FailedOperation.CertificateInfoSubmitStatusInvalid", fmt.Sprintf("Certificate %s is in status %d and takes no information.", c.ID, c.Status)}
	}
	if in.GenCsrType != "parse" {
		return nil, &apiError{"InvalidParameter.WithDetailReason", "GenCsrType must be parse or online; the fake supports parse only."}
	}
	block, _ := pem.Decode([]byte(in.Csr))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, &apiError{"FailedOperation.CertificateCsrParseFailed", "The CSR is not a PEM CERTIFICATE REQUEST."}
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		return nil, &apiError{"FailedOperation.CertificateCsrParseFailed", "The CSR cannot be parsed or its signature is invalid."}
	}
	cn := strings.ToLower(in.CertCommonName)
	if cn == "" {
		return nil, &apiError{"MissingParameter", "CertCommonName is required."}
	}
	if csr.Subject.CommonName != "" && !strings.EqualFold(csr.Subject.CommonName, cn) {
		return nil, &apiError{"InvalidParameter.WithDetailReason", fmt.Sprintf("CertCommonName %s does not match the CSR's common name %s.", cn, csr.Subject.CommonName)}
	}
	names := []string{cn}
	for _, n := range in.DNSNames {
		n = strings.ToLower(n)
		if slices.Contains(names, n) {
			return nil, &apiError{"InvalidParameter.DomainInvalid", fmt.Sprintf("Domain %s is listed twice.", n)}
		}
		names = append(names, n)
	}
	if int64(len(names)) > c.domainNum {
		return nil, &apiError{"InvalidParameter.DomainCountInvalid", fmt.Sprintf("%d domains for a certificate bought for %d.", len(names), c.domainNum)}
	}
	for _, n := range names {
		if strings.HasPrefix(n, "*.") && !c.product.Wildcard {
			return nil, &apiError{"FailedOperation.CertificateInfoSubmitDomainInvalid", fmt.Sprintf("Product %d does not take wildcard domain %s.", c.ProductID, n)}
		}
		if !validDomain(strings.TrimPrefix(n, "*.")) {
			return nil, &apiError{"InvalidParameter.DomainInvalid", fmt.Sprintf("%s is not a valid domain.", n)}
		}
	}
	switch in.VerifyType {
	case "DNS", "DNS_AUTO", "FILE":
	default:
		return nil, &apiError{"InvalidParameter.WithDetailReason", fmt.Sprintf("VerifyType %q is not DNS, DNS_AUTO or FILE.", in.VerifyType)}
	}
	switch in.CompanyType {
	case 1:
		if c.product.Kind != "DV" {
			return nil, &apiError{"InvalidParameter.WithDetailReason", "CompanyType 1 (personal) is for DV certificates only."}
		}
		if in.ContactEmail == "" {
			return nil, &apiError{"FailedOperation.CertificateInfoSubmitContactEmailEmpty", "ContactEmail is required for CompanyType 1."}
		}
	case 2:
		if in.CompanyID == "" && in.ManagerID == "" && in.OrgOrganization == "" {
			return nil, &apiError{"MissingParameter", "CompanyId, ManagerId or the Org* parameters are required for CompanyType 2."}
		}
	default:
		return nil, &apiError{"InvalidParameter.WithDetailReason", "CompanyType must be 1 or 2."}
	}
	if f.opts.PerDomainLimit > 0 {
		main := registered(strings.TrimPrefix(cn, "*."))
		if f.perDomain[main] >= f.opts.PerDomainLimit {
			return nil, &apiError{"FailedOperation.MainDomainCertificateCountLimit", fmt.Sprintf("The main domain %s reached its limit of %d certificates.", main, f.opts.PerDomainLimit)}
		}
		if !c.submitted {
			f.perDomain[main]++
		}
	}
	c.submitted = true
	c.csr = csr
	c.CommonName, c.Names = cn, names
	c.VerifyType, c.CompanyType = in.VerifyType, in.CompanyType
	c.CompanyID, c.ManagerID, c.ContactEmail, c.CAType = in.CompanyID, in.ManagerID, in.ContactEmail, in.CaType
	return map[string]any{}, nil
}

func (f *Fake) certificateOrderSubmit(_ context.Context, body []byte) (map[string]any, *apiError) {
	var in struct {
		CertID              string `json:"CertId"`
		DeleteDNSAutoRecord *int64 `json:"DeleteDnsAutoRecord"`
		VerifyType          string `json:"VerifyType"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.certs[in.CertID]
	if !ok {
		return nil, &apiError{"FailedOperation.CertificateNotFound", "The certificate does not exist."}
	}
	if c.Status != StatusAwaitingInfo || !c.submitted {
		return nil, &apiError{"FailedOperation.InvalidCertificateStatusCode", fmt.Sprintf("Certificate %s is in status %d with information submitted %v.", c.ID, c.Status, c.submitted)}
	}
	if in.VerifyType != "" {
		c.VerifyType = in.VerifyType
	}
	c.Status = StatusReviewing
	c.StatusMsg = "PENDING-DCV"
	if c.product.Kind != "DV" {
		c.StatusMsg = "CA-REVIEWING"
	}
	c.orderID = "ca-" + strings.ToLower(c.ID)
	c.DCV = f.newDCV(c.Names)
	return map[string]any{"OrderId": c.orderID, "Status": c.Status, "IsAudited": false}, nil
}

// newDCV makes one random _dnsauth TXT record per distinct name. The answer
// splits each name the way DNS consoles ask for it: DvAuthKey is the host
// relative to the registered domain, DvAuthDomain the registered domain.
func (f *Fake) newDCV(names []string) []DCVRecord {
	var out []DCVRecord
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.TrimPrefix(n, "*.")
		if seen[n] {
			continue
		}
		seen[n] = true
		main := registered(n)
		key, sub := "_dnsauth", ""
		if n != main {
			sub = strings.TrimSuffix(n, "."+main)
			key += "." + sub
		}
		out = append(out, DCVRecord{Name: "_dnsauth." + n, Type: "TXT", Value: f.randomValue(), key: key, domain: main, sub: sub})
	}
	return out
}

// randomValue looks like Tencent's DV values: a timestamp and 50 random
// lower-case characters.
func (f *Fake) randomValue() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 50)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[n.Int64()]
	}
	return f.opts.Now().In(cnTime).Format("20060102150405") + string(b)
}

func (f *Fake) describeCertificateDetail(ctx context.Context, body []byte) (map[string]any, *apiError) {
	var in struct {
		CertificateID string `json:"CertificateId"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	f.mu.Lock()
	c, ok := f.certs[in.CertificateID]
	check := ok && (c.Status == StatusReviewing || c.Status == StatusDNSAdded) && (c.product.SelfChecking || c.Completes > 0)
	revoking := ok && c.Status == StatusRevoking
	f.mu.Unlock()
	if !ok {
		return nil, &apiError{"FailedOperation.CertificateNotFound", "The certificate does not exist."}
	}
	if check {
		f.checkDCV(ctx, in.CertificateID)
	}
	if revoking {
		f.checkRevocation(ctx, in.CertificateID)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.detail(c), nil
}

// checkDCV looks the certificate's records up in DNS (outside the lock) and
// issues once all are visible and any review is approved.
func (f *Fake) checkDCV(ctx context.Context, id string) {
	f.mu.Lock()
	c := f.certs[id]
	records := slices.Clone(c.DCV)
	f.mu.Unlock()
	for _, r := range records {
		if !f.dnsLookup(ctx, r.Name, r.Type, r.Value) {
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.Status == StatusReviewing || c.Status == StatusDNSAdded {
		c.dcvPassed = true
		f.maybeIssue(c)
	}
}

// maybeIssue issues c when its DCV passed and, for OV/EV, its review was
// approved; otherwise it updates StatusMsg to what is still awaited.
// Called with f.mu held.
func (f *Fake) maybeIssue(c *cert) {
	if c.Status != StatusReviewing && c.Status != StatusDNSAdded {
		return
	}
	reviewed := c.product.Kind == "DV" || c.Approved
	switch {
	case !reviewed:
		c.StatusMsg = "CA-REVIEWING"
		return
	case !c.dcvPassed:
		c.StatusMsg = "PENDING-DCV"
		return
	}
	now := f.opts.Now()
	leaf, chain, err := f.ca.issue(c.csr.PublicKey, c.Names, now.Add(-time.Minute), now.Add(f.opts.Validity))
	if err != nil {
		f.tb.Errorf("tencenttest: issuing %s: %v", c.ID, err)
		return
	}
	c.Leaf, c.chain = leaf, chain
	c.Status, c.StatusMsg = StatusIssued, ""
}

func (f *Fake) completeCertificate(ctx context.Context, body []byte) (map[string]any, *apiError) {
	var in struct {
		CertificateID string `json:"CertificateId"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	f.mu.Lock()
	c, ok := f.certs[in.CertificateID]
	var e *apiError
	switch {
	case !ok:
		e = &apiError{"FailedOperation.CertificateNotFound", "The certificate does not exist."}
	case c.product.SelfChecking:
		e = &apiError{"FailedOperation.CertificateStatusNotAllowVerify", "This product validates domains by itself; CompleteCertificate is not supported."}
	case c.Status != StatusReviewing && c.Status != StatusDNSAdded:
		e = &apiError{"FailedOperation.CertificateStatusNotAllowVerify", fmt.Sprintf("Certificate %s is in status %d and cannot be verified.", c.ID, c.Status)}
	default:
		c.Completes++
	}
	f.mu.Unlock()
	if e != nil {
		return nil, e
	}
	f.checkDCV(ctx, in.CertificateID)
	return map[string]any{"CertificateId": in.CertificateID}, nil
}

func (f *Fake) downloadCertificate(_ context.Context, body []byte) (map[string]any, *apiError) {
	var in struct {
		CertificateID string `json:"CertificateId"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.certs[in.CertificateID]
	if !ok {
		return nil, &apiError{"FailedOperation.CertificateNotFound", "The certificate does not exist."}
	}
	if c.Status != StatusIssued {
		return nil, &apiError{"FailedOperation.CertificateStatusNotAllowDownload", fmt.Sprintf("Certificate %s is in status %d and cannot be downloaded.", c.ID, c.Status)}
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	leafPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Leaf.Raw}))
	files := []struct{ name, data string }{
		{c.CommonName + ".csr", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: c.csr.Raw}))},
		{"Apache/2_" + c.CommonName + ".crt", leafPEM},
		{"Apache/1_root_bundle.crt", string(f.ca.interPEM)},
		{"Nginx/1_" + c.CommonName + "_bundle.crt", c.chain},
	}
	for _, file := range files {
		w, err := zw.Create(strings.ReplaceAll(file.name, "*", "_"))
		if err == nil {
			_, err = w.Write([]byte(file.data))
		}
		if err != nil {
			f.tb.Errorf("tencenttest: zipping %s: %v", file.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		f.tb.Errorf("tencenttest: zipping: %v", err)
	}
	return map[string]any{"Content": base64.StdEncoding.EncodeToString(buf.Bytes()), "ContentType": "application/zip"}, nil
}

func (f *Fake) modifyCertificateAlias(_ context.Context, body []byte) (map[string]any, *apiError) {
	var in struct {
		CertificateID string `json:"CertificateId"`
		Alias         string `json:"Alias"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.certs[in.CertificateID]
	if !ok {
		return nil, &apiError{"FailedOperation.CertificateNotFound", "The certificate does not exist."}
	}
	c.Alias = in.Alias
	return map[string]any{"CertificateId": c.ID}, nil
}

func (f *Fake) describeCertificates(_ context.Context, body []byte) (map[string]any, *apiError) {
	var in struct {
		Offset            int64      `json:"Offset"`
		Limit             int64      `json:"Limit"`
		SearchKey         string     `json:"SearchKey"`
		CertificateType   string     `json:"CertificateType"`
		ProjectID         *int64     `json:"ProjectId"`
		ExpirationSort    string     `json:"ExpirationSort"`
		CertificateStatus []int64    `json:"CertificateStatus"`
		Deployable        *int64     `json:"Deployable"`
		Upload            *int64     `json:"Upload"`
		Renew             *int64     `json:"Renew"`
		FilterSource      string     `json:"FilterSource"`
		IsSM              *int64     `json:"IsSM"`
		FilterExpiring    *int64     `json:"FilterExpiring"`
		Hostable          *int64     `json:"Hostable"`
		Tags              []tagParam `json:"Tags"`
		IsPendingIssue    *int64     `json:"IsPendingIssue"`
		CertIDs           []string   `json:"CertIds"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.Limit <= 0 {
		in.Limit = 10
	}
	in.Limit = min(in.Limit, 1000)
	key := strings.ToLower(in.SearchKey)
	f.mu.Lock()
	defer f.mu.Unlock()
	var matched []*cert
	// Newest first, as Tencent sorts by application time.
	for _, id := range slices.Backward(f.order) {
		c := f.certs[id]
		if len(in.CertificateStatus) > 0 && !slices.Contains(in.CertificateStatus, c.Status) {
			continue
		}
		if len(in.CertIDs) > 0 && !slices.Contains(in.CertIDs, c.ID) {
			continue
		}
		if key != "" && !slices.ContainsFunc(append([]string{c.ID, c.Alias}, c.Names...), func(s string) bool {
			return strings.Contains(strings.ToLower(s), key)
		}) {
			continue
		}
		if !slices.ContainsFunc(in.Tags, func(t tagParam) bool { return c.Tags[t.TagKey] != t.TagValue }) {
			matched = append(matched, c)
		}
	}
	list := []map[string]any{}
	for i := in.Offset; i < int64(len(matched)) && i < in.Offset+in.Limit; i++ {
		list = append(list, f.item(matched[i]))
	}
	return map[string]any{"TotalCount": len(matched), "Certificates": list}, nil
}

func (f *Fake) revokeCertificate(_ context.Context, body []byte) (map[string]any, *apiError) {
	var in struct {
		CertificateID string `json:"CertificateId"`
		Reason        string `json:"Reason"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.certs[in.CertificateID]
	if !ok {
		return nil, &apiError{"FailedOperation.CertificateNotFound", "The certificate does not exist."}
	}
	if c.Status != StatusIssued {
		return nil, &apiError{"FailedOperation.RevokeFailed", fmt.Sprintf("Certificate %s is in status %d and cannot be revoked.", c.ID, c.Status)}
	}
	c.RevokeReason = in.Reason
	auths := []map[string]any{}
	if c.product.Kind != "DV" {
		c.Status = StatusAwaitingRevoke
		return map[string]any{"RevokeDomainValidateAuths": auths}, nil
	}
	c.Status = StatusRevoking
	c.RevokeDCV = f.newDCV(c.Names)
	for _, r := range c.RevokeDCV {
		auths = append(auths, map[string]any{
			"DomainValidateAuthPath":   "",
			"DomainValidateAuthKey":    r.key,
			"DomainValidateAuthValue":  r.Value,
			"DomainValidateAuthDomain": r.domain,
		})
	}
	return map[string]any{"RevokeDomainValidateAuths": auths}, nil
}

// checkRevocation completes a DV revocation once its records are visible.
func (f *Fake) checkRevocation(ctx context.Context, id string) {
	f.mu.Lock()
	c := f.certs[id]
	records := slices.Clone(c.RevokeDCV)
	f.mu.Unlock()
	for _, r := range records {
		if !f.dnsLookup(ctx, r.Name, r.Type, r.Value) {
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.Status == StatusRevoking {
		c.Status = StatusRevoked
	}
}

// detail is DescribeCertificateDetail's answer for c. Called with f.mu held.
func (f *Fake) detail(c *cert) map[string]any {
	m := f.item(c)
	m["CertificatePrivateKey"] = ""
	m["CertificatePublicKey"] = ""
	m["OrderId"] = nilIfEmpty(c.orderID)
	m["TypeName"] = c.product.Name
	m["CertType"] = c.product.Kind
	m["SubjectAltName"] = []string{}
	if len(c.Names) > 1 {
		// The detail lists the other names; the main one is in Domain.
		m["SubjectAltName"] = c.Names[1:]
	}
	m["DvAuthDetail"] = nil
	if (c.Status == StatusReviewing || c.Status == StatusDNSAdded) && len(c.DCV) > 0 {
		m["DvAuthDetail"] = dvAuthDetail(c.DCV)
	}
	m["DvRevokeAuthDetail"] = nil
	if c.Status == StatusRevoking {
		m["DvRevokeAuthDetail"] = dvAuths(c.RevokeDCV)
	}
	m["CertFingerprint"] = nil
	if c.Leaf != nil {
		sum := sha1.Sum(c.Leaf.Raw)
		m["CertFingerprint"] = strings.ToUpper(hex.EncodeToString(sum[:]))
		if !f.opts.NoPublicKeyInDetail && (c.Status == StatusIssued || c.Status == StatusRevoking || c.Status == StatusRevoked) {
			m["CertificatePublicKey"] = c.chain
		}
	}
	return m
}

// item is c as DescribeCertificates lists it. Called with f.mu held.
func (f *Fake) item(c *cert) map[string]any {
	tags := []map[string]string{}
	for _, k := range sortedKeys(c.Tags) {
		tags = append(tags, map[string]string{"TagKey": k, "TagValue": c.Tags[k]})
	}
	wildcard := slices.ContainsFunc(c.Names, func(n string) bool { return strings.HasPrefix(n, "*.") })
	m := map[string]any{
		"OwnerUin":        "100000000001",
		"ProjectId":       "0",
		"From":            "trustasia",
		"PackageType":     strconv.FormatInt(c.ProductID, 10),
		"CertificateType": "SVR",
		"ProductZhName":   c.product.Name,
		"Domain":          nilIfEmpty(c.CommonName),
		"Alias":           c.Alias,
		"Status":          c.Status,
		"StatusMsg":       nilIfEmpty(c.StatusMsg),
		"StatusName":      statusNames[c.Status],
		"VerifyType":      nilIfEmpty(c.VerifyType),
		"CertBeginTime":   nil,
		"CertEndTime":     nil,
		"ValidityPeriod":  "12",
		"InsertTime":      c.inserted.In(cnTime).Format(timeLayout),
		"CertificateId":   c.ID,
		"SubjectAltName":  slices.Clone(c.Names),
		"IsVip":           true,
		"IsDv":            c.product.Kind == "DV",
		"IsWildcard":      wildcard,
		"Tags":            tags,
	}
	if c.Leaf != nil {
		m["CertBeginTime"] = c.Leaf.NotBefore.In(cnTime).Format(timeLayout)
		m["CertEndTime"] = c.Leaf.NotAfter.In(cnTime).Format(timeLayout)
	}
	return m
}

func dvAuthDetail(records []DCVRecord) map[string]any {
	first := records[0]
	return map[string]any{
		"DvAuthKey":          first.key,
		"DvAuthValue":        first.Value,
		"DvAuthDomain":       first.domain,
		"DvAuthPath":         "",
		"DvAuthKeySubDomain": first.sub,
		"DvAuths":            dvAuths(records),
	}
}

func dvAuths(records []DCVRecord) []map[string]any {
	out := []map[string]any{}
	for _, r := range records {
		out = append(out, map[string]any{
			"DvAuthKey":        r.key,
			"DvAuthValue":      r.Value,
			"DvAuthDomain":     r.domain,
			"DvAuthPath":       "",
			"DvAuthSubDomain":  r.sub,
			"DvAuthVerifyType": r.Type,
		})
	}
	return out
}

// nilIfEmpty answers an empty string as null, as Tencent does for unset
// fields.
func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// newID returns an 8-character certificate id like Tencent's ("LqQxgqUe").
func newID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 8)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}

// registered approximates the registered domain as the last two labels,
// which is enough for the fake's test domains.
func registered(name string) string {
	labels := strings.Split(name, ".")
	if len(labels) <= 2 {
		return name
	}
	return strings.Join(labels[len(labels)-2:], ".")
}

// validDomain is a loose syntax check of a DNS name.
func validDomain(name string) bool {
	if name == "" || len(name) > 253 || !strings.Contains(name, ".") {
		return false
	}
	for _, l := range strings.Split(name, ".") {
		if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
