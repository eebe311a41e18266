package digicert_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/digicert"
	"github.com/acmegw/acmegw/issuer/digicert/digicerttest"
	"github.com/acmegw/acmegw/validation/validationtest"
)

func TestPrevalidatedIssuedInTheOrderAnswer(t *testing.T) {
	t.Parallel()
	fake := digicerttest.New(t, digicerttest.Options{PrevalidatedDomains: []string{"example.com"}})
	b := newBrand(t, fake, digicert.Config{Product: "ssl_securesite_pro", OrganizationID: 1234})

	res, err := b.Submit(context.Background(), request(t, "www.example.com", "example.com", "api.example.com"))
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	checkChain(t, fake, res, "www.example.com", "example.com", "api.example.com")
	if res.Leaf.Subject.CommonName != "www.example.com" {
		t.Errorf("CN %q", res.Leaf.Subject.CommonName)
	}
	o, _ := fake.Order(lastOrder(t, fake))
	if o.Status != "issued" || o.Organization != 1234 || o.DCVMethod != digicert.DCVDNSTXT || o.AlternativeOrderID != "gw-www-example-com" {
		t.Errorf("order %+v", o)
	}
	if !slices.Equal(o.DNSNames, []string{"example.com", "api.example.com"}) {
		t.Errorf("dns_names %v, want the names other than the common name", o.DNSNames)
	}
	// One call: no Poll, nothing published.
	if n := len(fake.Exchanges()); n != 1 {
		t.Errorf("%d API calls, want 1", n)
	}
}

func TestDVFlowThroughDelegatedDNS(t *testing.T) {
	t.Parallel()
	dnsSrv := validationtest.NewDNSServer(t)
	fake := digicerttest.New(t, digicerttest.Options{Resolver: dnsSrv.Addr()})
	pub := newDNSPublisher(dnsSrv)
	// shop.example's owner delegated _dnsauth once to the gateway's zone;
	// www.shop.example's record is written in place (a DNS provider).
	pub.delegateTo("_dnsauth.shop.example", "shop-example.dcv.acmegw.test")
	b := newBrand(t, fake, digicert.Config{Product: "ssl_dv_geotrust", Publisher: pub})
	ctx := context.Background()

	res, err := b.Submit(ctx, request(t, "shop.example", "www.shop.example"))
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	if res.Ticket == "" || len(res.Chain) != 0 || res.RetryAfter <= 0 {
		t.Fatalf("Submit = %+v, want a ticket with RetryAfter", res)
	}
	id := lastOrder(t, fake)
	if o, _ := fake.Order(id); o.Status != "pending" {
		t.Fatalf("fake order status %q, want pending", o.Status)
	}

	res, err = b.Poll(ctx, res.Ticket)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	checkChain(t, fake, res, "shop.example", "www.shop.example")

	o, _ := fake.Order(id)
	published, unpublished := pub.calls()
	if len(published) != 2 {
		t.Fatalf("published %+v, want one record per domain", published)
	}
	for _, r := range published {
		if r.Type != "TXT" || r.Name != "_dnsauth."+r.Domain || r.Value != o.Tokens[r.Domain] {
			t.Errorf("published %+v; want TXT _dnsauth.<domain> = DigiCert's token %q", r, o.Tokens[r.Domain])
		}
	}
	if len(unpublished) != 2 {
		t.Errorf("unpublished %+v, want both records removed after issuance", unpublished)
	}
	if txt, err := validationLookup(t, dnsSrv, "shop-example.dcv.acmegw.test"); err == nil {
		t.Errorf("the delegated TXT record is still served: %v", txt)
	}
}

func TestDVPendingUntilTheRecordIsVisible(t *testing.T) {
	t.Parallel()
	dnsSrv := validationtest.NewDNSServer(t)
	fake := digicerttest.New(t, digicerttest.Options{Resolver: dnsSrv.Addr()})
	pub := newDNSPublisher(dnsSrv)
	pub.hold = true
	cfg := digicert.Config{Product: "ssl_dv_rapidssl", Publisher: pub, DCVPollInterval: 7 * time.Second}
	ctx := context.Background()

	res, err := newBrand(t, fake, cfg).Submit(ctx, request(t, "slow.example"))
	if err != nil {
		t.Fatal(err)
	}
	res, err = newBrand(t, fake, cfg).Poll(ctx, res.Ticket)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	if len(res.Chain) != 0 || res.RetryAfter != 7*time.Second {
		t.Fatalf("Poll = %+v, want pending with the DCV poll interval", res)
	}
	if got := ticketRecords(t, res.Ticket); !slices.Equal(got, []string{"_dnsauth.slow.example"}) {
		t.Errorf("ticket records %v: the published record must be remembered", got)
	}

	// Another instance (a fresh Brand: the ticket is the only state)
	// continues once DNS serves the record, and publishes nothing twice.
	pub.release()
	res, err = newBrand(t, fake, cfg).Poll(ctx, res.Ticket)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	checkChain(t, fake, res, "slow.example")
	published, unpublished := pub.calls()
	if len(published) != 1 || len(unpublished) != 1 {
		t.Errorf("published %d, unpublished %d; want 1 and 1", len(published), len(unpublished))
	}
}

func TestOVPendingUntilApproved(t *testing.T) {
	t.Parallel()
	dnsSrv := validationtest.NewDNSServer(t)
	fake := digicerttest.New(t, digicerttest.Options{Resolver: dnsSrv.Addr()})
	pub := newDNSPublisher(dnsSrv)
	b := newBrand(t, fake, digicert.Config{Product: "ssl_securesite_pro", OrganizationID: 77, Publisher: pub,
		ReviewPollInterval: time.Hour})
	ctx := context.Background()

	res, err := b.Submit(ctx, request(t, "corp.example"))
	if err != nil {
		t.Fatal(err)
	}
	id := lastOrder(t, fake)
	if o, _ := fake.Order(id); o.Status != "needs_approval" {
		t.Fatalf("status %q, want needs_approval", o.Status)
	}
	for i := range 3 {
		res, err = b.Poll(ctx, res.Ticket)
		if err != nil {
			t.Fatalf("Poll %d: %v", i, err)
		}
		if len(res.Chain) != 0 || res.Ticket == "" || res.RetryAfter != time.Hour {
			t.Fatalf("Poll %d = %+v, want pending with the review interval", i, res)
		}
	}
	// DCV finished on the first Poll, so the record is gone while the
	// review goes on.
	if o, _ := fake.Order(id); len(o.Validated) != 1 {
		t.Errorf("validated %v", o.Validated)
	}
	if got := ticketRecords(t, res.Ticket); len(got) != 0 {
		t.Errorf("ticket still lists %v after DCV completed", got)
	}
	if _, unpublished := pub.calls(); len(unpublished) != 1 {
		t.Errorf("unpublished %v, want the record removed once DCV completed", unpublished)
	}

	if err := fake.Approve(id); err != nil {
		t.Fatal(err)
	}
	res, err = b.Poll(ctx, res.Ticket)
	if err != nil {
		t.Fatalf("Poll after Approve: %v", err)
	}
	checkChain(t, fake, res, "corp.example")
	if got := res.Leaf.Subject.Organization; len(got) != 1 || got[0] != "Fake Organization 77" {
		t.Errorf("OV leaf organization %v", got)
	}
}

func TestRejectedIsPermanentWithTheReason(t *testing.T) {
	t.Parallel()
	dnsSrv := validationtest.NewDNSServer(t)
	fake := digicerttest.New(t, digicerttest.Options{Resolver: dnsSrv.Addr()})
	pub := newDNSPublisher(dnsSrv)
	pub.hold = true // DCV stays pending, so a record is out when the order ends
	b := newBrand(t, fake, digicert.Config{Product: "ssl_ev_basic", OrganizationID: 5, Publisher: pub})
	ctx := context.Background()

	res, err := b.Submit(ctx, request(t, "bank.example"))
	if err != nil {
		t.Fatal(err)
	}
	if res, err = b.Poll(ctx, res.Ticket); err != nil {
		t.Fatal(err)
	}
	if err := fake.Reject(lastOrder(t, fake), "The organization's registration could not be verified."); err != nil {
		t.Fatal(err)
	}
	_, err = b.Poll(ctx, res.Ticket)
	ie, ok := issuer.AsError(err)
	if !ok || !ie.Permanent || ie.Type != "rejectedIdentifier" {
		t.Fatalf("Poll error %v (%+v), want a permanent rejectedIdentifier", err, ie)
	}
	if !strings.Contains(ie.Detail, "registration could not be verified") || !strings.Contains(ie.Detail, "rejected") {
		t.Errorf("detail %q does not carry DigiCert's reason", ie.Detail)
	}
	if _, unpublished := pub.calls(); len(unpublished) != 1 {
		t.Errorf("unpublished %v, want the DCV record removed when the order ended", unpublished)
	}
}

func TestBadAPIKeyIsAReadablePermanentError(t *testing.T) {
	t.Parallel()
	fake := digicerttest.New(t, digicerttest.Options{})
	const wrong = "not-the-key-0123456789"
	b := newBrand(t, fake, digicert.Config{APIKey: wrong, Product: "ssl_basic", OrganizationID: 1})

	for name, call := range map[string]func() error{
		"submit": func() error { _, err := b.Submit(context.Background(), request(t, "a.example")); return err },
		"poll":   func() error { _, err := b.Poll(context.Background(), `{"v":1,"order":100001}`); return err },
	} {
		err := call()
		ie, ok := issuer.AsError(err)
		if !ok || !ie.Permanent || ie.Type != "serverInternal" {
			t.Fatalf("%s: %v (%+v), want a permanent serverInternal", name, err, ie)
		}
		if !strings.Contains(err.Error(), "check the DigiCert API key") || !strings.Contains(err.Error(), "HTTP 401") {
			t.Errorf("%s: %q does not say to check the key", name, err)
		}
		if strings.Contains(err.Error(), wrong) {
			t.Errorf("%s: the error reveals the API key: %q", name, err)
		}
	}
}

func TestRateLimitIsTransientWithRetryAfter(t *testing.T) {
	t.Parallel()
	fake := digicerttest.New(t, digicerttest.Options{PrevalidatedDomains: []string{"example.net"}})
	b := newBrand(t, fake, digicert.Config{Product: "ssl_basic", OrganizationID: 1})
	fake.RateLimit(1, 42*time.Second)

	_, err := b.Submit(context.Background(), request(t, "example.net"))
	ie, ok := issuer.AsError(err)
	if !ok || ie.Permanent || ie.RetryAfter != 42*time.Second || ie.Type != "rateLimited" {
		t.Fatalf("Submit error %v (%+v), want a transient rateLimited with RetryAfter 42s", err, ie)
	}
	if issuer.IsPermanent(err) {
		t.Error("a rate limit must be retried")
	}
	res, err := b.Submit(context.Background(), request(t, "example.net"))
	if err != nil {
		t.Fatalf("Submit after the limit: %v", err)
	}
	checkChain(t, fake, res, "example.net")
}

func TestCSRWithoutCommonNameRefusedBeforeAnyCall(t *testing.T) {
	t.Parallel()
	fake := digicerttest.New(t, digicerttest.Options{})
	b := newBrand(t, fake, digicert.Config{Product: "ssl_basic", OrganizationID: 1})

	req := issuer.Request{OrderID: "o1", CSR: newCSR(t, "", "nocn.example"), DNSNames: []string{"nocn.example"}}
	_, err := b.Submit(context.Background(), req)
	ie, ok := issuer.AsError(err)
	if !ok || !ie.Permanent || ie.Type != "badCSR" || !strings.Contains(ie.Detail, "common name") {
		t.Fatalf("Submit error %v (%+v), want a permanent badCSR about the common name", err, ie)
	}
	if n := len(fake.Exchanges()); n != 0 {
		t.Errorf("%d API calls, want none", n)
	}
}

func TestRefusalsBeforeAnyCall(t *testing.T) {
	t.Parallel()
	fake := digicerttest.New(t, digicerttest.Options{})
	b := newBrand(t, fake, digicert.Config{Product: "ssl_plus", OrganizationID: 1, MaxNames: 2})
	ctx := context.Background()
	for name, tc := range map[string]struct {
		req  issuer.Request
		typ  string
		want string
	}{
		"no CSR":        {issuer.Request{OrderID: "o"}, "badCSR", "no CSR"},
		"IP":            {issuer.Request{CSR: newCSR(t, "ip.example", "ip.example"), DNSNames: []string{"ip.example"}, IPs: []string{"192.0.2.1"}}, "rejectedIdentifier", "IP"},
		"CN not named":  {issuer.Request{CSR: newCSR(t, "other.example", "a.example"), DNSNames: []string{"a.example"}}, "badCSR", "not one of"},
		"too many":      {request(t, "a.example", "b.example", "c.example"), "rejectedIdentifier", "more than the 2"},
		"wildcard":      {request(t, "*.w.example"), "rejectedIdentifier", "no wildcards"},
		"bad notAfter":  {func() issuer.Request { r := request(t, "d.example"); r.NotAfter = time.Now().Add(-time.Hour); return r }(), "malformed", "notAfter"},
		"CSR signature": {func() issuer.Request { r := request(t, "s.example"); r.CSR.Signature[5] ^= 0xff; return r }(), "badCSR", "signature"},
	} {
		_, err := b.Submit(ctx, tc.req)
		ie, ok := issuer.AsError(err)
		if !ok || !ie.Permanent || ie.Type != tc.typ || !strings.Contains(ie.Detail, tc.want) {
			t.Errorf("%s: %v (%+v), want permanent %s mentioning %q", name, err, ie, tc.typ, tc.want)
		}
	}
	if n := len(fake.Exchanges()); n != 0 {
		t.Errorf("%d API calls, want none", n)
	}
}

func TestDigiCertRefusalsArePermanentWithTheMessage(t *testing.T) {
	t.Parallel()
	fake := digicerttest.New(t, digicerttest.Options{UnvalidatedOrganizations: []int{9}})
	ctx := context.Background()

	b := newBrand(t, fake, digicert.Config{Product: "ssl_basic", OrganizationID: 1})
	_, err := b.Submit(ctx, request(t, "bad_label.example"))
	ie, ok := issuer.AsError(err)
	if !ok || !ie.Permanent || ie.Type != "rejectedIdentifier" || !strings.Contains(ie.Detail, "invalid_dns_name") ||
		!strings.Contains(ie.Detail, "bad_label.example is not a valid domain name") {
		t.Errorf("invalid name: %v (%+v)", err, ie)
	}

	b = newBrand(t, fake, digicert.Config{Product: "ssl_basic", OrganizationID: 9})
	_, err = b.Submit(ctx, request(t, "fine.example"))
	ie, ok = issuer.AsError(err)
	if !ok || !ie.Permanent || ie.Type != "unauthorized" || !strings.Contains(ie.Detail, "organization_not_validated") {
		t.Errorf("unvalidated organization: %v (%+v)", err, ie)
	}

	_, err = b.Poll(ctx, `{"v":1,"order":4242}`)
	if !issuer.IsPermanent(err) || !strings.Contains(err.Error(), "4242") {
		t.Errorf("Poll of an unknown order: %v", err)
	}
	_, err = b.Poll(ctx, "garbage")
	if !issuer.IsPermanent(err) {
		t.Errorf("Poll of a garbage ticket: %v", err)
	}
}

func TestOrderRandomValueWhenDomainsCarryNoToken(t *testing.T) {
	t.Parallel()
	dnsSrv := validationtest.NewDNSServer(t)
	fake := digicerttest.New(t, digicerttest.Options{Resolver: dnsSrv.Addr(), OmitDomainTokens: true})
	pub := newDNSPublisher(dnsSrv)
	b := newBrand(t, fake, digicert.Config{Product: "ssl_dv_geotrust", Publisher: pub})
	ctx := context.Background()

	res, err := b.Submit(ctx, request(t, "one.example", "two.example"))
	if err != nil {
		t.Fatal(err)
	}
	if res, err = b.Poll(ctx, res.Ticket); err != nil {
		t.Fatal(err)
	}
	checkChain(t, fake, res, "one.example", "two.example")
	published, _ := pub.calls()
	if len(published) != 2 || published[0].Value != published[1].Value {
		t.Errorf("published %+v, want the order's one random value for both domains", published)
	}
	calls := 0
	for _, ex := range fake.Exchanges() {
		if strings.HasSuffix(ex.Path, "/dcv-random-value") {
			calls++
		}
	}
	if calls != 1 {
		t.Errorf("%d dcv-random-value calls, want 1", calls)
	}
}

func TestOrderInfoWithoutDomains(t *testing.T) {
	t.Parallel()
	dnsSrv := validationtest.NewDNSServer(t)
	fake := digicerttest.New(t, digicerttest.Options{Resolver: dnsSrv.Addr(), OmitDomains: true})
	pub := newDNSPublisher(dnsSrv)
	b := newBrand(t, fake, digicert.Config{Product: "ssl_basic", OrganizationID: 8, Publisher: pub, Wildcard: true})
	ctx := context.Background()

	res, err := b.Submit(ctx, request(t, "*.nodoms.example", "nodoms.example"))
	if err != nil {
		t.Fatal(err)
	}
	// DCV completes on the first Poll; the review keeps the order open.
	for range 3 {
		if res, err = b.Poll(ctx, res.Ticket); err != nil {
			t.Fatal(err)
		}
	}
	published, unpublished := pub.calls()
	if len(published) != 1 || published[0].Name != "_dnsauth.nodoms.example" || len(unpublished) != 1 {
		t.Errorf("published %+v, unpublished %+v; want one record for the base name, published once and removed", published, unpublished)
	}
	if err := fake.Approve(lastOrder(t, fake)); err != nil {
		t.Fatal(err)
	}
	if res, err = b.Poll(ctx, res.Ticket); err != nil {
		t.Fatal(err)
	}
	checkChain(t, fake, res, "nodoms.example", "x.nodoms.example")
}

func TestDNSCNAMEToken(t *testing.T) {
	t.Parallel()
	dnsSrv := validationtest.NewDNSServer(t)
	fake := digicerttest.New(t, digicerttest.Options{Resolver: dnsSrv.Addr()})
	pub := newDNSPublisher(dnsSrv)
	b := newBrand(t, fake, digicert.Config{Product: "ssl_dv_geotrust", Publisher: pub, DCVMethod: digicert.DCVDNSCNAME})
	ctx := context.Background()

	res, err := b.Submit(ctx, request(t, "cn.example"))
	if err != nil {
		t.Fatal(err)
	}
	if res, err = b.Poll(ctx, res.Ticket); err != nil {
		t.Fatal(err)
	}
	checkChain(t, fake, res, "cn.example")
	o, _ := fake.Order(lastOrder(t, fake))
	published, _ := pub.calls()
	want := o.Tokens["cn.example"] + ".dcv.digicert.com"
	if len(published) != 1 || published[0].Type != "CNAME" || published[0].Name != "_dnsauth.cn.example" || published[0].Value != want {
		t.Errorf("published %+v, want CNAME _dnsauth.cn.example -> %s", published, want)
	}
}

func TestPublishFailureIsRetried(t *testing.T) {
	t.Parallel()
	dnsSrv := validationtest.NewDNSServer(t)
	fake := digicerttest.New(t, digicerttest.Options{Resolver: dnsSrv.Addr()})
	pub := newDNSPublisher(dnsSrv)
	pub.failNext = errors.New("provider API down")
	b := newBrand(t, fake, digicert.Config{Product: "ssl_dv_geotrust", Publisher: pub})
	ctx := context.Background()

	res, err := b.Submit(ctx, request(t, "retry.example"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Poll(ctx, res.Ticket)
	if err == nil || issuer.IsPermanent(err) || !strings.Contains(err.Error(), "provider API down") {
		t.Fatalf("Poll: %v, want a transient error naming the publisher's failure", err)
	}
	// The job keeps the previous ticket and polls again.
	res, err = b.Poll(ctx, res.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	checkChain(t, fake, res, "retry.example")
}

func TestRevokeReachesDigiCert(t *testing.T) {
	t.Parallel()
	fake := digicerttest.New(t, digicerttest.Options{PrevalidatedDomains: []string{"rev.example"}})
	b := newBrand(t, fake, digicert.Config{Product: "ssl_basic", OrganizationID: 3, SkipApproval: true})
	ctx := context.Background()

	res, err := b.Submit(ctx, request(t, "rev.example"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Revoke(ctx, res.Leaf, 1); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	revs := fake.Revocations()
	o, _ := fake.Order(lastOrder(t, fake))
	if len(revs) != 1 || revs[0].CertificateID != o.CertificateID || revs[0].Reason != "keyCompromise" ||
		!revs[0].Approved || revs[0].Serial != o.Serial {
		t.Errorf("revocations %+v; order %+v", revs, o)
	}
	if o.Status != "revoked" {
		t.Errorf("order status %q after revocation", o.Status)
	}

	// A certificate DigiCert never issued.
	other, err := b.Submit(ctx, request(t, "rev.example"))
	if err != nil {
		t.Fatal(err)
	}
	other.Leaf.SerialNumber.SetInt64(12345)
	if err := b.Revoke(ctx, other.Leaf, 0); err == nil || !strings.Contains(err.Error(), "3039") {
		t.Errorf("Revoke of an unknown serial: %v", err)
	}
}

func TestValidityOrdered(t *testing.T) {
	t.Parallel()
	fake := digicerttest.New(t, digicerttest.Options{PrevalidatedDomains: []string{"v.example"}})
	ctx := context.Background()
	for name, tc := range map[string]struct {
		cfg  digicert.Config
		edit func(*issuer.Request)
		days int
	}{
		"default is the maximum": {digicert.Config{}, nil, int(digicert.MaxValidityAt(time.Now()) / (24 * time.Hour))},
		"config days":            {digicert.Config{ValidityDays: 30}, nil, 30},
		"request validity":       {digicert.Config{ValidityDays: 30}, func(r *issuer.Request) { r.Validity = 45 * 24 * time.Hour }, 45},
		"request notAfter":       {digicert.Config{}, func(r *issuer.Request) { r.NotAfter = time.Now().Add(90*24*time.Hour - time.Minute) }, 90},
		"clamped":                {digicert.Config{}, func(r *issuer.Request) { r.Validity = 400 * 24 * time.Hour }, int(digicert.MaxValidityAt(time.Now()) / (24 * time.Hour))},
		"multi-year plan":        {digicert.Config{OrderValidityYears: 2, ValidityDays: 60}, nil, 60},
	} {
		tc.cfg.Product, tc.cfg.OrganizationID = "ssl_basic", 1
		b := newBrand(t, fake, tc.cfg)
		req := request(t, "v.example")
		if tc.edit != nil {
			tc.edit(&req)
		}
		res, err := b.Submit(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		o, _ := fake.Order(lastOrder(t, fake))
		if o.Days != tc.days {
			t.Errorf("%s: ordered %d days, want %d", name, o.Days, tc.days)
		}
		if got := res.Leaf.NotAfter.Sub(res.Leaf.NotBefore); got != time.Duration(tc.days)*24*time.Hour {
			t.Errorf("%s: leaf lives %s", name, got)
		}
		ex := fake.Exchanges()
		post := string(ex[len(ex)-1].Request)
		if tc.cfg.OrderValidityYears > 0 && (!strings.Contains(post, `"order_validity":{"years":2}`) ||
			!strings.Contains(post, `"cert_validity":{"days":60}`)) {
			t.Errorf("%s: order %s, want a 2-year plan with 60-day certificates", name, post)
		}
	}
}

func TestNewRefusesHTTPToken(t *testing.T) {
	t.Parallel()
	_, err := digicert.New("d", digicert.Config{APIKey: "k", Product: "ssl_basic", DCVMethod: digicert.DCVHTTP})
	if err == nil || !strings.Contains(err.Error(), "pki-validation") {
		t.Errorf("New with http-token: %v", err)
	}
	for _, cfg := range []digicert.Config{
		{Product: "ssl_basic"},
		{APIKey: "k"},
		{APIKey: "k", Product: "ssl_basic", BaseURL: "ftp://x"},
		{APIKey: "k", Product: "ssl_basic", DCVMethod: "email"},
		{APIKey: "k", Product: "ssl/../basic"},
	} {
		if _, err := digicert.New("d", cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	if _, err := digicert.New("d", digicert.Config{APIKey: "secret-key-value"}); err == nil || strings.Contains(err.Error(), "secret-key-value") {
		t.Errorf("New error %v must not quote the key", err)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	at := func(s string) func() time.Time {
		tm, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return func() time.Time { return tm }
	}
	day := 24 * time.Hour
	for _, tc := range []struct {
		cfg      digicert.Config
		wildcard bool
		names    int
		validity time.Duration
	}{
		{digicert.Config{Product: "ssl_securesite_pro", Now: at("2026-03-14")}, false, 250, 397 * day},
		{digicert.Config{Product: "ssl_securesite_pro", Now: at("2026-11-23")}, false, 250, 199 * day},
		{digicert.Config{Product: "wildcard_dv_geotrust", Now: at("2027-03-15")}, true, 250, 99 * day},
		{digicert.Config{Product: "ssl_basic", Wildcard: true, MaxNames: 10, Now: at("2029-03-15")}, true, 10, 46 * day},
		{digicert.Config{Product: "ssl_basic", ValidityDays: 90, Now: at("2026-11-23")}, false, 250, 199 * day},
	} {
		tc.cfg.APIKey = "k"
		b, err := digicert.New("d", tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := b.Describe()
		if p.Wildcard != tc.wildcard || p.IP || p.MaxNames != tc.names || p.MaxValidity != tc.validity ||
			!slices.Equal(p.CAAIdentities, []string{"digicert.com"}) {
			t.Errorf("%s at %s: Describe = %+v", tc.cfg.Product, tc.cfg.Now().Format(time.DateOnly), p)
		}
	}
	if d := digicert.SC081MaxDays(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)); d != 200 {
		t.Errorf("SC-081 today: %d days", d)
	}
	b, _ := digicert.New("d", digicert.Config{APIKey: "k", Product: "ssl_basic", CAAIdentities: []string{"digicert.com", "www.digicert.com"}})
	if got := b.Describe().CAAIdentities; len(got) != 2 {
		t.Errorf("CAA identities %v", got)
	}
}
