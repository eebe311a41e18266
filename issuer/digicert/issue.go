package digicert

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/dcv"
)

// Submit places a DigiCert order for req.CSR. It answers with the chain when
// DigiCert issued at once (pre-validated organization and domains with
// automatic approval), else with a ticket to Poll.
//
// Requests DigiCert would refuse anyway are refused before any call, as
// permanent errors: no CSR or a bad CSR signature, a CSR without a common
// name (DigiCert requires one, and it must be one of the order's names), IP
// addresses, wildcards on a product without them, too many names.
//
// Once DigiCert accepted the order Submit never fails: an error would make
// the issuance job Submit again and pay for a second order. A chain in the
// answer that cannot be read is fetched again by Poll instead.
func (b *Brand) Submit(ctx context.Context, req issuer.Request) (issuer.Result, error) {
	body, err := b.orderBody(req)
	if err != nil {
		return issuer.Result{}, err
	}
	var resp orderResponse
	op := "placing the order"
	if req.OrderID != "" {
		op = "placing the order for " + req.OrderID
	}
	if _, err := b.call(ctx, op, http.MethodPost, "order/certificate/"+b.cfg.Product, body, &resp); err != nil {
		return issuer.Result{}, err
	}
	if resp.ID == 0 {
		return issuer.Result{}, fmt.Errorf("digicert %s: %s: the answer names no order id", b.name, op)
	}
	t := ticket{V: ticketVersion, Order: resp.ID}
	if len(resp.CertificateChain) > 0 {
		var all []byte
		for _, c := range resp.CertificateChain {
			all = append(all, c.PEM...)
			all = append(all, '\n')
		}
		res, err := parseChain(all)
		if err == nil {
			res.Ref = certificateRef(resp.CertificateID)
			return res, nil
		}
		b.log.Warn("digicert: unreadable certificate_chain in the order answer; downloading it instead",
			"brand", b.name, "digicert_order", resp.ID, "err", err)
	}
	return issuer.Result{Ticket: t.encode(), RetryAfter: defaultSubmitPoll}, nil
}

// orderBody checks req and builds the order.
func (b *Brand) orderBody(req issuer.Request) (*orderRequest, error) {
	if req.CSR == nil {
		return nil, b.refuse("badCSR", req.OrderID, "no CSR")
	}
	cn := strings.ToLower(strings.TrimSpace(req.CSR.Subject.CommonName))
	if cn == "" {
		return nil, b.refuse("badCSR", req.OrderID,
			"the CSR has no common name (CN); DigiCert requires one, set to one of the order's names")
	}
	// A key whose owner did not sign the CSR would be vouched for by a
	// public CA; DigiCert checks too, but refusing here costs no order.
	if err := req.CSR.CheckSignature(); err != nil {
		return nil, b.refuse("badCSR", req.OrderID, fmt.Sprintf("CSR signature: %v", err))
	}
	if len(req.IPs) > 0 {
		return nil, b.refuse("rejectedIdentifier", req.OrderID,
			fmt.Sprintf("IP addresses (%s) are not supported: DigiCert's DNS validation cannot prove them", strings.Join(req.IPs, ", ")))
	}
	names := req.DNSNames
	if len(names) == 0 {
		names = req.CSR.DNSNames
	}
	var others []string
	seen := map[string]bool{cn: true}
	found := false
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), "."))
		if n == cn {
			found = true
			continue
		}
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		others = append(others, n)
	}
	if len(names) > 0 && !found {
		return nil, b.refuse("badCSR", req.OrderID, fmt.Sprintf("the CSR common name %q is not one of the order's names", cn))
	}
	if n := 1 + len(others); n > b.cfg.MaxNames {
		return nil, b.refuse("rejectedIdentifier", req.OrderID, fmt.Sprintf("%d names, more than the %d product %s allows", n, b.cfg.MaxNames, b.cfg.Product))
	}
	if !b.Describe().Wildcard {
		for n := range seen {
			if strings.HasPrefix(n, "*.") {
				return nil, b.refuse("rejectedIdentifier", req.OrderID, fmt.Sprintf("%s: product %s issues no wildcards", n, b.cfg.Product))
			}
		}
	}
	days, err := b.validityDays(req)
	if err != nil {
		return nil, b.refuse("malformed", req.OrderID, err.Error())
	}
	body := &orderRequest{
		Certificate: certificateRequest{
			CommonName:    cn,
			DNSNames:      others,
			CSR:           string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: req.CSR.Raw})),
			SignatureHash: b.cfg.SignatureHash,
		},
		OrderValidity:      validity{Days: days},
		DCVMethod:          b.cfg.DCVMethod,
		SkipApproval:       b.cfg.SkipApproval,
		PaymentMethod:      b.cfg.PaymentMethod,
		AlternativeOrderID: req.OrderID,
	}
	if b.cfg.OrderValidityYears > 0 {
		// A Multi-year Plan: the plan lasts years, each certificate in it
		// at most the current maximum.
		body.OrderValidity = validity{Years: b.cfg.OrderValidityYears}
		body.Certificate.CertValidity = &validity{Days: days}
	}
	if b.cfg.OrganizationID != 0 {
		body.Organization = &idRef{ID: b.cfg.OrganizationID}
	}
	return body, nil
}

// validityDays is the lifetime to order, in whole days: what the request
// asks (NotAfter, else Validity), else Config.ValidityDays, else the
// maximum; never more than the maximum, since DigiCert would refuse. DigiCert
// starts the lifetime when it issues, so NotBefore only measures NotAfter.
func (b *Brand) validityDays(req issuer.Request) (int, error) {
	const day = 24 * time.Hour
	limit := int(b.maxValidity() / day)
	var want time.Duration
	switch {
	case !req.NotAfter.IsZero():
		from := req.NotBefore
		if from.IsZero() {
			from = b.cfg.Now()
		}
		want = req.NotAfter.Sub(from)
		if want <= 0 {
			return 0, fmt.Errorf("notAfter %s is not after %s", req.NotAfter.UTC().Format(time.RFC3339), from.UTC().Format(time.RFC3339))
		}
	case req.Validity > 0:
		want = req.Validity
	case b.cfg.ValidityDays > 0:
		want = time.Duration(b.cfg.ValidityDays) * day
	default:
		return limit, nil
	}
	days := int((want + day - 1) / day)
	return max(1, min(days, limit)), nil
}

// refuse is a request DigiCert will never sign as asked.
func (b *Brand) refuse(typ, orderID, detail string) error {
	if orderID != "" {
		detail = "order " + orderID + ": " + detail
	}
	return &issuer.Error{Type: typ, Detail: fmt.Sprintf("digicert %s: %s", b.name, detail), Permanent: true}
}

// Poll reads the order the ticket names and moves it on: it publishes and
// has DigiCert check the DCV records while domains are pending, returns the
// chain once issued (removing the records), and a permanent error with
// DigiCert's reason when the order was rejected, canceled or revoked.
func (b *Brand) Poll(ctx context.Context, tk string) (issuer.Result, error) {
	t, err := parseTicket(tk)
	if err != nil {
		// Only a bug or a damaged store makes one; retrying reads the same.
		return issuer.Result{}, &issuer.Error{Type: "serverInternal", Permanent: true,
			Detail: fmt.Sprintf("digicert %s: %v", b.name, err)}
	}
	var o orderInfo
	if _, err := b.call(ctx, fmt.Sprintf("reading order %d", t.Order), http.MethodGet,
		fmt.Sprintf("order/certificate/%d", t.Order), nil, &o); err != nil {
		return issuer.Result{}, err
	}
	switch status := strings.ToLower(o.Status); status {
	case "issued":
		return b.collect(ctx, t, o.Certificate.ID)
	case "rejected", "denied", "canceled", "cancelled", "revoked", "expired":
		b.unpublishAll(ctx, &t)
		typ := "serverInternal"
		if status == "rejected" || status == "denied" {
			// The review said no to these names for this organization.
			typ = "rejectedIdentifier"
		}
		return issuer.Result{}, &issuer.Error{Type: typ, Permanent: true,
			Detail: fmt.Sprintf("digicert %s: DigiCert order %d was %s: %s", b.name, t.Order, status, reason(&o))}
	}

	method := o.DCVMethod
	if method == "" {
		method = b.cfg.DCVMethod
	}
	pending := pendingDomains(&o)
	if len(o.Domains) == 0 && !t.DCVDone {
		// An order info without its domains: validate the certificate's
		// names with the order's random value until check-dcv says done.
		pending = certificateDomains(&o)
	}
	if len(pending) == 0 || (method != DCVDNSTXT && method != DCVDNSCNAME) {
		// Nothing for the gateway to publish: the domains are validated
		// (or validated some other way, say by email from the console), and
		// the order awaits approval, review or issuance.
		b.unpublishAll(ctx, &t)
		return issuer.Result{Ticket: t.encode(), RetryAfter: b.waitFor(o.Status, len(pending) == 0)}, nil
	}

	records, err := b.records(ctx, t.Order, method, pending)
	if err != nil {
		return issuer.Result{}, err
	}
	published := 0
	for _, r := range records {
		if t.has(r) {
			continue
		}
		if err := b.publish.Publish(ctx, r); err != nil {
			err = fmt.Errorf("digicert %s: order %d: publishing %s %s (%s): %w", b.name, t.Order, r.Type, r.Name, b.publish.Method(), err)
			if published == 0 {
				return issuer.Result{}, err
			}
			// Keep what was published in the ticket, so that it is
			// removed later; the next Poll publishes the rest.
			b.log.Warn("digicert: publishing a DCV record", "brand", b.name, "digicert_order", t.Order, "err", err)
			return issuer.Result{Ticket: t.encode(), RetryAfter: b.cfg.DCVPollInterval}, nil
		}
		t.Records = append(t.Records, fromDCV(r))
		published++
	}

	var chk checkDCVResponse
	if _, err := b.call(ctx, fmt.Sprintf("checking DCV of order %d", t.Order), http.MethodPut,
		fmt.Sprintf("order/certificate/%d/check-dcv", t.Order), nil, &chk); err != nil {
		err = transient(err)
		if issuer.IsPermanent(err) {
			return issuer.Result{}, err
		}
		// The records are out; DigiCert also polls them by itself. Hand back
		// the ticket that lists them rather than an error that would lose it.
		b.log.Warn("digicert: check-dcv failed; polling again", "brand", b.name, "digicert_order", t.Order, "err", err)
		after := b.cfg.DCVPollInterval
		if ie, ok := issuer.AsError(err); ok && ie.RetryAfter > 0 {
			after = ie.RetryAfter
		}
		return issuer.Result{Ticket: t.encode(), RetryAfter: after}, nil
	}
	if strings.EqualFold(chk.OrderStatus, "issued") {
		certID := chk.CertificateID
		if certID == 0 {
			certID = o.Certificate.ID
		}
		res, err := b.collect(ctx, t, certID)
		if err != nil {
			// The ticket may list records this Poll published; losing
			// it to an error would leave them in DNS. The next Poll
			// finds the order issued and downloads again.
			b.log.Warn("digicert: downloading the issued certificate", "brand", b.name, "digicert_order", t.Order, "err", err)
			return issuer.Result{Ticket: t.encode(), RetryAfter: b.cfg.DCVPollInterval}, nil
		}
		return res, nil
	}
	if dcvDone(&chk) {
		t.DCVDone = true
		b.unpublishAll(ctx, &t)
		return issuer.Result{Ticket: t.encode(), RetryAfter: b.waitFor(chk.OrderStatus, true)}, nil
	}
	return issuer.Result{Ticket: t.encode(), RetryAfter: b.cfg.DCVPollInterval}, nil
}

// reason is DigiCert's explanation of a closed order.
func reason(o *orderInfo) string {
	for i := len(o.Requests) - 1; i >= 0; i-- {
		if r := strings.TrimSpace(o.Requests[i].ProcessorComment); r != "" {
			return r
		}
		if r := strings.TrimSpace(o.Requests[i].Comments); r != "" {
			return r
		}
	}
	return "DigiCert gave no reason; see the order in CertCentral"
}

// pendingDomains are the order's domains DigiCert has not validated yet.
func pendingDomains(o *orderInfo) []domain {
	var out []domain
	for _, d := range o.Domains {
		switch strings.ToLower(d.DCVStatus) {
		case "valid", "approved", "complete", "completed":
			continue
		}
		if d.Name != "" {
			out = append(out, d)
		}
	}
	return out
}

// certificateDomains are the certificate's names as domains to validate,
// wildcards as their base name, without tokens.
func certificateDomains(o *orderInfo) []domain {
	var out []domain
	for _, n := range append([]string{o.Certificate.CommonName}, o.Certificate.DNSNames...) {
		n = strings.TrimPrefix(strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), ".")), "*.")
		if n != "" && !slices.ContainsFunc(out, func(d domain) bool { return d.Name == n }) {
			out = append(out, domain{Name: n})
		}
	}
	return out
}

// dcvDone reports whether check-dcv found every domain validated.
func dcvDone(c *checkDCVResponse) bool {
	if strings.EqualFold(c.DCVStatus, "valid") || strings.EqualFold(c.DCVStatus, "complete") {
		return true
	}
	if len(c.DNSNameValidations) == 0 {
		return false
	}
	for _, v := range c.DNSNameValidations {
		if !strings.EqualFold(v.Status, "approved") && !strings.EqualFold(v.Status, "valid") {
			return false
		}
	}
	return true
}

// waitFor suggests the next Poll: soon when DigiCert is about to issue (a DV
// product whose domains are validated), slowly while an approver or
// DigiCert's organization review has the order, or while the domains are
// being validated some way the gateway has no part in (email).
func (b *Brand) waitFor(status string, dcvDone bool) time.Duration {
	if dcvDone && isDV(b.cfg.Product) && !strings.EqualFold(status, "needs_approval") {
		return b.cfg.DCVPollInterval
	}
	return b.cfg.ReviewPollInterval
}

// isDV says whether product is one of DigiCert's DV products
// (ssl_dv_geotrust, wildcard_dv_rapidssl, cloud_dv_geotrust, ...), which
// need no organization review.
func isDV(product string) bool {
	return strings.Contains(product, "_dv_") || strings.HasPrefix(product, "dv_") || strings.HasSuffix(product, "_dv")
}

// records builds the DCV records for the pending domains. Each domain's own
// dcv_token is used when the order lists it; otherwise the order's random
// value, which validates every domain of the order, is fetched (DigiCert
// returns the existing value, or a new one when it expired).
func (b *Brand) records(ctx context.Context, orderID int, method string, pending []domain) ([]dcv.Record, error) {
	var orderValue string
	out := make([]dcv.Record, 0, len(pending))
	for _, d := range pending {
		tok := ""
		if d.DCVToken != nil {
			tok = strings.TrimSpace(d.DCVToken.Token)
		}
		if tok == "" {
			if orderValue == "" {
				var rv randomValue
				if _, err := b.call(ctx, fmt.Sprintf("getting the DCV random value of order %d", orderID), http.MethodPut,
					fmt.Sprintf("order/certificate/%d/dcv-random-value", orderID), nil, &rv); err != nil {
					return nil, transient(err)
				}
				if orderValue = strings.TrimSpace(rv.DCVRandomValue); orderValue == "" {
					return nil, fmt.Errorf("digicert %s: order %d: DigiCert handed out an empty DCV random value", b.name, orderID)
				}
			}
			tok = orderValue
		}
		name := strings.TrimPrefix(strings.ToLower(strings.TrimSuffix(d.Name, ".")), "*.")
		r := dcv.Record{Domain: name, Name: dnsauthLabel + name, Type: "TXT", Value: tok}
		if method == DCVDNSCNAME {
			r.Type, r.Value = "CNAME", tok+cnameTargetSuffix
		}
		out = append(out, r)
	}
	return out, nil
}

// collect downloads the issued chain and removes the DCV records. certID
// is DigiCert's id of the issued certificate, which becomes the Result's
// Ref (0 when DigiCert did not say: RevokeRef then searches by serial).
func (b *Brand) collect(ctx context.Context, t ticket, certID int) (issuer.Result, error) {
	data, err := b.call(ctx, fmt.Sprintf("downloading the certificate of order %d", t.Order), http.MethodGet,
		fmt.Sprintf("certificate/download/order/%d/format/pem_all", t.Order), nil, nil)
	if err != nil {
		// Issued but not downloadable yet (cert_unavailable_processing):
		// DigiCert catches up within seconds.
		return issuer.Result{}, transient(err)
	}
	res, err := parseChain(data)
	if err != nil {
		return issuer.Result{}, fmt.Errorf("digicert %s: order %d: pem_all: %w", b.name, t.Order, err)
	}
	b.unpublishAll(ctx, &t)
	res.Ref = certificateRef(certID)
	return res, nil
}

// unpublishAll removes the records the ticket lists. A failure is logged,
// not returned: a leftover TXT record is harmless, and an issued
// certificate or a final refusal must not wait on DNS cleanup.
func (b *Brand) unpublishAll(ctx context.Context, t *ticket) {
	for _, r := range t.Records {
		if err := b.publish.Unpublish(ctx, r.toDCV()); err != nil {
			b.log.Warn("digicert: removing a DCV record", "brand", b.name, "digicert_order", t.Order,
				"record", r.Name, "type", r.Type, "method", b.publish.Method(), "err", err)
		}
	}
	t.Records = nil
}

// parseChain reads a PEM bundle (pem_all: leaf, intermediates, root) into
// a Result: the leaf first, then the intermediates, without self-signed
// roots, which clients must already trust and which only cost bytes in
// every handshake.
func parseChain(data []byte) (issuer.Result, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return issuer.Result{}, fmt.Errorf("parsing a certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return issuer.Result{}, errors.New("no certificate in the bundle")
	}
	leafAt := slices.IndexFunc(certs, func(c *x509.Certificate) bool { return !c.IsCA })
	if leafAt < 0 {
		return issuer.Result{}, errors.New("the bundle holds only CA certificates")
	}
	leaf := certs[leafAt]
	var chain bytes.Buffer
	_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	for i, c := range certs {
		if i == leafAt || selfSigned(c) {
			continue
		}
		_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return issuer.Result{Chain: chain.Bytes(), Leaf: leaf}, nil
}

// selfSigned reports a root: issued by its own subject, under its own key.
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// revocationReasons maps RFC 5280 reason codes to the names DigiCert
// accepts for TLS certificates; other codes become "unspecified".
var revocationReasons = map[int]string{
	0: "unspecified",
	1: "keyCompromise",
	3: "affiliationChanged",
	4: "superseded",
	5: "cessationOfOperation",
}

// Revoke revokes cert at DigiCert. The contract hands over only the
// certificate, so the brand first finds its DigiCert certificate id by
// serial number (GET order/certificate?filters[serial_number]=...), then
// revokes it (PUT certificate/{id}/revoke); RevokeRef skips the search
// when the gateway kept the id. Without Config.SkipApproval the
// revocation waits for an account administrator's approval in CertCentral.
func (b *Brand) Revoke(ctx context.Context, cert *x509.Certificate, reasonCode int) error {
	if cert == nil || cert.SerialNumber == nil {
		return fmt.Errorf("digicert %s: revoke: no certificate", b.name)
	}
	serial := serialHex(cert.SerialNumber)
	q := url.Values{"filters[serial_number]": {serial}}
	var list orderList
	if _, err := b.call(ctx, "finding the certificate with serial "+serial, http.MethodGet,
		"order/certificate?"+q.Encode(), nil, &list); err != nil {
		return err
	}
	certID := 0
	for _, o := range list.Orders {
		// Compared here too: an account that ignores the filter answers
		// with every order.
		if sameSerial(o.Certificate.SerialNumber, serial) && o.Certificate.ID != 0 {
			certID = o.Certificate.ID
			break
		}
	}
	if certID == 0 {
		return fmt.Errorf("digicert %s: revoke: no DigiCert order holds the certificate with serial %s", b.name, serial)
	}
	return b.revokeCertificate(ctx, certID, serial, reasonCode)
}

// RevokeRef revokes the DigiCert certificate whose id ref holds: the
// Result.Ref the brand returned at issuance, which the gateway stored with
// the certificate. It makes the one call Revoke ends with
// (PUT certificate/{id}/revoke), without Revoke's search of the account's
// orders by serial.
//
// A ref that is not a certificate id (empty for certificates issued before
// the brand set Ref, or damaged) falls back to Revoke. An id DigiCert does
// not know is DigiCert's not-found error, never a success.
func (b *Brand) RevokeRef(ctx context.Context, ref string, cert *x509.Certificate, reasonCode int) error {
	certID, err := strconv.Atoi(ref)
	if err != nil || certID <= 0 || certificateRef(certID) != ref {
		return b.Revoke(ctx, cert, reasonCode)
	}
	serial := "unknown"
	if cert != nil && cert.SerialNumber != nil {
		serial = serialHex(cert.SerialNumber)
	}
	return b.revokeCertificate(ctx, certID, serial, reasonCode)
}

// certificateRef is the Result.Ref of DigiCert certificate id: the id in
// decimal, the form RevokeRef parses; empty when DigiCert gave none.
func certificateRef(id int) string {
	if id <= 0 {
		return ""
	}
	return strconv.Itoa(id)
}

// revokeCertificate asks DigiCert to revoke certificate certID; serial only
// names it in errors.
func (b *Brand) revokeCertificate(ctx context.Context, certID int, serial string, reasonCode int) error {
	rr, ok := revocationReasons[reasonCode]
	if !ok {
		rr = "unspecified"
	}
	body := revokeRequest{RevocationReason: rr, SkipApproval: b.cfg.SkipApproval,
		Comment: fmt.Sprintf("revoked through acmegw (reason code %d)", reasonCode)}
	_, err := b.call(ctx, fmt.Sprintf("revoking certificate %d (serial %s)", certID, serial), http.MethodPut,
		fmt.Sprintf("certificate/%d/revoke", certID), body, nil)
	return err
}

// serialHex writes a serial the way DigiCert shows it: upper-case hex, an
// even number of digits.
func serialHex(n *big.Int) string {
	s := strings.ToUpper(n.Text(16))
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return s
}

// sameSerial compares hex serials, ignoring case and leading zeros.
func sameSerial(a, b string) bool {
	norm := func(s string) string {
		s = strings.TrimLeft(strings.ToUpper(strings.ReplaceAll(s, ":", "")), "0")
		return s
	}
	return a != "" && norm(a) == norm(b)
}

// ticketVersion is bumped when the ticket's meaning changes, so a newer
// gateway can still read tickets older instances stored.
const ticketVersion = 1

// ticket is what the gateway stores between Submit and Poll: the DigiCert
// order and the DCV records published for it, so that they can be removed
// by whichever instance sees the order end. It is compact JSON, such as
// {"v":1,"order":123456,"dcv":[{"d":"example.com","n":"_dnsauth.example.com","t":"TXT","v":"..."}]}.
type ticket struct {
	V       int         `json:"v"`
	Order   int         `json:"order"`
	Records []dcvRecord `json:"dcv,omitempty"`
	// DCVDone is set once check-dcv reported every domain validated, for
	// orders whose info lists no domains to tell.
	DCVDone bool `json:"dcv_done,omitempty"`
}

type dcvRecord struct {
	Domain string `json:"d"`
	Name   string `json:"n"`
	Type   string `json:"t"`
	Value  string `json:"v"`
}

func fromDCV(r dcv.Record) dcvRecord {
	return dcvRecord{Domain: r.Domain, Name: r.Name, Type: r.Type, Value: r.Value}
}

func (r dcvRecord) toDCV() dcv.Record {
	return dcv.Record{Domain: r.Domain, Name: r.Name, Type: r.Type, Value: r.Value}
}

func (t *ticket) has(r dcv.Record) bool {
	return slices.Contains(t.Records, fromDCV(r))
}

func (t ticket) encode() string {
	buf, _ := json.Marshal(t) // a struct of strings and ints always encodes
	return string(buf)
}

func parseTicket(s string) (ticket, error) {
	var t ticket
	if err := json.Unmarshal([]byte(s), &t); err != nil {
		return ticket{}, fmt.Errorf("ticket %q is not a DigiCert ticket: %w", truncate(s, 80), err)
	}
	if t.V != ticketVersion || t.Order <= 0 {
		return ticket{}, fmt.Errorf("ticket %q: unknown version %d or no order id", truncate(s, 80), t.V)
	}
	return t, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
