package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"golang.org/x/crypto/acme"

	"github.com/acmegw/acmegw/internal/testredis"
)

// manualConfig writes a configuration with the two manual brands, whose
// profile named defaultProfile is the default (x/crypto/acme cannot choose
// a profile), and returns the --config arguments.
func manualConfig(t *testing.T, defaultProfile string) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "acmegw.yaml")
	yaml := `default_profile: ` + defaultProfile + `
profiles:
  slow:   {brand: slow, description: "manual brand, issues 3 s after finalize", validity: 90d}
  review: {brand: review, description: "manual review", validity: 90d, deadline: 30d}
brands:
  slow:   {type: manual, issue_after: 3s}
  review: {type: manual, review: true}
rate_limits: {disabled: true}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--config", path}
}

// readyXOrder creates an order for names with client, answers dns-01 in the
// gateway's DNS server and waits until the order is ready.
func readyXOrder(t *testing.T, gw *gateway, client *acme.Client, names ...string) *acme.Order {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	order, err := client.AuthorizeOrder(ctx, acme.DomainIDs(names...))
	if err != nil {
		t.Fatalf("new order: %v", err)
	}
	for _, u := range order.AuthzURLs {
		authz, err := client.GetAuthorization(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range authz.Challenges {
			if c.Type != "dns-01" {
				continue
			}
			rec, err := client.DNS01ChallengeRecord(c.Token)
			if err != nil {
				t.Fatal(err)
			}
			gw.DNS.AddTXT("_acme-challenge."+authz.Identifier.Value+".", rec)
			if _, err := client.Accept(ctx, c); err != nil {
				t.Fatalf("accept: %v", err)
			}
		}
		if _, err := client.WaitAuthorization(ctx, u); err != nil {
			t.Fatalf("authorization %s: %v", authz.Identifier.Value, err)
		}
	}
	order, err = client.WaitOrder(ctx, order.URI)
	if err != nil {
		t.Fatalf("order: %v", err)
	}
	return order
}

// finalizeAndGiveUp finalizes like a client with a short patience: the
// order is left processing at the brand when the client stops waiting.
func finalizeAndGiveUp(t *testing.T, client *acme.Client, order *acme.Order, names ...string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, key)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, _, err := client.CreateOrderCert(ctx, order.FinalizeURL, csr, true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("finalize of an order held for review: %v, want the client to run out of patience", err)
	}
	o, err := client.GetOrder(context.Background(), order.URI)
	if err != nil || o.Status != acme.StatusProcessing {
		t.Fatalf("order after finalize: %+v, %v; want processing", o, err)
	}
}

// review runs "acmegw review".
func review(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(binary, append([]string{"review"}, args...)...).CombinedOutput()
	return string(out), err
}

// TestManualBrandIssueAfter: a brand that issues 3 s after finalize. Clients
// get "processing" from finalize and their certificate by polling the order.
func TestManualBrandIssueAfter(t *testing.T) {
	gw := startGateway(t, gatewayOptions{RedisURL: testredis.Start(t), Args: manualConfig(t, "slow")})

	t.Run("x/crypto/acme", func(t *testing.T) {
		start := time.Now()
		leaf := issueDNS01(t, gw, newXClient(t, gw), "slow.manual.e2e.test")
		if took := time.Since(start); took < 3*time.Second {
			t.Errorf("issued after %s, before the brand's 3 s", took)
		}
		if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "slow.manual.e2e.test" {
			t.Errorf("leaf names %v", leaf.DNSNames)
		}
	})

	t.Run("lego", func(t *testing.T) {
		c, _ := legoNew(t, gw, certcrypto.EC256)
		legoDNS01(t, c, gw)
		start := time.Now()
		res := legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"lego.manual.e2e.test"}})
		if took := time.Since(start); took < 3*time.Second {
			t.Errorf("issued after %s, before the brand's 3 s", took)
		}
		legoCheckChain(t, gw, res, "lego.manual.e2e.test")
	})
}

// TestReviewApproveAfterCrash: the instance that accepted an order held for
// review dies; another instance on the same Redis carries the job on, and
// issues once an operator approves. The client fetches its certificate from
// the second instance.
func TestReviewApproveAfterCrash(t *testing.T) {
	redisURL := testredis.Start(t)
	dataDir := t.TempDir()
	args := manualConfig(t, "review")
	gw1 := startGateway(t, gatewayOptions{RedisURL: redisURL, DataDir: dataDir, Args: args})

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c1 := &acme.Client{Key: key, DirectoryURL: gw1.DirURL, HTTPClient: gw1.HTTPClient(t)}
	if _, err := c1.Register(context.Background(), &acme.Account{}, acme.AcceptTOS); err != nil {
		t.Fatalf("register: %v", err)
	}
	name := "ov.review.e2e.test"
	order := readyXOrder(t, gw1, c1, name)
	finalizeAndGiveUp(t, c1, order, name)
	id := order.URI[strings.LastIndex(order.URI, "/")+1:]

	gw1.Kill()
	gw2 := startGateway(t, gatewayOptions{RedisURL: redisURL, DataDir: dataDir, DNS: gw1.DNS, Args: args})

	// Undecided, the order stays processing on the new instance too.
	c2 := &acme.Client{Key: key, DirectoryURL: gw2.DirURL, HTTPClient: gw2.HTTPClient(t)}
	orderURL := gw2.BaseURL() + "/acme/order/" + id
	time.Sleep(3 * time.Second)
	if o, err := c2.GetOrder(context.Background(), orderURL); err != nil || o.Status != acme.StatusProcessing {
		t.Fatalf("undecided order on the second instance: %+v, %v", o, err)
	}

	if out, err := review(t, "approve", id, "--redis", redisURL, "--reason", "documents checked"); err != nil {
		t.Fatalf("review approve: %v\n%s", err, out)
	}
	// Normally a poll or two (2 s apart); if the kill hit the first
	// instance while it held the job's lease, its lease (2 min) runs out first.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	o, err := c2.WaitOrder(ctx, orderURL)
	if err != nil {
		t.Fatalf("order after approval: %v\nsecond instance log:\n%s", err, gw2.Log())
	}
	if !strings.HasPrefix(o.CertURL, gw2.BaseURL()+"/") {
		t.Errorf("certificate URL %q is not on the second instance", o.CertURL)
	}
	der, err := c2.FetchCert(ctx, o.CertURL, true)
	if err != nil {
		t.Fatalf("fetch certificate from the second instance: %v", err)
	}
	leaf, err := x509.ParseCertificate(der[0])
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, d := range der[1:] {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: gw2.RootPool(t), Intermediates: inter}); err != nil {
		t.Errorf("certificate does not verify: %v", err)
	}
	if log := gw2.Log(); !strings.Contains(log, "certificate issued") || !strings.Contains(log, id) {
		t.Errorf("the second instance did not log the issuance of %s", id)
	}

	// The decision is final once the order is.
	if out, err := review(t, "reject", id, "--redis", redisURL); err == nil || !strings.Contains(out, "already valid") {
		t.Errorf("reject after issuance: %v\n%s", err, out)
	}
}

// TestReviewReject: an operator rejects an order held for review; the
// client sees it invalid, with the operator's reason.
func TestReviewReject(t *testing.T) {
	redisURL := testredis.Start(t)
	gw := startGateway(t, gatewayOptions{RedisURL: redisURL, Args: manualConfig(t, "review")})
	client := newXClient(t, gw)
	name := "ev.review.e2e.test"
	order := readyXOrder(t, gw, client, name)
	finalizeAndGiveUp(t, client, order, name)

	reason := "the organization could not be verified"
	if out, err := review(t, "reject", order.URI, "--reason", reason, "--redis", redisURL); err != nil {
		t.Fatalf("review reject: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := client.WaitOrder(ctx, order.URI)
	var oe *acme.OrderError
	if !errors.As(err, &oe) || oe.Status != acme.StatusInvalid {
		t.Fatalf("order after rejection: %v, want invalid", err)
	}
	o, err := client.GetOrder(ctx, order.URI)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != acme.StatusInvalid || o.Error == nil || o.Error.ProblemType != "urn:ietf:params:acme:error:unauthorized" ||
		!strings.Contains(o.Error.Detail, "rejected by review: "+reason) {
		t.Fatalf("rejected order: status %s, error %+v", o.Status, o.Error)
	}
}

// TestReviewCommandRefusals: the command needs Redis, a known order and a
// decision.
func TestReviewCommandRefusals(t *testing.T) {
	redisURL := testredis.Start(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"approve", "some-order"}, "in-memory store"},
		{[]string{"approve", "no-such-order", "--redis", redisURL}, `no order "no-such-order"`},
		{[]string{"maybe", "some-order", "--redis", redisURL}, "usage: acmegw review approve|reject"},
		{[]string{"approve", "--redis", redisURL}, "usage: acmegw review approve|reject"},
	} {
		cmd := exec.Command(binary, append([]string{"review"}, c.args...)...)
		cmd.Env = append(os.Environ(), "ACMEGW_REDIS=")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("review %v: %v\n%s\nwant an error mentioning %q", c.args, err, out, c.want)
		}
	}
}
