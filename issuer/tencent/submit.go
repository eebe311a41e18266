package tencent

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/acmegw/acmegw/issuer"
)

// submitRetry is how soon the job should come back when Submit bought a
// certificate but a later step failed transiently.
const submitRetry = 5 * time.Second

// Submit buys a certificate for req and hands the CSR to Tencent. It
// answers with a ticket to Poll: Tencent never issues within the call.
//
// Requests the product cannot take (IP addresses, wildcards or more names
// than configured, a CSR whose common name is not one of the names) are
// refused with a permanent *issuer.Error before anything is bought. Once a
// certificate is bought, Submit answers with a ticket even when a later
// step failed transiently, so that the job resumes the order through Poll
// instead of buying another one; only a permanent refusal (Tencent
// rejecting the CSR or a name) fails it, and the detail names the bought
// CertificateId so that an operator can reuse or refund it.
func (b *Brand) Submit(ctx context.Context, req issuer.Request) (issuer.Result, error) {
	t, err := b.newTicket(req)
	if err != nil {
		return issuer.Result{}, err
	}
	reused, err := b.findPurchase(ctx, req.OrderID)
	if err != nil {
		return issuer.Result{}, fmt.Errorf("tencent %s: order %s: looking for an earlier purchase: %w", b.name, req.OrderID, err)
	}
	if reused != "" {
		// A Submit for this order bought before and never answered (the
		// gateway died, or the answer was lost): continue that purchase
		// as Poll would.
		t.ID = reused
		b.log.Info("tencent: resuming an earlier purchase for the order", "order", req.OrderID, "certificate", reused)
		res, err := b.step(ctx, t)
		return b.afterPurchase(req.OrderID, t, res, err)
	}

	var bought createCertificateResponse
	in := createCertificateRequest{
		ProductID: b.cfg.ProductID,
		DomainNum: int64(len(t.Names)),
		TimeSpan:  b.cfg.Period,
	}
	if b.cfg.AutoVoucher {
		in.AutoVoucher = 1
	}
	if b.tagOrders(req.OrderID) {
		in.Tags = []tag{{TagKey: orderTagKey, TagValue: req.OrderID}}
	}
	if err := b.api.call(ctx, actCreateCertificate, in, &bought); err != nil {
		err = classify(err, beforePurchase)
		if ie, ok := issuer.AsError(err); ok && len(in.Tags) > 0 && strings.Contains(ie.Detail, "UnauthorizedOperation") {
			// Tagging needs its own CAM permission; say how to do without.
			ie.Detail += "; the purchase carried the order tag " + orderTagKey + ": grant the key tag permissions, or set no_order_tag"
		}
		return issuer.Result{}, fmt.Errorf("tencent %s: order %s: buying product %d: %w", b.name, req.OrderID, b.cfg.ProductID, err)
	}
	if len(bought.CertificateIDs) == 0 || bought.CertificateIDs[0] == "" {
		return issuer.Result{}, fmt.Errorf("tencent %s: order %s: CreateCertificate answered without a certificate id (deals %v)", b.name, req.OrderID, bought.DealIDs)
	}
	t.ID = bought.CertificateIDs[0]
	b.log.Info("tencent: certificate bought", "order", req.OrderID, "certificate", t.ID, "product", b.cfg.ProductID)

	if err := b.submitInfo(ctx, t); err != nil {
		return b.afterPurchase(req.OrderID, t, issuer.Result{}, err)
	}
	// Read the order once right away: for a DV product Tencent already has
	// the DCV records, and publishing them now saves a poll interval.
	res, err := b.poll(ctx, t, nil)
	return b.afterPurchase(req.OrderID, t, res, err)
}

// afterPurchase is Submit's answer once a certificate is bought: a
// transient failure becomes the ticket, so the purchase is never lost.
func (b *Brand) afterPurchase(orderID string, t *ticket, res issuer.Result, err error) (issuer.Result, error) {
	if err == nil {
		return res, nil
	}
	if issuer.IsPermanent(err) {
		return issuer.Result{}, fmt.Errorf("tencent %s: order %s: certificate %s: %w", b.name, orderID, t.ID, err)
	}
	b.log.Warn("tencent: step after purchase failed; the order continues through Poll",
		"order", orderID, "certificate", t.ID, "err", err)
	return issuer.Result{Ticket: t.encode(), RetryAfter: max(retryHint(err), submitRetry)}, nil
}

// Poll follows the order in ticket: it submits what a failed Submit left
// undone, publishes DCV records and asks Tencent to check them, and
// collects the chain once issued. A refusal by the CA, or a certificate
// cancelled or revoked meanwhile, is a permanent *issuer.Error. An order
// waiting for a person to act in the Tencent console (more information,
// a confirmation letter) is a transient *issuer.Error with a RetryAfter of
// hours, so its detail reaches the job's records.
func (b *Brand) Poll(ctx context.Context, tk string) (issuer.Result, error) {
	t, err := decodeTicket(tk)
	if err != nil {
		return issuer.Result{}, fmt.Errorf("tencent %s: poll: %w", b.name, err)
	}
	res, err := b.step(ctx, t)
	if err != nil {
		return issuer.Result{}, fmt.Errorf("tencent %s: certificate %s: %w", b.name, t.ID, err)
	}
	return res, nil
}

// step advances an order from wherever its ticket says it is.
func (b *Brand) step(ctx context.Context, t *ticket) (issuer.Result, error) {
	d, err := b.describe(ctx, t.ID)
	if err != nil {
		return issuer.Result{}, err
	}
	if t.Step == stepBought {
		if d.Status == statusAwaitingInfo || d.Status == statusAwaitingFreeDoc {
			if err := b.submitInfo(ctx, t); err != nil {
				return issuer.Result{}, err
			}
			// The status moved on; read it again.
			d = nil
		} else {
			// The submission went through before the answer was lost.
			t.Step, t.CSR = stepSubmitted, ""
		}
	}
	return b.poll(ctx, t, d)
}

// describe reads a certificate's detail.
func (b *Brand) describe(ctx context.Context, id string) (*certificateDetail, error) {
	var d certificateDetail
	if err := b.api.call(ctx, actDescribeCertificateDetail, certificateIDRequest{CertificateID: id}, &d); err != nil {
		return nil, classify(err, afterPurchase)
	}
	return &d, nil
}

// submitInfo hands the CSR and names to Tencent and sends the order to the
// CA. Submitting the information again for a certificate still awaiting
// it is harmless, which makes resuming after a lost answer safe.
func (b *Brand) submitInfo(ctx context.Context, t *ticket) error {
	companyType := int64(1) // a person: DV only
	if b.cfg.CompanyID != "" || b.cfg.ManagerID != "" {
		companyType = 2
	}
	info := certificateInfoSubmitRequest{
		CertID:         t.ID,
		GenCsrType:     "parse",
		CertCommonName: t.Names[0],
		CompanyType:    companyType,
		CompanyID:      b.cfg.CompanyID,
		ManagerID:      b.cfg.ManagerID,
		Csr:            t.CSR,
		DNSNames:       t.Names[1:],
		VerifyType:     VerifyTypeDNS,
		CaType:         b.cfg.CAType,
	}
	if companyType == 1 {
		info.ContactEmail = b.cfg.ContactEmail
	}
	if err := b.api.call(ctx, actCertificateInfoSubmit, info, nil); err != nil {
		return classify(err, afterPurchase)
	}
	var sub certificateOrderSubmitResponse
	err := b.api.call(ctx, actCertificateOrderSubmit, certificateOrderSubmitRequest{CertID: t.ID, VerifyType: VerifyTypeDNS}, &sub)
	if err != nil {
		return classify(err, afterPurchase)
	}
	t.Step, t.CSR = stepSubmitted, ""
	b.log.Info("tencent: order submitted to the CA", "certificate", t.ID, "ca_order", sub.OrderID, "status", sub.Status)
	return nil
}

// poll acts on the certificate's status; d is its detail, or nil to read it.
func (b *Brand) poll(ctx context.Context, t *ticket, d *certificateDetail) (issuer.Result, error) {
	if d == nil {
		var err error
		if d, err = b.describe(ctx, t.ID); err != nil {
			return issuer.Result{}, err
		}
	}
	why := statusReason(d)
	switch d.Status {
	case statusReviewing, statusDNSAdded, statusReissuing:
		return b.validate(ctx, t, d)

	case statusIssued:
		return b.collect(ctx, t, d)

	case statusFailed:
		b.unpublishAll(ctx, t)
		return issuer.Result{}, refuse(failureType(d), "certificate %s failed review: %s", t.ID, why)

	case statusExpired:
		b.unpublishAll(ctx, t)
		return issuer.Result{}, refuse("serverInternal", "certificate %s expired before it was issued: %s", t.ID, why)

	case statusCancelling, statusCancelled, statusRefunded:
		b.unpublishAll(ctx, t)
		return issuer.Result{}, refuse("serverInternal", "certificate %s was cancelled in the Tencent Cloud account: %s", t.ID, why)

	case statusRevoking, statusRevoked, statusAwaitingRevoke:
		b.unpublishAll(ctx, t)
		return issuer.Result{}, refuse("serverInternal", "certificate %s was revoked in the Tencent Cloud account before the gateway collected it: %s", t.ID, why)

	case statusAwaitingInfo, statusAwaitingFreeDoc:
		return issuer.Result{}, &issuer.Error{Type: "serverInternal", RetryAfter: b.cfg.WaitPollInterval,
			Detail: detailPrefix + fmt.Sprintf("certificate %s waits for more information in the Tencent Cloud console: %s", t.ID, why)}

	case statusAwaitingLetter:
		return issuer.Result{}, &issuer.Error{Type: "serverInternal", RetryAfter: b.cfg.WaitPollInterval,
			Detail: detailPrefix + fmt.Sprintf("certificate %s waits for the signed confirmation letter to be uploaded in the Tencent Cloud console: %s", t.ID, why)}
	}
	return issuer.Result{}, fmt.Errorf("unknown certificate status %d: %s", d.Status, why)
}

// validate publishes the DCV records Tencent asks for and has it check
// them. A record that fails to publish stops the step: with nothing new
// published it is an error (retried), otherwise the ticket keeps what was
// published so far.
func (b *Brand) validate(ctx context.Context, t *ticket, d *certificateDetail) (issuer.Result, error) {
	records, skipped := dcvRecords(d.DvAuthDetail)
	for _, s := range skipped {
		b.log.Warn("tencent: DCV entry the gateway cannot publish", "certificate", t.ID, "entry", s)
	}
	fresh := 0
	var pubErr error
	for _, r := range records {
		if t.published(r) {
			continue
		}
		if err := b.publish.Publish(ctx, r); err != nil {
			pubErr = fmt.Errorf("publishing DCV record %s %s for %s (%s): %w", r.Type, r.Name, r.Domain, b.publish.Method(), err)
			break
		}
		t.Published = append(t.Published, toRecord(r))
		fresh++
	}
	if pubErr != nil && fresh == 0 {
		return issuer.Result{}, pubErr
	}
	if pubErr != nil {
		b.log.Warn("tencent: DCV records only partly published", "certificate", t.ID, "err", pubErr)
		return issuer.Result{Ticket: t.encode(), RetryAfter: submitRetry}, nil
	}

	now := b.cfg.Now()
	due := time.Unix(t.Checked, 0).Add(b.cfg.RecheckInterval)
	if !b.cfg.SkipComplete && len(records) > 0 && (fresh > 0 || !now.Before(due)) {
		// CompleteCertificate tells the CA to look now rather than on its
		// own schedule. Its failure (Tencent refusing while the order is
		// under organization review, a rate limit) must not fail the
		// order: the next poll asks again.
		if err := b.api.call(ctx, actCompleteCertificate, certificateIDRequest{CertificateID: t.ID}, nil); err != nil {
			b.log.Warn("tencent: CompleteCertificate failed; asking again later", "certificate", t.ID, "err", err)
		} else {
			t.Checked = now.Unix()
		}
	}
	wait := b.cfg.PollInterval
	if strings.HasSuffix(strings.ToUpper(d.StatusMsg), "REVIEWING") {
		wait = b.cfg.ReviewPollInterval
	}
	return issuer.Result{Ticket: t.encode(), RetryAfter: wait}, nil
}

// newTicket checks req against the product and prepares the order's ticket.
func (b *Brand) newTicket(req issuer.Request) (*ticket, error) {
	csr := req.CSR
	if csr == nil {
		return nil, refuse("badCSR", "order %s has no CSR", req.OrderID)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, refuse("badCSR", "CSR signature: %v", err)
	}
	if len(req.IPs) > 0 {
		return nil, refuse("rejectedIdentifier", "product %d certifies domain names only, not IP addresses %v", b.cfg.ProductID, req.IPs)
	}
	names := req.DNSNames
	if len(names) == 0 {
		names = csr.DNSNames
	}
	var uniq []string
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), "."))
		if n != "" && !slices.Contains(uniq, n) {
			uniq = append(uniq, n)
		}
	}
	switch {
	case len(uniq) == 0:
		return nil, refuse("rejectedIdentifier", "order %s names no domain", req.OrderID)
	case len(uniq) > b.cfg.MaxNames:
		return nil, refuse("rejectedIdentifier", "product %d takes at most %d names, the order has %d", b.cfg.ProductID, b.cfg.MaxNames, len(uniq))
	}
	if !b.cfg.Wildcard {
		for _, n := range uniq {
			if isWildcard(n) {
				return nil, refuse("rejectedIdentifier", "product %d does not certify wildcard names such as %s", b.cfg.ProductID, n)
			}
		}
	}
	// Tencent requires CertCommonName to be the CSR's common name; a CSR
	// without one is ordered under the first name.
	cn := strings.ToLower(strings.TrimSuffix(csr.Subject.CommonName, "."))
	if cn == "" {
		cn = uniq[0]
	} else if !slices.Contains(uniq, cn) {
		return nil, refuse("badCSR", "the CSR's common name %q is not one of the order's names %v", csr.Subject.CommonName, uniq)
	}
	ordered := append([]string{cn}, slices.DeleteFunc(slices.Clone(uniq), func(n string) bool { return n == cn })...)
	spki := sha256.Sum256(csr.RawSubjectPublicKeyInfo)
	return &ticket{
		V:     ticketVersion,
		Step:  stepBought,
		CSR:   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr.Raw})),
		Names: ordered,
		SPKI:  hex.EncodeToString(spki[:]),
	}, nil
}

// tagOrders reports whether purchases for orderID carry the order tag.
func (b *Brand) tagOrders(orderID string) bool { return !b.cfg.NoOrderTag && orderID != "" }

// findPurchase returns the certificate an earlier Submit bought for
// orderID, or "" when there is none (or tagging is off).
func (b *Brand) findPurchase(ctx context.Context, orderID string) (string, error) {
	if !b.tagOrders(orderID) {
		return "", nil
	}
	var found describeCertificatesResponse
	in := describeCertificatesRequest{Limit: 10, Tags: []tag{{TagKey: orderTagKey, TagValue: orderID}}}
	if err := b.api.call(ctx, actDescribeCertificates, in, &found); err != nil {
		return "", classify(err, beforePurchase)
	}
	for _, c := range found.Certificates {
		switch c.Status {
		case statusCancelling, statusCancelled, statusRefunded:
			// An operator gave this one back; buy anew.
			continue
		}
		if c.CertificateID != "" {
			return c.CertificateID, nil
		}
	}
	return "", nil
}

// statusReason is Tencent's explanation of a status, for problem details.
func statusReason(d *certificateDetail) string {
	var parts []string
	for _, s := range []string{d.StatusMsg, d.StatusName} {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(parts, s) {
			parts = append(parts, s)
		}
	}
	if d.VerifyType != "" {
		parts = append(parts, "validation method "+d.VerifyType)
	}
	if len(parts) == 0 {
		return fmt.Sprintf("status %d", d.Status)
	}
	return fmt.Sprintf("status %d: %s", d.Status, strings.Join(parts, "; "))
}

// failureType is the ACME problem type for a failed review: "unauthorized"
// when domain validation failed or timed out (control of the domain was
// not shown to the CA), "rejectedIdentifier" when the CA refused the names
// or the order itself.
func failureType(d *certificateDetail) string {
	m := strings.ToLower(d.StatusMsg)
	for _, k := range []string{"域名验证", "dcv", "domain validation", "validation timed out", "verification", "dns"} {
		if strings.Contains(m, k) {
			return "unauthorized"
		}
	}
	return "rejectedIdentifier"
}

// leafMatches reports whether cert carries the CSR key recorded in t.
func (t *ticket) leafMatches(cert *x509.Certificate) bool {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:]) == t.SPKI
}
