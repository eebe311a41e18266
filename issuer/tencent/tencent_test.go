package tencent_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/dcv"
	"github.com/acmegw/acmegw/issuer/tencent"
	"github.com/acmegw/acmegw/issuer/tencent/tencenttest"
)

func decodeCert(t *testing.T, b []byte) (*x509.Certificate, []byte) {
	t.Helper()
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, nil
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("chain: %v", err)
	}
	return c, rest
}

// TestDVFlow runs a DV order end to end: the brand buys, submits the CSR,
// publishes the TXT record Tencent asks for into a real DNS server, has
// Tencent check it, and collects the chain; the record is gone afterwards.
func TestDVFlow(t *testing.T) {
	e := newEnv(t, tencenttest.Options{})
	b := e.brand(t, 104, func(c *tencent.Config) { c.MaxNames = 1 })
	req := request(t, "order-dv-1", "www.example.com")

	res, err := b.Submit(context.Background(), req)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	if res.Ticket == "" || len(res.Chain) > 0 {
		t.Fatalf("Submit = %+v, want a ticket", res)
	}
	id := certID(t, e.fake)
	if strings.Contains(res.Ticket, e.fake.SecretKey()) {
		t.Error("the ticket contains the secret key")
	}
	// Submit already read the order once and published its record.
	c, _ := e.fake.Certificate(id)
	if len(c.DCV) != 1 || e.pub.live()[c.DCV[0].Name] != c.DCV[0].Value {
		t.Fatalf("after Submit: DCV %+v, published %v", c.DCV, e.pub.live())
	}
	if c.DCV[0].Name != "_dnsauth.www.example.com" {
		t.Errorf("DCV record name %s", c.DCV[0].Name)
	}

	res, err = pollUntilDone(t, b, res, 5, nil)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	verifyChain(t, e.fake, res, req.CSR, "www.example.com")
	if got := len(e.pub.live()); got != 0 {
		t.Errorf("%d DCV records still published after issuance", got)
	}
	if lifetime := res.Leaf.NotAfter.Sub(res.Leaf.NotBefore); lifetime > b.Describe().MaxValidity {
		t.Errorf("leaf lives %v, more than Describe's %v", lifetime, b.Describe().MaxValidity)
	}

	c, _ = e.fake.Certificate(id)
	if c.Status != tencenttest.StatusIssued || c.VerifyType != "DNS" || c.CompanyType != 1 ||
		c.ContactEmail != "pki@example.com" || c.CommonName != "www.example.com" || c.Completes == 0 {
		t.Errorf("fake certificate %+v", c)
	}
	if c.Tags["acmegw-order"] != "order-dv-1" {
		t.Errorf("purchase tags %v, want acmegw-order=order-dv-1", c.Tags)
	}
	if want := "acmegw-" + res.Leaf.SerialNumber.Text(16); c.Alias != want {
		t.Errorf("alias %q, want %q", c.Alias, want)
	}
	if n := e.fake.Calls("CreateCertificate"); n != 1 {
		t.Errorf("%d purchases", n)
	}
}

// TestDelegatedMultiName validates a multi-name order through CNAME
// delegation: each _dnsauth name is a CNAME into a zone the gateway
// answers, where the publisher writes; Tencent's check follows the CNAME.
func TestDelegatedMultiName(t *testing.T) {
	e := newEnv(t, tencenttest.Options{})
	names := []string{"example.com", "*.example.com", "api.shop.example.org"}
	for _, n := range []string{"example.com", "api.shop.example.org"} {
		e.dns.AddCNAME("_dnsauth."+n, n+".dcv.gateway.test")
	}
	e.pub.target = func(name string) string {
		return strings.TrimPrefix(name, "_dnsauth.") + ".dcv.gateway.test"
	}
	b := e.brand(t, 42, nil)
	req := request(t, "order-multi", names...)
	res, err := b.Submit(context.Background(), req)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	c, _ := e.fake.Certificate(certID(t, e.fake))
	if len(c.DCV) != 2 {
		t.Fatalf("DCV records %+v, want one per distinct name (the wildcard shares example.com's)", c.DCV)
	}
	if !slices.Equal(c.Names, names) {
		t.Errorf("Tencent got names %v, want %v (common name first)", c.Names, names)
	}
	res, err = pollUntilDone(t, b, res, 5, nil)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	verifyChain(t, e.fake, res, req.CSR, "example.com", "x.example.com", "api.shop.example.org")
	if live := e.pub.live(); len(live) != 0 {
		t.Errorf("records left: %v", live)
	}
}

// TestSelfCheckingProduct: DNSPod products check by themselves, so the
// brand never calls CompleteCertificate (which they refuse).
func TestSelfCheckingProduct(t *testing.T) {
	e := newEnv(t, tencenttest.Options{})
	b := e.brand(t, 48, func(c *tencent.Config) { c.SkipComplete = true; c.CAType = "sectigo" })
	req := request(t, "order-dnspod", "dnspod.example.com")
	res, err := b.Submit(context.Background(), req)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	if res, err = pollUntilDone(t, b, res, 5, nil); err != nil {
		t.Fatalf("Poll: %v", err)
	}
	verifyChain(t, e.fake, res, req.CSR, "dnspod.example.com")
	if n := e.fake.Calls("CompleteCertificate"); n != 0 {
		t.Errorf("CompleteCertificate called %d times", n)
	}
	if c, _ := e.fake.Certificate(certID(t, e.fake)); c.CAType != "sectigo" {
		t.Errorf("CaType %q", c.CAType)
	}
}

// TestOVFlow: an OV order stays in processing, polled at the review
// interval, until the CA approves; a second brand instance (a restarted
// gateway) continues from the ticket alone.
func TestOVFlow(t *testing.T) {
	e := newEnv(t, tencenttest.Options{})
	ov := func(c *tencent.Config) {
		c.ContactEmail, c.ManagerID, c.CompanyID = "", "12345", "678"
		c.MaxNames = 1
		c.ReviewPollInterval = 42 * time.Minute
	}
	b := e.brand(t, 14, ov)
	req := request(t, "order-ov", "secure.example.com")
	res, err := b.Submit(context.Background(), req)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	id := certID(t, e.fake)
	for i := range 3 {
		if res, err = b.Poll(context.Background(), res.Ticket); err != nil {
			t.Fatalf("Poll %d: %v", i, err)
		}
		if len(res.Chain) > 0 || res.Ticket == "" {
			t.Fatalf("Poll %d before approval = %+v", i, res)
		}
		if res.RetryAfter != 42*time.Minute {
			t.Errorf("RetryAfter during review = %v, want the review interval", res.RetryAfter)
		}
	}
	c, _ := e.fake.Certificate(id)
	if c.Status != tencenttest.StatusReviewing || c.StatusMsg != "CA-REVIEWING" || c.CompanyType != 2 || c.ManagerID != "12345" || c.CompanyID != "678" {
		t.Errorf("fake certificate during review: %+v", c)
	}
	e.fake.Approve(id)

	restarted := e.brand(t, 14, ov)
	res, err = pollUntilDone(t, restarted, res, 3, nil)
	if err != nil {
		t.Fatalf("Poll after approval: %v", err)
	}
	verifyChain(t, e.fake, res, req.CSR, "secure.example.com")
}

// TestReject: a CA refusal is a permanent error carrying Tencent's reason;
// a failed domain validation reads as unauthorized.
func TestReject(t *testing.T) {
	for _, tc := range []struct {
		name, reason, typ string
		product           int64
	}{
		{"organization refused", "证书资料未通过证书CA机构审核", "rejectedIdentifier", 14},
		{"DCV timed out", "域名验证超时，订单自动关闭，请您重新进行证书申请", "unauthorized", 104},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tencenttest.Options{})
			b := e.brand(t, tc.product, func(c *tencent.Config) { c.ManagerID = "1"; c.MaxNames = 1 })
			res, err := b.Submit(context.Background(), request(t, "order-reject", "refused.example.com"))
			if err != nil {
				t.Fatalf("Submit: %v", err)
			}
			if len(e.pub.live()) != 1 {
				t.Fatalf("published %v", e.pub.live())
			}
			e.fake.Reject(certID(t, e.fake), tc.reason)
			_, err = b.Poll(context.Background(), res.Ticket)
			wantError(t, err, tc.typ, true, tc.reason, "status 2")
			if len(e.pub.live()) != 0 {
				t.Errorf("records left after the refusal: %v", e.pub.live())
			}
		})
	}
}

// TestWaitingStates: states that need a person in the console are polled
// again in hours, with a detail; cancelled or expired ones fail.
func TestWaitingStates(t *testing.T) {
	for _, tc := range []struct {
		status    int64
		permanent bool
		mention   string
	}{
		{tencenttest.StatusAwaitingLetter, false, "confirmation letter"},
		{tencenttest.StatusAwaitingInfo, false, "more information"},
		{tencenttest.StatusCancelled, true, "cancelled"},
		{tencenttest.StatusExpired, true, "expired"},
		{tencenttest.StatusRevoked, true, "revoked"},
	} {
		e := newEnv(t, tencenttest.Options{})
		b := e.brand(t, 14, func(c *tencent.Config) { c.ManagerID = "1"; c.MaxNames = 1; c.WaitPollInterval = 3 * time.Hour })
		res, err := b.Submit(context.Background(), request(t, "order-wait", "wait.example.com"))
		if err != nil {
			t.Fatalf("Submit: %v", err)
		}
		e.fake.SetStatus(certID(t, e.fake), tc.status, "some console message")
		_, err = b.Poll(context.Background(), res.Ticket)
		ie := wantError(t, err, "serverInternal", tc.permanent, tc.mention, "some console message")
		if !tc.permanent && ie.RetryAfter != 3*time.Hour {
			t.Errorf("status %d: RetryAfter %v, want the wait interval", tc.status, ie.RetryAfter)
		}
	}
}

// TestQuota: Tencent's quota answers are permanent rateLimited errors.
func TestQuota(t *testing.T) {
	t.Run("purchases", func(t *testing.T) {
		e := newEnv(t, tencenttest.Options{Quota: 1})
		b := e.brand(t, 104, nil)
		if _, err := b.Submit(context.Background(), request(t, "order-q1", "one.example.com")); err != nil {
			t.Fatalf("first Submit: %v", err)
		}
		_, err := b.Submit(context.Background(), request(t, "order-q2", "two.example.com"))
		wantError(t, err, "rateLimited", true, "FailedOperation.ExceedsFreeLimit")
	})
	t.Run("per main domain", func(t *testing.T) {
		e := newEnv(t, tencenttest.Options{PerDomainLimit: 1})
		b := e.brand(t, 104, nil)
		if _, err := b.Submit(context.Background(), request(t, "order-d1", "a.example.com")); err != nil {
			t.Fatalf("first Submit: %v", err)
		}
		_, err := b.Submit(context.Background(), request(t, "order-d2", "b.example.com"))
		wantError(t, err, "rateLimited", true, "FailedOperation.MainDomainCertificateCountLimit")
		// The refusal came after the purchase: the detail names the
		// certificate bought, for an operator to reuse or refund.
		ids := e.fake.CertificateIDs()
		if len(ids) != 2 || !strings.Contains(err.Error(), ids[1]) {
			t.Errorf("error %q does not name the certificate bought (%v)", err, ids)
		}
	})
}

// TestRateLimit: Tencent's rate limit is transient with a one-second hint;
// a rate limit after the purchase never loses the purchase.
func TestRateLimit(t *testing.T) {
	t.Run("before purchase", func(t *testing.T) {
		frozen := time.Now()
		e := newEnv(t, tencenttest.Options{RatePerSecond: 1, Now: func() time.Time { return frozen }})
		b := e.brand(t, 104, nil)
		_, err := b.Submit(context.Background(), request(t, "order-rl", "rl.example.com"))
		ie := wantError(t, err, "rateLimited", false, "LimitExceeded.RateLimitExceeded")
		if ie.RetryAfter != time.Second {
			t.Errorf("RetryAfter %v, want 1s", ie.RetryAfter)
		}
		if len(e.fake.CertificateIDs()) != 0 {
			t.Error("a certificate was bought")
		}
	})
	t.Run("after purchase", func(t *testing.T) {
		e := newEnv(t, tencenttest.Options{})
		b := e.brand(t, 104, nil)
		e.fake.FailNext("CertificateInfoSubmit", "LimitExceeded.RateLimitExceeded", "slow down")
		req := request(t, "order-rl2", "rl2.example.com")
		res, err := b.Submit(context.Background(), req)
		if err != nil {
			t.Fatalf("Submit after a purchase answered %v; it must hand back a ticket", err)
		}
		if res.Ticket == "" || res.RetryAfter <= 0 {
			t.Fatalf("Submit = %+v", res)
		}
		if res, err = pollUntilDone(t, b, res, 5, nil); err != nil {
			t.Fatalf("Poll: %v", err)
		}
		verifyChain(t, e.fake, res, req.CSR, "rl2.example.com")
		if n := e.fake.Calls("CreateCertificate"); n != 1 {
			t.Errorf("%d purchases, want 1", n)
		}
	})
}

// TestSubmitRetriedAfterCrash: a Submit repeated for the same order (the
// gateway died before storing the ticket) finds the tagged purchase instead
// of buying again.
func TestSubmitRetriedAfterCrash(t *testing.T) {
	e := newEnv(t, tencenttest.Options{})
	b := e.brand(t, 104, nil)
	req := request(t, "order-crash", "crash.example.com")
	if _, err := b.Submit(context.Background(), req); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	res, err := b.Submit(context.Background(), req)
	if err != nil {
		t.Fatalf("second Submit: %v", err)
	}
	if n := e.fake.Calls("CreateCertificate"); n != 1 {
		t.Fatalf("%d purchases, want 1", n)
	}
	if res, err = pollUntilDone(t, b, res, 5, nil); err != nil {
		t.Fatalf("Poll: %v", err)
	}
	verifyChain(t, e.fake, res, req.CSR, "crash.example.com")
}

// TestCredentials: the fake refuses bad signatures, unknown keys and stale
// timestamps; the brand turns each into a readable error that never shows
// the secret. Before a purchase it is permanent, after one transient.
func TestCredentials(t *testing.T) {
	e := newEnv(t, tencenttest.Options{})
	for _, tc := range []struct {
		name    string
		edit    func(*tencent.Config)
		code    string
		mention string
	}{
		{"wrong secret key", func(c *tencent.Config) { c.SecretKey = "not-the-secret-key-0123456789" }, "AuthFailure.SignatureFailure", "secret_key"},
		{"unknown secret id", func(c *tencent.Config) { c.SecretID = "AKIDunknown" }, "AuthFailure.SecretIdNotFound", "secret_id"},
		{"clock an hour slow", func(c *tencent.Config) { c.Now = func() time.Time { return time.Now().Add(-time.Hour) } }, "AuthFailure.SignatureExpire", "clock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.brand(t, 104, tc.edit)
			_, err := b.Submit(context.Background(), request(t, "order-cred", "cred.example.com"))
			wantError(t, err, "serverInternal", true, tc.code, tc.mention)
			for _, secret := range []string{"not-the-secret-key-0123456789", e.fake.SecretKey()} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows a secret key: %v", err)
				}
			}
		})
	}
	if n := len(e.fake.CertificateIDs()); n != 0 {
		t.Fatalf("%d certificates bought with bad credentials", n)
	}

	good := e.brand(t, 104, nil)
	res, err := good.Submit(context.Background(), request(t, "order-cred2", "cred2.example.com"))
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	bad := e.brand(t, 104, func(c *tencent.Config) { c.SecretKey = "rotated-away" })
	_, err = bad.Poll(context.Background(), res.Ticket)
	ie := wantError(t, err, "serverInternal", false, "AuthFailure.SignatureFailure")
	if ie.RetryAfter < time.Minute {
		t.Errorf("RetryAfter %v after a purchase; want minutes", ie.RetryAfter)
	}
}

// tamperTransport changes the body after the brand signed it.
type tamperTransport struct{}

func (tamperTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(r.Body)
	body = bytes.Replace(body, []byte(`"ProductId":104`), []byte(`"ProductId":16`), 1)
	r = r.Clone(r.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return http.DefaultTransport.RoundTrip(r)
}

// TestTamperedRequest: the fake's independent verifier accepts the brand's
// signatures (every other test) and rejects a body changed after signing.
func TestTamperedRequest(t *testing.T) {
	e := newEnv(t, tencenttest.Options{})
	b := e.brand(t, 104, func(c *tencent.Config) {
		c.HTTPClient = &http.Client{Transport: tamperTransport{}}
		c.NoOrderTag = true
	})
	_, err := b.Submit(context.Background(), request(t, "order-tamper", "tamper.example.com"))
	wantError(t, err, "serverInternal", true, "AuthFailure.SignatureFailure")
}

// TestRefusedBeforePurchase: requests the product cannot take are refused
// without a single API call.
func TestRefusedBeforePurchase(t *testing.T) {
	e := newEnv(t, tencenttest.Options{})
	single := e.brand(t, 104, func(c *tencent.Config) { c.MaxNames = 1; c.Wildcard = false })
	csr := newCSR(t, "a.example.com")
	for _, tc := range []struct {
		name string
		req  issuer.Request
		typ  string
	}{
		{"no CSR", issuer.Request{OrderID: "o", DNSNames: []string{"a.example.com"}}, "badCSR"},
		{"IP address", issuer.Request{OrderID: "o", CSR: csr, DNSNames: []string{"a.example.com"}, IPs: []string{"192.0.2.1"}}, "rejectedIdentifier"},
		{"wildcard", request(t, "o", "*.example.com"), "rejectedIdentifier"},
		{"too many names", request(t, "o", "a.example.com", "b.example.com"), "rejectedIdentifier"},
		{"common name not ordered", issuer.Request{OrderID: "o", CSR: csr, DNSNames: []string{"b.example.com"}}, "badCSR"},
	} {
		_, err := single.Submit(context.Background(), tc.req)
		if ie, ok := issuer.AsError(err); !ok || !ie.Permanent || ie.Type != tc.typ {
			t.Errorf("%s: Submit error %v, want permanent %s", tc.name, err, tc.typ)
		}
	}
	if n := e.fake.Calls(""); n != 0 {
		t.Errorf("%d API calls for refused requests", n)
	}
}

// TestDownloadFallback: with no PEM in the detail, the chain comes from
// DownloadCertificate's ZIP.
func TestDownloadFallback(t *testing.T) {
	e := newEnv(t, tencenttest.Options{NoPublicKeyInDetail: true})
	b := e.brand(t, 104, nil)
	req := request(t, "order-zip", "zip.example.com")
	res := issueRequest(t, b, req)
	verifyChain(t, e.fake, res, req.CSR, "zip.example.com")
	if e.fake.Calls("DownloadCertificate") == 0 {
		t.Error("DownloadCertificate not called")
	}
}

// issue runs a DV order to its chain.
func issue(t *testing.T, e *env, b *tencent.Brand, orderID, name string) issuer.Result {
	t.Helper()
	return issueRequest(t, b, request(t, orderID, name))
}

// issueRequest submits req and polls it to its chain.
func issueRequest(t *testing.T, b *tencent.Brand, req issuer.Request) issuer.Result {
	t.Helper()
	res, err := b.Submit(context.Background(), req)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	if res, err = pollUntilDone(t, b, res, 5, nil); err != nil {
		t.Fatalf("Poll: %v", err)
	}
	return res
}

// TestRevoke: Revoke reaches the fake for the right certificate, publishes
// the DCV records a DV revocation needs, and waits until it is done.
func TestRevoke(t *testing.T) {
	e := newEnv(t, tencenttest.Options{})
	b := e.brand(t, 104, nil)
	other := issue(t, e, b, "order-other", "revoke.example.com") // same name, must not be revoked
	res := issue(t, e, b, "order-revoke", "revoke.example.com")
	ids := e.fake.CertificateIDs()

	if err := b.Revoke(context.Background(), res.Leaf, 1); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	c, _ := e.fake.Certificate(ids[1])
	if c.Status != tencenttest.StatusRevoked || !strings.Contains(c.RevokeReason, "keyCompromise") {
		t.Errorf("fake certificate after Revoke: status %d reason %q", c.Status, c.RevokeReason)
	}
	if len(c.RevokeDCV) != 1 || !slices.Contains(e.pub.history, "+"+c.RevokeDCV[0].Name) {
		t.Errorf("revocation DCV %+v not published (history %v)", c.RevokeDCV, e.pub.history)
	}
	if live := e.pub.live(); len(live) != 0 {
		t.Errorf("records left after the revocation: %v", live)
	}
	if c, _ := e.fake.Certificate(ids[0]); c.Status != tencenttest.StatusIssued {
		t.Errorf("the other certificate for the same name has status %d", c.Status)
	}
	// Revoking again converges.
	if err := b.Revoke(context.Background(), res.Leaf, 1); err != nil {
		t.Errorf("second Revoke: %v", err)
	}
	_ = other
}

// TestRevokeWithoutAlias: when labelling the certificate failed at
// issuance, Revoke finds it by name and compares the leaf.
func TestRevokeWithoutAlias(t *testing.T) {
	e := newEnv(t, tencenttest.Options{})
	b := e.brand(t, 104, nil)
	issue(t, e, b, "order-a", "noalias.example.com")
	e.fake.FailNext("ModifyCertificateAlias", "InternalError", "try later")
	res := issue(t, e, b, "order-b", "noalias.example.com")
	ids := e.fake.CertificateIDs()
	if c, _ := e.fake.Certificate(ids[1]); c.Alias != "" {
		t.Fatalf("alias %q set despite the failure", c.Alias)
	}
	if err := b.Revoke(context.Background(), res.Leaf, 4); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if c, _ := e.fake.Certificate(ids[1]); c.Status != tencenttest.StatusRevoked || !strings.Contains(c.RevokeReason, "superseded") {
		t.Errorf("status %d reason %q", c.Status, c.RevokeReason)
	}
	if c, _ := e.fake.Certificate(ids[0]); c.Status != tencenttest.StatusIssued {
		t.Errorf("the wrong certificate was revoked: status %d", c.Status)
	}
}

// TestRevokeOV: an OV revocation waits for a letter; Revoke says so.
func TestRevokeOV(t *testing.T) {
	e := newEnv(t, tencenttest.Options{})
	b := e.brand(t, 14, func(c *tencent.Config) { c.ManagerID = "1"; c.MaxNames = 1 })
	res, err := b.Submit(context.Background(), request(t, "order-ovr", "ovr.example.com"))
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	e.fake.Approve(certID(t, e.fake))
	if res, err = pollUntilDone(t, b, res, 5, nil); err != nil {
		t.Fatalf("Poll: %v", err)
	}
	err = b.Revoke(context.Background(), res.Leaf, 5)
	if err == nil || !strings.Contains(err.Error(), "letter") {
		t.Errorf("Revoke = %v, want a pending letter", err)
	}
}

// TestRevokeUnknown: a certificate Tencent never issued is not found.
func TestRevokeUnknown(t *testing.T) {
	e := newEnv(t, tencenttest.Options{})
	b := e.brand(t, 104, nil)
	res := issue(t, e, b, "order-u", "known.example.com")
	foreign := *res.Leaf
	foreign.Raw = append([]byte(nil), res.Leaf.Raw...)
	foreign.Raw[len(foreign.Raw)-1] ^= 1 // another signature: another certificate
	foreign.SerialNumber = new(big.Int).Add(res.Leaf.SerialNumber, big.NewInt(1))
	if err := b.Revoke(context.Background(), &foreign, 0); err == nil || !strings.Contains(err.Error(), "no certificate") {
		t.Errorf("Revoke of an unknown certificate = %v", err)
	}
}

func TestDescribe(t *testing.T) {
	e := newEnv(t, tencenttest.Options{})
	for _, tc := range []struct {
		at   string
		want time.Duration
	}{
		{"2026-06-01T00:00:00Z", 200 * 24 * time.Hour},
		{"2027-06-01T00:00:00Z", 100 * 24 * time.Hour},
	} {
		at, _ := time.Parse(time.RFC3339, tc.at)
		b := e.brand(t, 12, func(c *tencent.Config) {
			c.Now = func() time.Time { return at }
			c.MaxNames = 1
			c.CAAIdentities = []string{"trustasia.com", "sectigo.com"}
		})
		p := b.Describe()
		if p.MaxValidity != tc.want || !p.Wildcard || p.IP || p.MaxNames != 1 || !slices.Equal(p.CAAIdentities, []string{"trustasia.com", "sectigo.com"}) {
			t.Errorf("Describe at %s = %+v", tc.at, p)
		}
	}
	b := e.brand(t, 104, func(c *tencent.Config) { c.MaxValidity = 90 * 24 * time.Hour })
	if got := b.Describe().MaxValidity; got != 90*24*time.Hour {
		t.Errorf("configured cap ignored: %v", got)
	}
}

func TestNewChecksConfig(t *testing.T) {
	good := tencent.Config{SecretID: "id", SecretKey: "key", ProductID: 104, ContactEmail: "a@example.com"}
	if _, err := tencent.New("t", good); err != nil {
		t.Fatalf("New: %v", err)
	}
	for name, edit := range map[string]func(*tencent.Config){
		"no secret":      func(c *tencent.Config) { c.SecretKey = "" },
		"no product":     func(c *tencent.Config) { c.ProductID = 0 },
		"no contact":     func(c *tencent.Config) { c.ContactEmail = "" },
		"endpoint path":  func(c *tencent.Config) { c.Endpoint = "https://ssl.tencentcloudapi.com/v3" },
		"endpoint plain": func(c *tencent.Config) { c.Endpoint = "ssl.tencentcloudapi.com" },
	} {
		c := good
		edit(&c)
		if _, err := tencent.New("t", c); err == nil {
			t.Errorf("%s: New accepted %+v", name, c)
		} else if strings.Contains(err.Error(), "key") && c.SecretKey != "" && strings.Contains(err.Error(), c.SecretKey) {
			t.Errorf("%s: error shows the secret: %v", name, err)
		}
	}
}

// TestPublishFailure: a publisher error is transient and names the record.
func TestPublishFailure(t *testing.T) {
	e := newEnv(t, tencenttest.Options{})
	b := e.brand(t, 104, func(c *tencent.Config) { c.Publisher = failingPublisher{} })
	res, err := b.Submit(context.Background(), request(t, "order-pubfail", "pf.example.com"))
	if err != nil || res.Ticket == "" {
		t.Fatalf("Submit = %+v, %v; want a ticket", res, err)
	}
	_, err = b.Poll(context.Background(), res.Ticket)
	if err == nil || issuer.IsPermanent(err) || !strings.Contains(err.Error(), "_dnsauth.pf.example.com") {
		t.Errorf("Poll = %v, want a transient error naming the record", err)
	}
}

type failingPublisher struct{}

func (failingPublisher) Publish(context.Context, dcv.Record) error   { return io.ErrUnexpectedEOF }
func (failingPublisher) Unpublish(context.Context, dcv.Record) error { return nil }
func (failingPublisher) Method() string                              { return "failing" }

// TestTransportFailures: answers that are not Tencent API responses, and
// tickets that cannot be read, are told apart: the first are retried, the
// second fail the order.
func TestTransportFailures(t *testing.T) {
	for name, handler := range map[string]http.HandlerFunc{
		"HTTP 502":    func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "bad gateway", http.StatusBadGateway) },
		"not JSON":    func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>maintenance</html>")) },
		"no Response": func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"error":"x"}`)) },
		"cut short":   func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"Response":{"RequestId":`)) },
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(handler)
			defer srv.Close()
			b := fixtureBrand(t, srv.URL, nil, nil)
			_, err := b.Submit(context.Background(), request(t, "o", "www.example.com"))
			if err == nil || issuer.IsPermanent(err) {
				t.Errorf("Submit = %v, want a transient error", err)
			}
		})
	}
	b := fixtureBrand(t, "http://127.0.0.1:1", nil, nil)
	for _, tk := range []string{"", "not json", `{"v":1}`, `{"v":2,"id":"x","step":"submitted"}`, `{"v":1,"id":"x","step":"bought"}`} {
		if _, err := b.Poll(context.Background(), tk); !issuer.IsPermanent(err) {
			t.Errorf("Poll(%q) = %v, want a permanent error", tk, err)
		}
	}
}
