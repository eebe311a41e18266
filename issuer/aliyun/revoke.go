package aliyun

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/acmegw/acmegw/issuer"
)

// Revoke limits: how far the search for a certificate's order goes, and how
// often a throttled call is tried again while a client waits.
const (
	listPageSize   = 50
	maxListPages   = 20
	revokeAttempts = 3
)

// Revoke revokes cert at Alibaba with CancelCertificateForPackageRequest,
// which revokes the certificate and cancels its application. Alibaba takes
// no reason code, so reason is not sent.
//
// The Issuer contract hands Revoke only the certificate, and CAS revokes by
// OrderId, so the order is searched: ListUserCertificateOrder (OrderType
// CPACK, Keyword = the certificate's first name) lists the applications,
// and the one whose issued certificate has cert's serial and issuer is it
// (the CPACK rows carry no serial, so each candidate costs a
// DescribeCertificateState). RevokeTicket is the direct way, for a gateway
// that keeps the ticket with the certificate.
func (is *Issuer) Revoke(ctx context.Context, cert *x509.Certificate, reason int) error {
	if cert == nil {
		return &issuer.Error{Type: "malformed", Permanent: true, Detail: "aliyun: revoke: no certificate"}
	}
	orderID, err := is.findOrder(ctx, cert)
	if err != nil {
		return err
	}
	return is.cancel(ctx, orderID)
}

// RevokeTicket revokes the certificate of the order a ticket of Submit or
// Poll names, without searching for it.
func (is *Issuer) RevokeTicket(ctx context.Context, ticket string, reason int) error {
	t, err := parseTicket(ticket)
	if err != nil {
		return err
	}
	return is.cancel(ctx, t.OrderID)
}

func (is *Issuer) cancel(ctx context.Context, orderID int64) error {
	err := is.callRetrying(ctx, "CancelCertificateForPackageRequest",
		[]param{{"OrderId", strconv.FormatInt(orderID, 10)}}, &requestIDResponse{})
	if err != nil {
		return fmt.Errorf("revoking order %d: %w", orderID, err)
	}
	return nil
}

// findOrder searches the application whose certificate is cert.
func (is *Issuer) findOrder(ctx context.Context, cert *x509.Certificate) (int64, error) {
	keyword := cert.Subject.CommonName
	if len(cert.DNSNames) > 0 {
		keyword = cert.DNSNames[0]
	}
	// Keyword is a fuzzy match on the bound domain; without "*." it also
	// finds a wildcard's application.
	keyword = strings.TrimPrefix(keyword, "*.")
	if keyword == "" {
		return 0, &issuer.Error{Type: "malformed", Permanent: true,
			Detail: fmt.Sprintf("aliyun: revoke: certificate %s names no domain to search its order by", serialText(cert.SerialNumber))}
	}
	seen := 0
	for page := int64(1); page <= maxListPages; page++ {
		var out listResponse
		err := is.callRetrying(ctx, "ListUserCertificateOrder", []param{
			{"OrderType", "CPACK"},
			{"Keyword", keyword},
			{"CurrentPage", strconv.FormatInt(page, 10)},
			{"ShowSize", strconv.Itoa(listPageSize)},
		}, &out)
		if err != nil {
			return 0, fmt.Errorf("revoke: searching the order of certificate %s: %w", serialText(cert.SerialNumber), err)
		}
		for _, e := range out.CertificateOrderList {
			seen++
			if ok, err := is.orderHasCert(ctx, e, cert); err != nil {
				return 0, err
			} else if ok {
				return e.OrderID, nil
			}
		}
		if len(out.CertificateOrderList) < listPageSize || page*listPageSize >= out.TotalCount {
			break
		}
	}
	return 0, &issuer.Error{Type: "serverInternal", Permanent: true, Detail: fmt.Sprintf(
		"aliyun %s: revoke: no issued Alibaba Cloud CAS order holds certificate %s (searched %d orders for %q); revoke it in the CAS console",
		is.cfg.ProductCode, serialText(cert.SerialNumber), seen, keyword)}
}

// orderHasCert reports whether the application e issued cert.
func (is *Issuer) orderHasCert(ctx context.Context, e orderEntry, cert *x509.Certificate) (bool, error) {
	switch e.Status {
	case "", "ISSUED", "WILLEXPIRED":
	default:
		// Not issued, already revoked or expired: nothing to revoke there.
		return false, nil
	}
	if e.OrderID <= 0 {
		return false, nil
	}
	if e.SerialNo != "" {
		if n, ok := new(big.Int).SetString(strings.ReplaceAll(e.SerialNo, ":", ""), 16); ok {
			return n.Cmp(cert.SerialNumber) == 0, nil
		}
	}
	var st describeResponse
	err := is.callRetrying(ctx, "DescribeCertificateState", []param{{"OrderId", strconv.FormatInt(e.OrderID, 10)}}, &st)
	if err != nil {
		return false, fmt.Errorf("revoke: order %d: %w", e.OrderID, err)
	}
	if st.Type != stateCertificate {
		return false, nil
	}
	certs, err := parseChain(st.Certificate)
	if err != nil {
		return false, nil
	}
	leaf := certs[0]
	return leaf.SerialNumber.Cmp(cert.SerialNumber) == 0 && bytes.Equal(leaf.RawIssuer, cert.RawIssuer), nil
}

// callRetrying is call for Revoke, which runs while the ACME client waits
// and has no job to retry it: a throttled call (Alibaba allows about 10
// calls a second per account, and the search makes several) is tried again
// after its RetryAfter, while ctx allows.
func (is *Issuer) callRetrying(ctx context.Context, action string, params []param, out any) error {
	for attempt := 1; ; attempt++ {
		err := is.call(ctx, action, params, out)
		ie, ok := issuer.AsError(err)
		if err == nil || !ok || ie.Permanent || ie.Type != "rateLimited" || attempt == revokeAttempts {
			return err
		}
		timer := time.NewTimer(ie.RetryAfter)
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
	}
}

// serialText is a serial as the gateway's store names certificates.
func serialText(n *big.Int) string {
	if n == nil {
		return "<none>"
	}
	return n.Text(16)
}

// RevokeRef revokes by the ticket the gateway stored as the certificate's
// brand reference (issuer.RefRevoker), without searching by serial.
func (is *Issuer) RevokeRef(ctx context.Context, ref string, _ *x509.Certificate, reason int) error {
	return is.RevokeTicket(ctx, ref, reason)
}
