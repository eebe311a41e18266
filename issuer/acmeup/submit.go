package acmeup

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/acme/api"
	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/challenge/dns01"
	"github.com/go-acme/lego/v4/challenge/resolver"

	"github.com/acmegw/acmegw/issuer"
)

// Submit orders a certificate for req.CSR from the upstream and waits for it:
// new order (with the configured profile and req.NotBefore/NotAfter when
// set), dns-01 for every pending authorization, finalize, download. It is
// synchronous and may take as long as the upstream needs (seconds for DV), so
// it is meant to run in the issuance job worker, not in a request handler. The
// Result always carries a chain, never a ticket. req.Validity is not sent:
// upstream CAs mostly refuse notAfter, and the profile sets the lifetime.
//
// ctx bounds the whole exchange: when it ends, Submit returns at once with an
// error wrapping ctx.Err(); upstream requests still in flight fail with it,
// and the abandoned order is left to expire at the upstream.
//
// An error is an *UpstreamError when the upstream answered with a problem
// document; IsPermanent tells a rejection worth failing the order from a
// failure worth retrying.
func (b *Brand) Submit(ctx context.Context, req issuer.Request) (issuer.Result, error) {
	fail := func(err error) (issuer.Result, error) {
		err = fmt.Errorf("upstream %s: order %s: %w", b.name, req.OrderID, err)
		if errors.Is(err, ErrRefused) {
			err = refusal{err}
		}
		return issuer.Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if req.CSR == nil {
		return fail(fmt.Errorf("%w: no CSR", ErrRefused))
	}
	if err := b.checkNames(req); err != nil {
		return fail(err)
	}
	key, kid, err := b.account(ctx)
	if err != nil {
		return fail(err)
	}
	core, err := b.core(ctx, key, kid)
	if err != nil {
		return fail(err)
	}
	certifier, err := b.certifier(core)
	if err != nil {
		return fail(err)
	}

	// lego's waits (DNS propagation, challenge and order polling) take no
	// context, so the exchange runs on its own goroutine and Submit stops
	// waiting when ctx ends; the context-bound transport makes the
	// goroutine's further requests fail and it winds down by itself.
	type outcome struct {
		res *certificate.Resource
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- outcome{err: fmt.Errorf("lego panicked: %v", p)}
			}
		}()
		res, err := certifier.ObtainForCSR(certificate.ObtainForCSRRequest{
			CSR:       req.CSR,
			NotBefore: req.NotBefore,
			NotAfter:  req.NotAfter,
			Bundle:    true,
			Profile:   b.cfg.Profile,
		})
		done <- outcome{res, err}
	}()
	var out outcome
	select {
	case <-ctx.Done():
		return fail(ctx.Err())
	case out = <-done:
	}
	if out.err != nil {
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		ue := classify(out.err)
		var u *UpstreamError
		if errors.As(ue, &u) && u.Type == problemNS+"accountDoesNotExist" {
			b.forgetAccount(kid)
		}
		return fail(ue)
	}
	res, err := b.result(req.CSR, out.res.Certificate)
	if err != nil {
		return fail(err)
	}
	res.Alternates = b.alternates(core, out.res.CertURL, res.Leaf)
	return res, nil
}

// Poll always fails: the brand issues synchronously in Submit and never hands
// out tickets, so a ticket reaching it is a bug in the caller.
func (b *Brand) Poll(ctx context.Context, ticket string) (issuer.Result, error) {
	return issuer.Result{}, fmt.Errorf("upstream %s: poll %q: acmeup issues synchronously and never hands out tickets", b.name, ticket)
}

// Revoke asks the upstream to revoke cert with the RFC 5280 reason code,
// signed by the brand's upstream account (the one that ordered it). A
// certificate the upstream already revoked counts as success, so a retried
// revocation job converges.
func (b *Brand) Revoke(ctx context.Context, cert *x509.Certificate, reason int) error {
	if cert == nil {
		return fmt.Errorf("upstream %s: revoke: no certificate", b.name)
	}
	serial := cert.SerialNumber.Text(16)
	if reason < 0 || reason > 10 || reason == 7 {
		return fmt.Errorf("upstream %s: revoke %s: %w: reason code %d is not defined by RFC 5280", b.name, serial, ErrRefused, reason)
	}
	key, kid, err := b.account(ctx)
	if err != nil {
		return fmt.Errorf("upstream %s: revoke %s: %w", b.name, serial, err)
	}
	core, err := b.core(ctx, key, kid)
	if err != nil {
		return fmt.Errorf("upstream %s: revoke %s: %w", b.name, serial, err)
	}
	r := uint(reason)
	err = core.Certificates.Revoke(acme.RevokeCertMessage{
		Certificate: base64.RawURLEncoding.EncodeToString(cert.Raw),
		Reason:      &r,
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("upstream %s: revoke %s: %w", b.name, serial, ctx.Err())
	}
	ue := classify(err)
	var u *UpstreamError
	if errors.As(ue, &u) && u.Type == problemNS+"alreadyRevoked" {
		return nil
	}
	return fmt.Errorf("upstream %s: revoke %s: %w", b.name, serial, ue)
}

// core opens an ACME session with the upstream (one directory fetch). Its
// HTTP client is bound to ctx, so a cancelled Submit or Revoke stops talking
// to the upstream. kid empty means the account is not registered yet.
func (b *Brand) core(ctx context.Context, key crypto.Signer, kid string) (*api.Core, error) {
	// A fresh client each time: lego wraps the client's transport in place.
	hc := &http.Client{
		Transport: ctxTransport{ctx: ctx, base: b.transport},
		Timeout:   2 * time.Minute,
	}
	core, err := api.New(hc, userAgent, b.cfg.Directory, kid, key)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("directory: %w", ctx.Err())
		}
		return nil, fmt.Errorf("directory %s: %w", b.cfg.Directory, classify(err))
	}
	return core, nil
}

// certifier wires lego's order flow to the brand's dns-01 solver.
func (b *Brand) certifier(core *api.Core) (*certificate.Certifier, error) {
	solvers := resolver.NewSolversManager(core)
	if b.provider != nil {
		opts := []dns01.ChallengeOption{
			dns01.CondOption(b.cfg.SkipAuthoritativeCheck, dns01.DisableAuthoritativeNssPropagationRequirement()),
			// Without the authoritative check, lego would not compare the
			// TXT value at all unless the recursive check is required.
			dns01.CondOption(b.cfg.SkipAuthoritativeCheck, dns01.RecursiveNSsPropagationRequirement()),
		}
		if err := solvers.SetDNS01Provider(b.provider, opts...); err != nil {
			return nil, fmt.Errorf("dns-01 solver: %w", err)
		}
	}
	return certificate.NewCertifier(core, resolver.NewProber(solvers), certificate.CertifierOptions{
		KeyType: certcrypto.EC256, // unused: the CSR brings its own key
		Timeout: b.cfg.FinalizeTimeout,
	}), nil
}

// ctxTransport runs every request under one context, which lego's API does
// not take.
type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.base.RoundTrip(r.WithContext(t.ctx))
}

// checkNames refuses a CSR whose names (CN included) differ from the order's
// identifiers. The upstream challenges are solved with the gateway's own DNS
// credential, so without this check the brand would obtain certificates for
// names no ACME client proved it controls.
func (b *Brand) checkNames(req issuer.Request) error {
	want := make([]string, 0, len(req.DNSNames)+len(req.IPs))
	for _, n := range req.DNSNames {
		want = append(want, strings.ToLower(n))
	}
	for _, s := range req.IPs {
		ip := net.ParseIP(s)
		if ip == nil {
			return fmt.Errorf("%w: identifier %q is not an IP address", ErrRefused, s)
		}
		want = append(want, ip.String())
	}
	var got []string
	for _, n := range certcrypto.ExtractDomainsCSR(req.CSR) {
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		}
		got = append(got, strings.ToLower(n))
	}
	slices.Sort(want)
	want = slices.Compact(want)
	slices.Sort(got)
	got = slices.Compact(got)
	if len(want) == 0 {
		return fmt.Errorf("%w: the order has no identifiers", ErrRefused)
	}
	if !slices.Equal(want, got) {
		return fmt.Errorf("%w: CSR names %v differ from the order's identifiers %v", ErrRefused, got, want)
	}
	if len(req.IPs) > 0 && !b.cfg.PreValidated {
		return fmt.Errorf("%w: IP identifiers need an upstream that pre-validates them; dns-01 cannot prove an address", ErrRefused)
	}
	if len(want) > maxNames {
		return fmt.Errorf("%w: %d names, at most %d", ErrRefused, len(want), maxNames)
	}
	return nil
}

// result turns the upstream's PEM bundle into a Result, checking that the
// leaf certifies the CSR's key: a CA answering with someone else's
// certificate must not reach the client.
func (b *Brand) result(csr *x509.CertificateRequest, bundle []byte) (issuer.Result, error) {
	chain, certs, err := parseChain(bundle)
	if err != nil {
		return issuer.Result{}, err
	}
	leaf := certs[0]
	pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(csr.PublicKey) {
		return issuer.Result{}, errors.New("the upstream certificate does not certify the CSR's key")
	}
	return issuer.Result{Chain: chain, Leaf: leaf}, nil
}

// alternates fetches the upstream's other chains for the same leaf (RFC 8555
// "alternate" links), leaf first. They are optional extras: the certificate
// is issued either way, so a failure here yields none rather than an error.
func (b *Brand) alternates(core *api.Core, certURL string, leaf *x509.Certificate) [][]byte {
	if certURL == "" {
		return nil
	}
	all, err := core.Certificates.GetAll(certURL, true)
	if err != nil {
		return nil
	}
	urls := make([]string, 0, len(all))
	for u := range all {
		if u != certURL {
			urls = append(urls, u)
		}
	}
	slices.Sort(urls) // map order is random; keep the Result stable
	var out [][]byte
	for _, u := range urls {
		chain, certs, err := parseChain(all[u].Cert)
		if err != nil || !certs[0].Equal(leaf) {
			continue
		}
		out = append(out, chain)
	}
	return out
}

// parseChain re-encodes a PEM bundle as clean CERTIFICATE blocks, leaf first,
// dropping anything else the upstream put around them.
func parseChain(bundle []byte) ([]byte, []*x509.Certificate, error) {
	var (
		out   []byte
		certs []*x509.Certificate
	)
	for rest := bundle; ; {
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
			return nil, nil, fmt.Errorf("upstream chain: %w", err)
		}
		certs = append(certs, c)
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes})...)
	}
	if len(certs) == 0 {
		return nil, nil, errors.New("upstream chain: no certificate")
	}
	return out, certs, nil
}
