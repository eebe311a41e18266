package aliyun

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/aliyun/aliyuntest"
	"github.com/acmegw/acmegw/issuer/dcv"
)

// TestDVFlowEndToEnd runs a two-name DV order through the fake: Submit,
// then polls through payed, domain_verify (the record published into a real
// DNS server the fake resolves through), process and certificate. Half way
// the brand is "restarted": the rest of the polls run on a new Issuer with
// only the ticket, which must still remove the records it published.
func TestDVFlowEndToEnd(t *testing.T) {
	e := newEnv(t, "geotrust-dv-1-starter", nil)
	key := rsaKey(t, 2048)
	req := request(t, key, "www.example.com", "example.com")

	res, err := e.is.Submit(context.Background(), req)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	if res.Ticket == "" || len(res.Chain) > 0 || res.RetryAfter <= 0 {
		t.Fatalf("Submit = %+v, want a ticket with RetryAfter", res)
	}
	calls := e.fake.Calls()
	if len(calls) != 1 || calls[0].Action != "CreateCertificateForPackageRequest" {
		t.Fatalf("calls = %v, want one CreateCertificateForPackageRequest", calls)
	}
	p := calls[0].Params
	for k, want := range map[string]string{
		"ProductCode": "geotrust-dv-1-starter", "Domain": "www.example.com,example.com", "ValidateType": "DNS",
		"Username": "Tom", "Phone": "1390000****", "Email": "username@example.com",
	} {
		if got := p.Get(k); got != want {
			t.Errorf("CreateCertificateForPackageRequest %s = %q, want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(p.Get("Csr"), "-----BEGIN CERTIFICATE REQUEST-----") {
		t.Errorf("Csr = %.40q…, want PEM", p.Get("Csr"))
	}

	// Poll until the record is out, on the first instance.
	ticket := res.Ticket
	var states []string
	for len(states) < 5 {
		r, err := e.is.Poll(context.Background(), ticket)
		if err != nil {
			t.Fatalf("Poll: %v", err)
		}
		ticket = r.Ticket
		o, _ := e.fake.Order(ticketOrder(t, ticket))
		states = append(states, o.State)
		if r.RetryAfter != DefaultPollInterval {
			t.Errorf("RetryAfter = %v in %s, want %v", r.RetryAfter, o.State, DefaultPollInterval)
		}
		if pub, _, _ := e.pub.snapshot(); len(pub) > 0 {
			break
		}
	}
	if !slices.Equal(states, []string{aliyuntest.StateDomainVerify, aliyuntest.StateDomainVerify}) {
		t.Errorf("fake states while waiting for the record = %v", states)
	}
	o, _ := e.fake.Order(ticketOrder(t, ticket))
	published, _, _ := e.pub.snapshot()
	var names []string
	for _, r := range published {
		if r.Type != "TXT" || r.Value != o.RecordValue {
			t.Errorf("published %+v, want TXT %s", r, o.RecordValue)
		}
		names = append(names, r.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"_dnsauth.example.com", "_dnsauth.www.example.com"}) {
		t.Errorf("published names = %v", names)
	}
	tk, _ := parseTicket(ticket)
	if len(tk.Records) != 2 {
		t.Errorf("ticket remembers %d records, want 2", len(tk.Records))
	}

	// The rest on a "restarted" instance.
	done, steps, err := e.pollUntilDone(t, e.restart(t), ticket, 10)
	if err != nil {
		t.Fatalf("Poll: %v (steps %v)", err, steps)
	}
	if got := steps[len(steps)-1].state; got != aliyuntest.StateCertificate {
		t.Errorf("final fake state %s", got)
	}
	if !slices.ContainsFunc(steps, func(s pollStep) bool { return s.state == aliyuntest.StateProcess }) {
		t.Errorf("the order never went through process: %v", steps)
	}
	verifyChain(t, e.fake, done, key, "www.example.com", "example.com")
	if done.Leaf.Subject.CommonName != "www.example.com" {
		t.Errorf("CN = %q", done.Leaf.Subject.CommonName)
	}
	_, unpublished, live := e.pub.snapshot()
	if len(unpublished) != 2 || live != 0 {
		t.Errorf("after issuance: %d unpublished, %d still live; want both removed", len(unpublished), live)
	}
}

// TestDVWildcardThroughDelegation orders a wildcard with the delegated DCV
// method: _dnsauth.example.com is a CNAME into a zone "acmegw answers", the
// publisher writes there, and the fake follows the CNAME (the DNS server
// answers only the CNAME, as another zone's authoritative server would).
func TestDVWildcardThroughDelegation(t *testing.T) {
	e := newEnv(t, "geotrust-dv-w-starter", nil)
	e.pub.zone = "dcv.acmegw.test"
	e.dns.AddCNAME("_dnsauth.example.com", "example.com.dcv.acmegw.test")
	key := ecKey(t)
	res, err := e.is.Submit(context.Background(), request(t, key, "*.example.com"))
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	done, steps, err := e.pollUntilDone(t, e.is, res.Ticket, 10)
	if err != nil {
		t.Fatalf("Poll: %v (steps %v)", err, steps)
	}
	verifyChain(t, e.fake, done, key, "foo.example.com")
	published, _, live := e.pub.snapshot()
	if len(published) != 1 || published[0].Name != "_dnsauth.example.com" || published[0].Domain != "example.com" {
		t.Errorf("published %+v, want one record for _dnsauth.example.com", published)
	}
	if live != 0 {
		t.Errorf("%d records left published", live)
	}
}

// TestOVWaitsForApproval: an OV order stays in process (polled less often)
// until the CA approves it.
func TestOVWaitsForApproval(t *testing.T) {
	e := newEnv(t, "globalsign-ov-1-personal", func(c *Config) { c.CompanyName = "Example Ltd" })
	key := ecKey(t)
	res, err := e.is.Submit(context.Background(), request(t, key, "shop.example.com"))
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	if got := e.fake.Calls()[0].Params.Get("CompanyName"); got != "Example Ltd" {
		t.Errorf("CompanyName = %q", got)
	}
	id := ticketOrder(t, res.Ticket)
	ticket := res.Ticket
	inProcess := 0
	for i := 0; i < 12 && inProcess < 3; i++ {
		r, err := e.is.Poll(context.Background(), ticket)
		if err != nil {
			t.Fatalf("Poll: %v", err)
		}
		if len(r.Chain) > 0 {
			t.Fatalf("OV order issued before approval")
		}
		ticket = r.Ticket
		if o, _ := e.fake.Order(id); o.State == aliyuntest.StateProcess {
			inProcess++
			if r.RetryAfter != DefaultOVReviewInterval {
				t.Errorf("RetryAfter in review = %v, want %v", r.RetryAfter, DefaultOVReviewInterval)
			}
		}
	}
	if inProcess < 3 {
		t.Fatalf("the order never stayed in process")
	}
	if err := e.fake.Approve(id); err != nil {
		t.Fatal(err)
	}
	done, steps, err := e.pollUntilDone(t, e.is, ticket, 3)
	if err != nil {
		t.Fatalf("Poll after approval: %v (%v)", err, steps)
	}
	verifyChain(t, e.fake, done, key, "shop.example.com")
	if got := done.Leaf.Subject.Organization; !slices.Equal(got, []string{"Example Ltd"}) {
		t.Errorf("O = %v", got)
	}
	if _, _, live := e.pub.snapshot(); live != 0 {
		t.Errorf("%d records left published", live)
	}
}

// TestRejectIsPermanentAndFreesQuota: the CA's refusal fails the order with
// its reason, removes the records and deletes the application so its quota
// comes back.
func TestRejectIsPermanentAndFreesQuota(t *testing.T) {
	const product = "globalsign-ov-1-personal"
	e := newEnv(t, product, nil)
	e.fake.SetQuota(product, 1)
	res, err := e.is.Submit(context.Background(), request(t, ecKey(t), "shop.example.com"))
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	id := ticketOrder(t, res.Ticket)
	ticket := res.Ticket
	for o, _ := e.fake.Order(id); o.State != aliyuntest.StateProcess; o, _ = e.fake.Order(id) {
		r, err := e.is.Poll(context.Background(), ticket)
		if err != nil {
			t.Fatalf("Poll: %v", err)
		}
		ticket = r.Ticket
	}
	if e.fake.Used(product) != 1 {
		t.Fatalf("quota used = %d before the refusal", e.fake.Used(product))
	}
	const reason = "The organisation could not be verified with the registry."
	if err := e.fake.Reject(id, reason); err != nil {
		t.Fatal(err)
	}
	_, err = e.is.Poll(context.Background(), ticket)
	ie, ok := issuer.AsError(err)
	if !ok || !ie.Permanent || ie.Type != "rejectedIdentifier" {
		t.Fatalf("Poll after Reject: %v, want a permanent rejectedIdentifier", err)
	}
	if !strings.Contains(ie.Detail, reason) || !strings.Contains(ie.Detail, "verify_fail") {
		t.Errorf("detail %q lacks the reason", ie.Detail)
	}
	if n := e.fake.Count("DeleteCertificateRequest"); n != 1 {
		t.Errorf("DeleteCertificateRequest called %d times, want 1", n)
	}
	if o, _ := e.fake.Order(id); !o.Deleted {
		t.Errorf("order not deleted")
	}
	if e.fake.Used(product) != 0 {
		t.Errorf("quota still used after the refusal")
	}
	if _, unpublished, live := e.pub.snapshot(); len(unpublished) != 1 || live != 0 {
		t.Errorf("records: %d unpublished, %d live", len(unpublished), live)
	}
}

// TestProductRulesRefusedBeforeAnyCall: what Alibaba would refuse (or
// silently bill) is refused at Submit, permanently and without a call.
func TestProductRulesRefusedBeforeAnyCall(t *testing.T) {
	e := newEnv(t, "geotrust-dv-1-starter", nil)
	free := newEnv(t, "digicert-free-1-free", nil)
	wild := newEnv(t, "geotrust-dv-w-starter", nil)
	ec := ecKey(t)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	badSig := newCSR(t, ec, "example.com")
	badSig.Signature = append([]byte(nil), badSig.Signature...)
	badSig.Signature[len(badSig.Signature)-1] ^= 0xff

	cases := []struct {
		name     string
		env      *env
		req      issuer.Request
		wantType string
		wantText string
	}{
		{"six names", e, request(t, ec, "a.example.com", "b.example.com", "c.example.com", "d.example.com", "e.example.com", "f.example.com"),
			"rejectedIdentifier", "at most 5"},
		{"wildcard and plain", wild, request(t, ec, "*.example.com", "example.com"), "rejectedIdentifier", "cannot share"},
		{"CN is not the first name", e, issuer.Request{OrderID: "o", CSR: newCSR(t, ec, "b.example.com", "a.example.com", "b.example.com"),
			DNSNames: []string{"a.example.com", "b.example.com"}}, "badCSR", "common name"},
		{"RSA-1024", e, request(t, rsaKey(t, 1024), "example.com"), "badCSR", "RSA-1024"},
		{"no CN", e, issuer.Request{OrderID: "o", CSR: newCSR(t, ec, "", "example.com"), DNSNames: []string{"example.com"}}, "badCSR", "no common name"},
		{"Ed25519", e, request(t, edKey, "example.com"), "badCSR", "ed25519"},
		{"bad CSR signature", e, issuer.Request{OrderID: "o", CSR: badSig, DNSNames: []string{"example.com"}}, "badCSR", "signature"},
		{"no CSR", e, issuer.Request{OrderID: "o", DNSNames: []string{"example.com"}}, "badCSR", "no CSR"},
		{"IP address", e, issuer.Request{OrderID: "o", CSR: newCSR(t, ec, "example.com"), DNSNames: []string{"example.com"}, IPs: []string{"192.0.2.1"}},
			"rejectedIdentifier", "IP"},
		{"wildcard on a plain product", e, request(t, ec, "*.example.com"), "rejectedIdentifier", "not a wildcard product"},
		{"plain name on a wildcard product", wild, request(t, ec, "example.com"), "rejectedIdentifier", "only wildcard"},
		{"two names on the free product", free, request(t, ec, "example.com", "www.example.com"), "rejectedIdentifier", "at most 1"},
		{"double wildcard", wild, request(t, ec, "*.*.example.com"), "rejectedIdentifier", "leftmost label"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.env.is.Submit(context.Background(), c.req)
			ie, ok := issuer.AsError(err)
			if !ok || !ie.Permanent || ie.Type != c.wantType {
				t.Fatalf("Submit: %v, want a permanent %s", err, c.wantType)
			}
			if !strings.Contains(strings.ToLower(ie.Detail), strings.ToLower(c.wantText)) {
				t.Errorf("detail %q does not mention %q", ie.Detail, c.wantText)
			}
		})
	}
	for _, x := range []*env{e, free, wild} {
		if calls := x.fake.Calls(); len(calls) != 0 {
			t.Errorf("%s: %d API calls for refused requests", x.cfg.ProductCode, len(calls))
		}
	}
}

// TestThrottlingIsTransient: Throttling.User is retried after RetryAfter,
// on Submit and on Poll; the next attempt goes through.
func TestThrottlingIsTransient(t *testing.T) {
	e := newEnv(t, "geotrust-dv-1-starter", func(c *Config) { c.ThrottleRetry = 7 * time.Second })
	req := request(t, ecKey(t), "example.com")
	check := func(what string, err error) {
		t.Helper()
		ie, ok := issuer.AsError(err)
		if !ok || ie.Permanent || ie.Type != "rateLimited" || ie.RetryAfter != 7*time.Second {
			t.Fatalf("%s while throttled: %v, want a transient rateLimited with RetryAfter 7s", what, err)
		}
		if ae, ok := asAPIError(err); !ok || ae.Code != aliyuntest.CodeThrottlingUser {
			t.Errorf("%s: the Alibaba answer is not in the error chain", what)
		}
	}
	e.fake.Throttle(1)
	_, err := e.is.Submit(context.Background(), req)
	check("Submit", err)
	res, err := e.is.Submit(context.Background(), req)
	if err != nil {
		t.Fatalf("Submit after the throttle: %v", err)
	}
	e.fake.Throttle(1)
	_, err = e.is.Poll(context.Background(), res.Ticket)
	check("Poll", err)
	if _, err := e.is.Poll(context.Background(), res.Ticket); err != nil {
		t.Fatalf("Poll after the throttle: %v", err)
	}
}

// TestQuotaExceededIsPermanent: a used-up resource plan fails the order.
func TestQuotaExceededIsPermanent(t *testing.T) {
	const product = "geotrust-dv-1-starter"
	e := newEnv(t, product, nil)
	e.fake.SetQuota(product, 0)
	_, err := e.is.Submit(context.Background(), request(t, ecKey(t), "example.com"))
	ie, ok := issuer.AsError(err)
	if !ok || !ie.Permanent || ie.Type != "rateLimited" || !strings.Contains(ie.Detail, "quota") {
		t.Fatalf("Submit with no quota: %v, want a permanent rateLimited about the quota", err)
	}
}

// TestRevokeReachesFake issues two certificates for overlapping names and
// revokes one: the search finds the right order by serial.
func TestRevokeReachesFake(t *testing.T) {
	e := newEnv(t, "geotrust-dv-1-starter", nil)
	issue := func(names ...string) issuer.Result {
		t.Helper()
		res, err := e.is.Submit(context.Background(), request(t, ecKey(t), names...))
		if err != nil {
			t.Fatal(err)
		}
		done, _, err := e.pollUntilDone(t, e.is, res.Ticket, 10)
		if err != nil {
			t.Fatal(err)
		}
		return done
	}
	first := issue("www.example.com")
	issue("www.example.com", "example.com") // a second candidate for the search
	if err := e.is.Revoke(context.Background(), first.Leaf, 0); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	var cancelled []string
	for _, c := range e.fake.Calls() {
		if c.Action == "CancelCertificateForPackageRequest" {
			cancelled = append(cancelled, c.Params.Get("OrderId"))
		}
	}
	orders := e.fake.Orders()
	if len(cancelled) != 1 || cancelled[0] != strconv.FormatInt(orders[0].ID, 10) {
		t.Fatalf("cancelled orders %v, want only %d", cancelled, orders[0].ID)
	}
	if orders[0].State != aliyuntest.StateRevoked || orders[1].State != aliyuntest.StateCertificate {
		t.Errorf("states after revoke: %s, %s", orders[0].State, orders[1].State)
	}
	// Revoked already: nothing left to find.
	err := e.is.Revoke(context.Background(), first.Leaf, 0)
	if ie, ok := issuer.AsError(err); !ok || !ie.Permanent || !strings.Contains(ie.Detail, "no issued") {
		t.Errorf("second Revoke: %v, want a permanent not-found", err)
	}
	// The direct path, for a gateway that keeps tickets.
	tk := ticket{OrderID: orders[1].ID}
	if err := e.is.RevokeTicket(context.Background(), tk.encode(), 0); err != nil {
		t.Errorf("RevokeTicket: %v", err)
	}
	if o, _ := e.fake.Order(orders[1].ID); o.State != aliyuntest.StateRevoked {
		t.Errorf("RevokeTicket did not revoke: %s", o.State)
	}
}

// TestPublishFailureIsRetried: a DNS provider outage is an ordinary error,
// and the next poll publishes.
func TestPublishFailureIsRetried(t *testing.T) {
	e := newEnv(t, "geotrust-dv-1-starter", nil)
	res, err := e.is.Submit(context.Background(), request(t, ecKey(t), "example.com"))
	if err != nil {
		t.Fatal(err)
	}
	e.pub.failPublish = errors.New("provider API down")
	ticket := res.Ticket
	var perr error
	for range 4 {
		r, err := e.is.Poll(context.Background(), ticket)
		if err != nil {
			perr = err
			break
		}
		ticket = r.Ticket
	}
	if perr == nil || issuer.IsPermanent(perr) || !strings.Contains(perr.Error(), "provider API down") {
		t.Fatalf("Poll with a failing publisher: %v, want a transient error naming the cause", perr)
	}
	e.pub.mu.Lock()
	e.pub.failPublish = nil
	e.pub.mu.Unlock()
	if _, _, err := e.pollUntilDone(t, e.is, ticket, 10); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

func TestDescribe(t *testing.T) {
	at := func(s string) func() time.Time {
		return func() time.Time { tm, _ := time.Parse(time.DateOnly, s); return tm }
	}
	day := 24 * time.Hour
	yes := true
	cases := []struct {
		cfg  Config
		want issuer.Product
	}{
		{Config{ProductCode: "geotrust-dv-1-starter", Now: at("2026-03-14")},
			issuer.Product{MaxNames: 5, MaxValidity: 398 * day, CAAIdentities: []string{"digicert.com"}}},
		{Config{ProductCode: "geotrust-dv-w-starter", Now: at("2026-03-15")},
			issuer.Product{Wildcard: true, MaxNames: 5, MaxValidity: 200 * day, CAAIdentities: []string{"digicert.com"}}},
		{Config{ProductCode: "globalsign-ov-1-personal", Now: at("2027-03-15")},
			issuer.Product{MaxNames: 5, MaxValidity: 100 * day, CAAIdentities: []string{"globalsign.com"}}},
		{Config{ProductCode: "cfca-ov-1-personal", Now: at("2029-03-15")},
			issuer.Product{MaxNames: 5, MaxValidity: 47 * day, CAAIdentities: []string{"cfca.com.cn"}}},
		{Config{ProductCode: "digicert-free-1-free", Now: at("2026-06-01")},
			issuer.Product{MaxNames: 1, MaxValidity: 90 * day, CAAIdentities: []string{"digicert.com"}}},
		{Config{ProductCode: "symantec-dv-1-starter", Wildcard: &yes, MaxNames: 2, CAAIdentities: []string{"example-ca.test"}, Now: at("2026-06-01")},
			issuer.Product{Wildcard: true, MaxNames: 2, MaxValidity: 200 * day, CAAIdentities: []string{"example-ca.test"}}},
	}
	for _, c := range cases {
		c.cfg.AccessKeyID, c.cfg.AccessKeySecret = "id", "secret"
		is, err := New(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		got := is.Describe()
		if got.Wildcard != c.want.Wildcard || got.IP || got.MaxNames != c.want.MaxNames ||
			got.MaxValidity != c.want.MaxValidity || !slices.Equal(got.CAAIdentities, c.want.CAAIdentities) {
			t.Errorf("%s: Describe = %+v, want %+v", c.cfg.ProductCode, got, c.want)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	base := Config{AccessKeyID: "id", AccessKeySecret: "secret", ProductCode: "geotrust-dv-1-starter"}
	for name, tweak := range map[string]func(*Config){
		"no key":          func(c *Config) { c.AccessKeySecret = "" },
		"no product":      func(c *Config) { c.ProductCode = " " },
		"FILE validation": func(c *Config) { c.ValidateType = "FILE" },
		"bad endpoint":    func(c *Config) { c.Endpoint = "ftp://cas.aliyuncs.com" },
		"too many names":  func(c *Config) { c.MaxNames = 6 },
	} {
		c := base
		tweak(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted %+v", name, c)
		}
	}
	is, err := New(base)
	if err != nil {
		t.Fatal(err)
	}
	if is.endpoint.String() != DefaultEndpoint || is.pub.Method() != (dcv.Prevalidated{}).Method() {
		t.Errorf("defaults: endpoint %s, publisher %s", is.endpoint, is.pub.Method())
	}
}

func TestBadTicketsArePermanent(t *testing.T) {
	is, err := New(Config{AccessKeyID: "id", AccessKeySecret: "secret", ProductCode: "geotrust-dv-1-starter"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range []string{"", "tencent:123", ticketPrefix + "!!!", ticketPrefix + "e30"} {
		if _, err := is.Poll(context.Background(), tk); !issuer.IsPermanent(err) {
			t.Errorf("Poll(%q) = %v, want a permanent error", tk, err)
		}
	}
	in := ticket{OrderID: 1 << 40, Product: "p", Names: []string{"*.example.com"}, KeyHash: "k",
		Records: []record{{Domain: "example.com", Name: "_dnsauth.example.com", Type: "TXT", Value: "v"}}}
	out, err := parseTicket(in.encode())
	if err != nil || out.OrderID != in.OrderID || !slices.Equal(out.Names, in.Names) || !slices.Equal(out.Records, in.Records) {
		t.Errorf("ticket round trip: %+v, %v", out, err)
	}
}

func TestRecordName(t *testing.T) {
	for _, c := range []struct{ rd, base, want string }{
		{"_dnsauth", "example.com", "_dnsauth.example.com"},
		{"_dnsauth", "www.example.com", "_dnsauth.www.example.com"},
		{"_dnsauth.www", "www.example.com", "_dnsauth.www.example.com"},
		{"_dnsauth.a.b", "a.b.example.com", "_dnsauth.a.b.example.com"},
		{"_dnsauth.example.com", "example.com", "_dnsauth.example.com"},
		{"_dnsauth.www.example.com", "www.example.com", "_dnsauth.www.example.com"},
	} {
		if got := recordName(c.rd, c.base); got != c.want {
			t.Errorf("recordName(%q, %q) = %q, want %q", c.rd, c.base, got, c.want)
		}
	}
}

// TestDCVWaitsForTheRecord: with nothing published, the fake's DNS check
// keeps the order in domain_verify.
func TestDCVWaitsForTheRecord(t *testing.T) {
	e := newEnv(t, "geotrust-dv-1-starter", func(c *Config) { c.Publisher = dcv.Prevalidated{} })
	res, err := e.is.Submit(context.Background(), request(t, ecKey(t), "example.com"))
	if err != nil {
		t.Fatal(err)
	}
	ticket := res.Ticket
	for range 5 {
		r, err := e.is.Poll(context.Background(), ticket)
		if err != nil || len(r.Chain) > 0 {
			t.Fatalf("Poll = %v, %v; want to keep waiting", r.Chain != nil, err)
		}
		ticket = r.Ticket
	}
	if o, _ := e.fake.Order(ticketOrder(t, ticket)); o.State != aliyuntest.StateDomainVerify {
		t.Errorf("state %s without the record, want domain_verify", o.State)
	}
	// A wrong value does not pass either.
	e.dns.AddTXT("_dnsauth.example.com", "not-the-value")
	if r, err := e.is.Poll(context.Background(), ticket); err != nil || r.Ticket == "" {
		t.Fatalf("Poll: %v", err)
	}
	if o, _ := e.fake.Order(ticketOrder(t, ticket)); o.State != aliyuntest.StateDomainVerify {
		t.Errorf("state %s with a wrong value, want domain_verify", o.State)
	}
}
