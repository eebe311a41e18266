package aliyun

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/acmegw/acmegw/issuer"
)

// Poll asks Alibaba for the order's state (DescribeCertificateState) and acts
// on it:
//
//   - payed: a ticket again, after Config.PollInterval;
//   - domain_verify with DNS: the record Alibaba names is published through
//     the Publisher, once per name (Alibaba checks it by itself), and the
//     returned ticket remembers it; FILE validation is a permanent error,
//     since no ACME client can be made to serve Alibaba's file;
//   - process: the CA reviews; a ticket after Config.ReviewPollInterval;
//   - certificate: the published records are removed and the chain is
//     returned, leaf first, after checking the leaf is for the CSR's key;
//   - verify_fail: records are removed, DeleteCertificateRequest frees the
//     quota the application held, and the order fails permanently with
//     the CA's reason when Alibaba gives one.
//
// A publishing error, an unknown state or a failed quota release is
// returned as an ordinary error, so the job polls again.
//
// Publishers must accept the same record twice: a record published just
// before the job lost its lease is published again by the next poll.
func (is *Issuer) Poll(ctx context.Context, raw string) (issuer.Result, error) {
	t, err := parseTicket(raw)
	if err != nil {
		return issuer.Result{}, err
	}
	st, err := is.describe(ctx, t.OrderID)
	if err != nil {
		return issuer.Result{}, err
	}
	switch st.Type {
	case statePayed:
		return issuer.Result{Ticket: raw, RetryAfter: is.cfg.PollInterval}, nil
	case stateDomainVerify:
		return is.domainVerify(ctx, t, st)
	case stateProcess:
		return issuer.Result{Ticket: raw, RetryAfter: is.cfg.ReviewPollInterval}, nil
	case stateCertificate:
		return is.issued(ctx, t, st)
	case stateVerifyFail:
		return issuer.Result{}, is.failed(ctx, t, st)
	}
	// "unknow" and anything newer: Alibaba may still be settling; the
	// job's deadline ends it if it never does.
	return issuer.Result{}, fmt.Errorf("aliyun: order %d: unexpected state %q [RequestId %s]", t.OrderID, st.Type, st.RequestID)
}

// describe calls DescribeCertificateState.
func (is *Issuer) describe(ctx context.Context, orderID int64) (describeResponse, error) {
	var st describeResponse
	err := is.call(ctx, "DescribeCertificateState", []param{{"OrderId", strconv.FormatInt(orderID, 10)}}, &st)
	if err != nil {
		return st, fmt.Errorf("order %d: %w", orderID, err)
	}
	return st, nil
}

// domainVerify publishes the record Alibaba asks for.
func (is *Issuer) domainVerify(ctx context.Context, t ticket, st describeResponse) (issuer.Result, error) {
	if strings.EqualFold(st.ValidateType, "FILE") || (st.RecordType == "" && (st.URI != "" || st.Content != "")) {
		is.unpublishAll(ctx, t)
		where := st.Domain + st.URI
		return issuer.Result{}, &issuer.Error{Type: "serverInternal", Permanent: true, Detail: fmt.Sprintf(
			"aliyun %s: order %d asks for FILE validation (%s): the gateway cannot place Alibaba's file under /.well-known/pki-validation/ "+
				"on the customer's server, as ACME clients serve only /.well-known/acme-challenge/; switch the order to DNS validation "+
				"or cancel it in the Alibaba Cloud CAS console", t.Product, t.OrderID, where)}
	}
	typ := strings.ToUpper(strings.TrimSpace(st.RecordType))
	if st.RecordValue == "" || st.RecordDomain == "" || typ == "" {
		// Alibaba has not worked out the record yet.
		return issuer.Result{Ticket: t.encode(), RetryAfter: is.cfg.PollInterval}, nil
	}
	if typ != "TXT" && typ != "CNAME" {
		return issuer.Result{}, &issuer.Error{Type: "serverInternal", Permanent: true, Detail: fmt.Sprintf(
			"aliyun %s: order %d asks for a DNS record of type %q, which the gateway cannot publish (TXT or CNAME only)", t.Product, t.OrderID, st.RecordType)}
	}
	want := wantRecords(t, st, typ)
	// A record of an earlier round that Alibaba no longer asks for (it
	// regenerates values when an application is resubmitted) goes first,
	// so stale TXT values do not pile up at the name.
	var kept []record
	for _, r := range t.Records {
		if slices.Contains(want, r) {
			kept = append(kept, r)
			continue
		}
		if err := is.pub.Unpublish(ctx, r.dcv()); err != nil {
			is.warn(ctx, "removing a stale DCV record", "order", t.OrderID, "name", r.Name, "method", is.pub.Method(), "err", err)
		}
	}
	t.Records = kept
	for _, r := range want {
		if slices.Contains(t.Records, r) {
			continue
		}
		if err := is.pub.Publish(ctx, r.dcv()); err != nil {
			return issuer.Result{}, fmt.Errorf("aliyun: order %d: publishing %s %s for Alibaba's domain validation (%s): %w",
				t.OrderID, r.Type, r.Name, is.pub.Method(), err)
		}
		t.Records = append(t.Records, r)
	}
	return issuer.Result{Ticket: t.encode(), RetryAfter: is.cfg.PollInterval}, nil
}

// wantRecords turns Alibaba's record into one dcv.Record per validated
// name: the one Domain Alibaba names, else every name of the order (with
// a wildcard's "*." removed, where DNS validation of a wildcard happens).
func wantRecords(t ticket, st describeResponse, typ string) []record {
	rd := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(st.RecordDomain), "."))
	var bases []string
	if st.Domain != "" {
		bases = []string{st.Domain}
	} else {
		bases = t.Names
	}
	var out []record
	for _, b := range bases {
		b = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(b, "*."), "."))
		r := record{Domain: b, Name: recordName(rd, b), Type: typ, Value: st.RecordValue}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// recordName places Alibaba's RecordDomain for the name base. Alibaba gives
// the host record relative to the domain ("_dnsauth" for example.com
// means _dnsauth.example.com); it may instead give it relative to the
// registered domain ("_dnsauth.www" for www.example.com) or fully
// qualified, and both forms land on the same name here.
func recordName(rd, base string) string {
	if rd == base || strings.HasSuffix(rd, "."+base) {
		return rd
	}
	rl, bl := strings.Split(rd, "."), strings.Split(base, ".")
	for k := min(len(rl)-1, len(bl)); k > 0; k-- {
		if slices.Equal(rl[len(rl)-k:], bl[:k]) {
			return strings.Join(rl[:len(rl)-k], ".") + "." + base
		}
	}
	return rd + "." + base
}

// unpublishAll removes the records the ticket says were published. A
// failure leaves a harmless stale TXT record behind, so it is logged, not
// returned: the order's outcome does not depend on it.
func (is *Issuer) unpublishAll(ctx context.Context, t ticket) {
	for _, r := range t.Records {
		if err := is.pub.Unpublish(ctx, r.dcv()); err != nil {
			is.warn(ctx, "removing a DCV record", "order", t.OrderID, "name", r.Name, "method", is.pub.Method(), "err", err)
		}
	}
}

// issued checks and returns the chain of an issued order.
func (is *Issuer) issued(ctx context.Context, t ticket, st describeResponse) (issuer.Result, error) {
	certs, err := parseChain(st.Certificate)
	if err != nil {
		return issuer.Result{}, fmt.Errorf("aliyun: order %d: the issued certificate: %w [RequestId %s]", t.OrderID, err, st.RequestID)
	}
	leaf := slices.IndexFunc(certs, t.matchesKey)
	if leaf < 0 {
		return issuer.Result{}, &issuer.Error{Type: "serverInternal", Permanent: true, Detail: fmt.Sprintf(
			"aliyun %s: order %d: Alibaba returned a certificate for another key than the CSR's (CertId %s); not handing it out",
			t.Product, t.OrderID, st.CertID)}
	}
	// Leaf first, as ACME wants it, then the rest as Alibaba sent them.
	ordered := append([]*x509.Certificate{certs[leaf]}, slices.Delete(slices.Clone(certs), leaf, leaf+1)...)
	var chain bytes.Buffer
	for _, c := range ordered {
		_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	is.unpublishAll(ctx, t)
	return issuer.Result{Chain: chain.Bytes(), Leaf: ordered[0], Ref: t.encode()}, nil
}

// parseChain reads the certificates of a PEM bundle, skipping anything else.
func parseChain(s string) ([]*x509.Certificate, error) {
	rest := []byte(s)
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate in the answer")
	}
	return certs, nil
}

// failed handles verify_fail: clean up, free the quota, fail the order.
func (is *Issuer) failed(ctx context.Context, t ticket, st describeResponse) error {
	is.unpublishAll(ctx, t)
	reason := strings.TrimSpace(st.Reason)
	if reason == "" {
		reason = fmt.Sprintf("Alibaba gives no reason through its API; see order %d in the Alibaba Cloud CAS console", t.OrderID)
	}
	detail := fmt.Sprintf("aliyun %s: order %d failed the CA's review (verify_fail): %s", t.Product, t.OrderID, reason)
	// Alibaba keeps a failed application's quota until it is deleted.
	err := is.call(ctx, "DeleteCertificateRequest", []param{{"OrderId", strconv.FormatInt(t.OrderID, 10)}}, &requestIDResponse{})
	if err != nil && !issuer.IsPermanent(err) {
		// Retry so the quota is freed; the next poll sees verify_fail again.
		return fmt.Errorf("%s; freeing its quota with DeleteCertificateRequest failed, will retry: %w", detail, err)
	}
	if err != nil {
		// Deleted meanwhile (by another instance or in the console), or
		// not deletable: the order's outcome stands either way.
		is.warn(ctx, "DeleteCertificateRequest after verify_fail", "order", t.OrderID, "err", err)
		detail += "; its application could not be deleted to free the quota: " + err.Error()
	} else {
		detail += "; the application was deleted to free its quota"
	}
	return &issuer.Error{Type: "rejectedIdentifier", Permanent: true, Detail: detail}
}
