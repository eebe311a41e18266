package main

// End-to-end acceptance of the commercial brand types (tencent, aliyun,
// digicert): the real acmegw binary on Redis, each brand pointed at its
// local fake (issuer/*/…test), a real ACME client (the lego library), and
// the brand's own domain validation satisfied by the gateway through a
// delegated zone it serves itself, or through an operator's exec script.
//
// DNS, all on loopback:
//
//	publicDNS  validationtest.DNSServer: the "Internet". The client's dns-01
//	           records, the owners' one-time CNAMEs
//	           _dnsauth.<name> → _dnsauth.<name>.dcv.brands.test, and the
//	           exec script's TXT records live here. The gateway validates
//	           dns-01 against it.
//	zone       the gateway's delegated zone dcv.brands.test (dcv.DelegatedZone,
//	           records in Redis), on a port the test picks.
//	resolver   a forwarding resolver the fakes ask: names under the zone go
//	           to the zone's server, all others to publicDNS, so a fake that
//	           follows _dnsauth.<name>'s CNAME reaches the zone the way a
//	           CA's recursive resolver would through the zone's delegation.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/lego"
	"github.com/miekg/dns"

	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/issuer/aliyun/aliyuntest"
	"github.com/acmegw/acmegw/issuer/digicert/digicerttest"
	"github.com/acmegw/acmegw/issuer/tencent/tencenttest"
	"github.com/acmegw/acmegw/validation/validationtest"
)

// brandsZone is the delegated zone the gateway answers in these tests.
const brandsZone = "dcv.brands.test"

// dnsForwarder is the recursive resolver the fakes use (see the file
// comment). It counts the queries it sent to the delegated zone.
type dnsForwarder struct {
	addr     string
	public   string
	zone     string // FQDN
	zoneAddr string

	mu          sync.Mutex
	zoneQueries map[string]int // by lower-case FQDN
}

func startDNSForwarder(t *testing.T, public, zone, zoneAddr string) *dnsForwarder {
	t.Helper()
	f := &dnsForwarder{public: public, zone: dns.Fqdn(zone), zoneAddr: zoneAddr, zoneQueries: map[string]int{}}
	pc, l := listenUDPTCP(t)
	f.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: f}, {Listener: l, Handler: f}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return f
}

func (f *dnsForwarder) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	upstream := f.public
	if len(r.Question) == 1 {
		if name := dns.CanonicalName(r.Question[0].Name); dns.IsSubDomain(f.zone, name) {
			upstream = f.zoneAddr
			f.mu.Lock()
			f.zoneQueries[name]++
			f.mu.Unlock()
		}
	}
	c := &dns.Client{Net: w.RemoteAddr().Network(), Timeout: 3 * time.Second}
	resp, _, err := c.Exchange(r, upstream)
	if err != nil {
		resp = new(dns.Msg)
		resp.SetRcode(r, dns.RcodeServerFailure)
	}
	_ = w.WriteMsg(resp)
}

// zoneQueried is how many queries for name the zone's server answered.
func (f *dnsForwarder) zoneQueried(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.zoneQueries[dns.CanonicalName(name)]
}

// listenUDPTCP binds one loopback port for both UDP and TCP.
func listenUDPTCP(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l
		}
		pc.Close()
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return nil, nil
}

// orderSeen is one ACME order object a client received.
type orderSeen struct {
	URL        string // the order's URL (Location)
	Status     string
	RetryAfter string
	Detail     string
}

// orderRecorder is an http.RoundTripper that notes every order object the
// client receives, with the headers that go with it.
type orderRecorder struct {
	next   http.RoundTripper
	mu     sync.Mutex
	orders []orderSeen
}

func (r *orderRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return resp, nil
	}
	var o struct {
		Status   string `json:"status"`
		Finalize string `json:"finalize"`
		Error    *struct {
			Detail string `json:"detail"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &o) == nil && o.Finalize != "" {
		seen := orderSeen{URL: resp.Header.Get("Location"), Status: o.Status, RetryAfter: resp.Header.Get("Retry-After")}
		if seen.URL == "" {
			seen.URL = req.URL.String()
		}
		if o.Error != nil {
			seen.Detail = o.Error.Detail
		}
		r.mu.Lock()
		r.orders = append(r.orders, seen)
		r.mu.Unlock()
	}
	return resp, nil
}

func (r *orderRecorder) seen() []orderSeen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.orders)
}

func (r *orderRecorder) last(t *testing.T) orderSeen {
	t.Helper()
	s := r.seen()
	if len(s) == 0 {
		t.Fatal("the client received no order object")
	}
	return s[len(s)-1]
}

// brandClient is a lego client whose order responses are recorded.
type brandClient struct {
	*lego.Client
	user *legoUser
	rec  *orderRecorder
}

// newBrandClient makes a lego client for gw that answers dns-01 in the
// public DNS and waits at most wait for a certificate after finalizing.
// With from set it uses that client's account (a re-run of the same
// client); otherwise it registers a new one.
func newBrandClient(t *testing.T, gw *gateway, wait time.Duration, from *brandClient) *brandClient {
	t.Helper()
	hc := gw.HTTPClient(t)
	rec := &orderRecorder{next: hc.Transport}
	hc.Transport = rec
	tweak := func(c *lego.Config) { c.HTTPClient = hc; c.Certificate.Timeout = wait }
	var bc brandClient
	if from == nil {
		bc.Client, bc.user = legoNew(t, gw, certcrypto.EC256, tweak)
	} else {
		// lego reads the account URL when the client is made.
		bc.user = &legoUser{key: from.user.key, reg: from.user.reg}
		cfg := lego.NewConfig(bc.user)
		cfg.CADirURL = gw.DirURL
		cfg.UserAgent = "acmegw-e2e"
		cfg.Certificate.KeyType = certcrypto.EC256
		tweak(cfg)
		var err error
		if bc.Client, err = lego.NewClient(cfg); err != nil {
			t.Fatalf("lego.NewClient: %v", err)
		}
	}
	bc.rec = rec
	legoDNS01(t, bc.Client, gw)
	return &bc
}

// brandCSR is a CSR for name with name as its common name, which the
// commercial CAs require.
func brandCSR(t *testing.T, name string) (*x509.CertificateRequest, *ecdsa.PrivateKey) {
	t.Helper()
	key := legoECKey(t, elliptic.P256())
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr, key
}

// obtain runs lego's ObtainForCSR for the profile.
func (c *brandClient) obtain(csr *x509.CertificateRequest, profile string) (*certificate.Resource, error) {
	return c.Certificate.ObtainForCSR(certificate.ObtainForCSRRequest{CSR: csr, Bundle: true, Profile: profile})
}

// checkBrandChain checks that the bundle verifies up to the brand's root
// (and not the gateway's), names exactly name and carries key.
func checkBrandChain(t *testing.T, gw *gateway, res *certificate.Resource, roots *x509.CertPool, name string, key *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	certs, err := certcrypto.ParsePEMBundle(res.Certificate)
	if err != nil {
		t.Fatalf("parsing the bundle: %v", err)
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name}); err != nil {
		t.Fatalf("chain does not verify to the brand's root for %s: %v", name, err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: gw.RootPool(t), Intermediates: inter}); err == nil {
		t.Fatal("a brand certificate verifies to the gateway's own root")
	}
	if !slices.Equal(leaf.DNSNames, []string{name}) {
		t.Errorf("leaf SANs %v, want [%s]", leaf.DNSNames, name)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		t.Error("the leaf's key is not the CSR's: the gateway did not pass the client's CSR to the brand")
	}
	if !strings.HasPrefix(res.CertURL, gw.BaseURL()+"/") {
		t.Errorf("certificate URL %q is not on the gateway", res.CertURL)
	}
	return leaf
}

// eventually polls cond every 100 ms for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// brandFakes is one fake per commercial API, each checking DCV through fwd.
type brandFakes struct {
	tencent  *tencenttest.Fake
	aliyun   *aliyuntest.Server
	digicert *digicerttest.Server
}

// brandRoots is a pool holding one root certificate.
func brandRoots(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// brandsConfig is the gateway configuration: per commercial type a DV brand
// on the delegated zone, a DV brand on the exec script, an OV brand on the
// zone, and for aliyun a product without quota. Poll intervals are short,
// and so are the deadlines.
func brandsConfig(f brandFakes, zoneListen, resolver, script string) string {
	return fmt.Sprintf(`default_profile: local
profiles:
  local:            {brand: local}
  tencent-dv:       {brand: tencent-dv, description: "TrustAsia DV via Tencent Cloud", deadline: 2m}
  tencent-dv-exec:  {brand: tencent-dv-exec, deadline: 2m}
  tencent-ov:       {brand: tencent-ov, description: "TrustAsia OV via Tencent Cloud", deadline: 5m}
  aliyun-dv:        {brand: aliyun-dv, deadline: 2m}
  aliyun-dv-exec:   {brand: aliyun-dv-exec, deadline: 2m}
  aliyun-ov:        {brand: aliyun-ov, deadline: 5m}
  aliyun-starter:   {brand: aliyun-starter, deadline: 2m}
  digicert-dv:      {brand: digicert-dv, deadline: 2m}
  digicert-dv-exec: {brand: digicert-dv-exec, deadline: 2m}
  digicert-ov:      {brand: digicert-ov, deadline: 5m}
brands:
  local: {type: local}
  tencent-dv:
    type: tencent
    secret_id_env: E2E_TENCENT_ID
    secret_key_env: E2E_TENCENT_KEY
    endpoint: %[1]q
    product: 104
    contact_email: pki@brands.test
    caa_identities: [trustasia.com]
    poll_interval: 1s
    recheck_interval: 1s
    revoke_wait: 15s
    dcv: &zone
      method: delegated
      zone: %[4]s
      listen: %[5]q
      ns: [ns1.%[4]s]
      glue: [ns1.%[4]s=127.0.0.1]
      ttl: 5
      check_delegation: true
      resolver: %[6]q
  tencent-dv-exec:
    type: tencent
    secret_id_env: E2E_TENCENT_ID
    secret_key_env: E2E_TENCENT_KEY
    endpoint: %[1]q
    product: 104
    contact_email: pki@brands.test
    poll_interval: 1s
    recheck_interval: 1s
    dcv: {method: exec, command: %[7]q, timeout: 20s}
  tencent-ov:
    type: tencent
    secret_id_env: E2E_TENCENT_ID
    secret_key_env: E2E_TENCENT_KEY
    endpoint: %[1]q
    product: 14
    company_id: "1001"
    manager_id: "2002"
    poll_interval: 1s
    review_poll_interval: 1s
    recheck_interval: 1s
    dcv: {method: delegated, zone: %[4]s}
  aliyun-dv:
    type: aliyun
    access_key_id_env: E2E_ALIYUN_ID
    access_key_secret_env: E2E_ALIYUN_SECRET
    endpoint: %[2]q
    product: digicert-free-1-free
    contact_name: PKI Team
    contact_phone: "13800000000"
    contact_email: pki@brands.test
    poll_interval: 1s
    review_poll_interval: 1s
    dcv: *zone
  aliyun-dv-exec:
    type: aliyun
    access_key_id_env: E2E_ALIYUN_ID
    access_key_secret_env: E2E_ALIYUN_SECRET
    endpoint: %[2]q
    product: digicert-free-1-free
    poll_interval: 1s
    review_poll_interval: 1s
    dcv: {method: exec, command: %[7]q}
  aliyun-ov:
    type: aliyun
    access_key_id_env: E2E_ALIYUN_ID
    access_key_secret_env: E2E_ALIYUN_SECRET
    endpoint: %[2]q
    product: geotrust-ov-1-personal
    company_name: Example Brands Ltd
    poll_interval: 1s
    review_poll_interval: 1s
    dcv: {method: delegated, zone: %[4]s}
  aliyun-starter:
    type: aliyun
    access_key_id_env: E2E_ALIYUN_ID
    access_key_secret_env: E2E_ALIYUN_SECRET
    endpoint: %[2]q
    product: geotrust-dv-1-starter
    poll_interval: 1s
    dcv: {method: delegated, zone: %[4]s}
  digicert-dv:
    type: digicert
    api_key_env: E2E_DIGICERT_KEY
    base_url: %[3]q
    product: ssl_dv_geotrust
    skip_approval: true
    poll_interval: 1s
    review_poll_interval: 1s
    dcv: {method: delegated, zone: %[4]s}
  digicert-dv-exec:
    type: digicert
    api_key_env: E2E_DIGICERT_KEY
    base_url: %[3]q
    product: ssl_dv_geotrust
    skip_approval: true
    poll_interval: 1s
    dcv: {method: exec, command: %[7]q}
  digicert-ov:
    type: digicert
    api_key_env: E2E_DIGICERT_KEY
    base_url: %[3]q
    product: ssl_basic
    organization_id: 112233
    skip_approval: true
    poll_interval: 1s
    review_poll_interval: 1s
    dcv: {method: delegated, zone: %[4]s}
rate_limits: {disabled: true}
`, f.tencent.URL(), f.aliyun.URL(), f.digicert.URL(), brandsZone, zoneListen, resolver, script)
}

// TestCommercialBrands: per commercial type, a DV order through the
// delegated zone and through the exec script, an OV order held for review
// that a re-running client collects, refusals the client sees, and
// revocation at the brand.
func TestCommercialBrands(t *testing.T) {
	redisURL := testredis.Start(t)
	publicDNS := validationtest.NewDNSServer(t)
	zonePort := freeUDPTCPPort(t)
	zoneAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(zonePort))
	fwd := startDNSForwarder(t, publicDNS.Addr(), brandsZone, zoneAddr)
	fakes := brandFakes{
		tencent:  tencenttest.New(t, tencenttest.Options{Resolver: fwd.addr}),
		aliyun:   aliyuntest.NewServer(t, aliyuntest.Options{Resolver: fwd.addr}),
		digicert: digicerttest.New(t, digicerttest.Options{Resolver: fwd.addr}),
	}

	// The exec method: the operator's script writes into the public DNS
	// through its provider's HTTP API (here a loopback endpoint) with curl.
	hook := startTXTHook(t, publicDNS)
	script := writeScript(t, filepath.Join(t.TempDir(), "dns-hook"), `case "$1" in
present) op=add ;;
cleanup) op=remove ;;
*) echo "unknown action $1" >&2; exit 2 ;;
esac
[ "$3" = TXT ] || { echo "only TXT records, not $3" >&2; exit 1; }
`+hook.curlCommand("$op", "$2", "$4"))

	cfgPath := filepath.Join(t.TempDir(), "acmegw.yaml")
	if err := os.WriteFile(cfgPath, []byte(brandsConfig(fakes, zoneAddr, fwd.addr, script)), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, gatewayOptions{
		RedisURL: redisURL,
		DNS:      publicDNS,
		Args:     []string{"--config", cfgPath},
		Env: []string{
			"E2E_TENCENT_ID=" + fakes.tencent.SecretID(), "E2E_TENCENT_KEY=" + fakes.tencent.SecretKey(),
			"E2E_ALIYUN_ID=" + aliyuntest.DefaultAccessKeyID, "E2E_ALIYUN_SECRET=" + aliyuntest.DefaultAccessKeySecret,
			"E2E_DIGICERT_KEY=" + fakes.digicert.APIKey(),
		},
	})
	waitForLog(t, gw, "delegated DCV zone serving", "zone="+brandsZone, "addr="+zoneAddr, "records=redis")

	// delegate is the domain owner's one-time CNAME into the zone.
	delegate := func(name string) string {
		rec := "_dnsauth." + name
		publicDNS.AddCNAME(rec+".", rec+"."+brandsZone+".")
		return rec
	}
	// viaZone checks that the brand's check reached the zone, and that the
	// owner's DNS never held a TXT record at the brand's name.
	viaZone := func(t *testing.T, name string) {
		t.Helper()
		rec := "_dnsauth." + name
		if n := fwd.zoneQueried(rec + "." + brandsZone); n == 0 {
			t.Errorf("nobody asked the delegated zone for %s.%s", rec, brandsZone)
		}
		if slices.ContainsFunc(hook.Added(), func(s string) bool { return strings.HasPrefix(s, rec+" ") }) {
			t.Errorf("the exec script published %s, which the zone should have answered", rec)
		}
	}
	// viaExec checks that the script published the brand's record in the
	// public DNS and removed it once the brand was done.
	viaExec := func(t *testing.T, name string) {
		t.Helper()
		rec := "_dnsauth." + name + " "
		if !slices.ContainsFunc(hook.Added(), func(s string) bool { return strings.HasPrefix(s, rec) }) {
			t.Errorf("the exec script never published %s; it published %v", rec, hook.Added())
		}
		eventually(t, 10*time.Second, "the exec script's cleanup of "+rec, func() bool {
			return slices.ContainsFunc(hook.Removed(), func(s string) bool { return strings.HasPrefix(s, rec) })
		})
	}
	// dvOrder obtains a DV certificate for name from profile.
	dvOrder := func(t *testing.T, profile, name string, roots *x509.CertPool) (*brandClient, *certificate.Resource, *x509.Certificate) {
		t.Helper()
		c := newBrandClient(t, gw, 60*time.Second, nil)
		csr, key := brandCSR(t, name)
		res, err := c.obtain(csr, profile)
		if err != nil {
			t.Fatalf("lego ObtainForCSR %s from %s: %v", name, profile, err)
		}
		return c, res, checkBrandChain(t, gw, res, roots, name, key)
	}
	// ovOrder finalizes an OV order with a client that gives up after a few
	// seconds, shows the order stays processing (with Retry-After) while
	// the brand reviews, calls approve, and has the same client re-run with
	// the same CSR: it gets the same order back, and the certificate.
	ovOrder := func(t *testing.T, profile, name string, roots *x509.CertPool, pendingAtBrand func() bool, approve func()) {
		t.Helper()
		delegate(name)
		c1 := newBrandClient(t, gw, 4*time.Second, nil)
		csr, key := brandCSR(t, name)
		if _, err := c1.obtain(csr, profile); err == nil {
			t.Fatal("an OV order under review was issued without approval")
		}
		last := c1.rec.last(t)
		if last.Status != "processing" {
			t.Fatalf("the client gave up on an order %s, want processing (%+v)", last.Status, last)
		}
		if ra, err := strconv.Atoi(last.RetryAfter); err != nil || ra < 1 {
			t.Errorf("processing order without a usable Retry-After: %q", last.RetryAfter)
		}
		orderURL := last.URL
		time.Sleep(3 * time.Second) // several polls of the brand
		if !pendingAtBrand() {
			t.Fatal("the order is not awaiting review at the brand")
		}
		x := legoXClient(t, gw, c1.user.key.(crypto.Signer), c1.user.reg.URI)
		if o, err := x.GetOrder(context.Background(), orderURL); err != nil || o.Status != "processing" {
			t.Fatalf("order before approval: %+v, %v; want processing", o, err)
		}
		approve()

		c2 := newBrandClient(t, gw, 60*time.Second, c1)
		res, err := c2.obtain(csr, profile)
		if err != nil {
			t.Fatalf("re-run after approval: %v", err)
		}
		seen := c2.rec.seen()
		if len(seen) == 0 || seen[0].URL != orderURL || (seen[0].Status != "processing" && seen[0].Status != "valid") {
			t.Errorf("the re-run's newOrder got %+v, want the first run's order %s back", seen, orderURL)
		}
		checkBrandChain(t, gw, res, roots, name, key)
	}
	// refusedWhileWaiting finalizes with a waiting client, makes the brand
	// refuse (reject) once the order is at the brand, and checks that the
	// client's order turns invalid with the brand's reason. (lego keeps
	// polling an invalid order until its timeout and then reports the
	// order's error, hence the short timeout.)
	refusedWhileWaiting := func(t *testing.T, profile, name string, atBrand func() bool, reject func(), wantType, wantDetail string) {
		t.Helper()
		delegate(name)
		c := newBrandClient(t, gw, 10*time.Second, nil)
		csr, _ := brandCSR(t, name)
		done := make(chan error, 1)
		go func() {
			_, err := c.obtain(csr, profile)
			done <- err
		}()
		eventually(t, 30*time.Second, "the order reaching the brand", atBrand)
		reject()
		var err error
		select {
		case err = <-done:
		case <-time.After(60 * time.Second):
			t.Fatal("the client did not see the refusal within 60 s")
		}
		checkRefusal(t, c, err, wantType, wantDetail)
	}

	tencentRoots := x509.NewCertPool()
	tencentRoots.AppendCertsFromPEM(fakes.tencent.RootPEM())
	tencentCert := func(name string) (tencenttest.Certificate, bool) {
		for _, id := range slices.Backward(fakes.tencent.CertificateIDs()) {
			if c, ok := fakes.tencent.Certificate(id); ok && c.CommonName == name {
				return c, true
			}
		}
		return tencenttest.Certificate{}, false
	}
	t.Run("tencent", func(t *testing.T) {
		var dv *certificate.Resource
		var dvClient *brandClient
		t.Run("dv via delegated zone", func(t *testing.T) {
			name := "dv.tencent.brands.test"
			delegate(name)
			dvClient, dv, _ = dvOrder(t, "tencent-dv", name, tencentRoots)
			viaZone(t, name)
			if c, _ := tencentCert(name); c.Status != tencenttest.StatusIssued || c.ProductID != 104 || c.ContactEmail != "pki@brands.test" {
				t.Errorf("Tencent's certificate: status %d, product %d, contact %q", c.Status, c.ProductID, c.ContactEmail)
			}
		})
		t.Run("dv via exec", func(t *testing.T) {
			name := "exec.tencent.brands.test"
			dvOrder(t, "tencent-dv-exec", name, tencentRoots)
			viaExec(t, name)
		})
		t.Run("ov held for review", func(t *testing.T) {
			name := "ov.tencent.brands.test"
			ovOrder(t, "tencent-ov", name, tencentRoots, func() bool {
				c, ok := tencentCert(name)
				return ok && c.Status == tencenttest.StatusReviewing && !c.Approved && c.CompanyID == "1001"
			}, func() {
				c, _ := tencentCert(name)
				fakes.tencent.Approve(c.ID)
			})
		})
		t.Run("quota exceeded", func(t *testing.T) {
			fakes.tencent.FailNext("CreateCertificate", "FailedOperation.ExceedsFreeLimit", "The number of free certificates applied for has reached the limit.")
			name := "quota.tencent.brands.test"
			delegate(name)
			c := newBrandClient(t, gw, 30*time.Second, nil)
			csr, _ := brandCSR(t, name)
			_, err := c.obtain(csr, "tencent-dv")
			checkRefusal(t, c, err, "rateLimited", "free certificates applied for has reached the limit")
		})
		t.Run("review rejected", func(t *testing.T) {
			name := "rejected.tencent.brands.test"
			refusedWhileWaiting(t, "tencent-ov", name, func() bool {
				c, ok := tencentCert(name)
				return ok && c.Status == tencenttest.StatusReviewing
			}, func() {
				c, _ := tencentCert(name)
				fakes.tencent.Reject(c.ID, "organization information could not be verified")
			}, "rejectedIdentifier", "organization information could not be verified")
		})
		t.Run("revocation reaches Tencent", func(t *testing.T) {
			if dv == nil {
				t.Skip("no DV certificate")
			}
			revokeAtBrand(t, dvClient, dv, func() bool {
				c, _ := tencentCert("dv.tencent.brands.test")
				return c.Status == tencenttest.StatusRevoked
			})
		})
	})

	aliyunOrder := func(name string) (aliyuntest.Order, bool) {
		for _, o := range slices.Backward(fakes.aliyun.Orders()) {
			if len(o.Names) > 0 && o.Names[0] == name {
				return o, true
			}
		}
		return aliyuntest.Order{}, false
	}
	t.Run("aliyun", func(t *testing.T) {
		roots := fakes.aliyun.Roots()
		var dv *certificate.Resource
		var dvClient *brandClient
		t.Run("dv via delegated zone", func(t *testing.T) {
			name := "dv.aliyun.brands.test"
			delegate(name)
			dvClient, dv, _ = dvOrder(t, "aliyun-dv", name, roots)
			viaZone(t, name)
			if o, _ := aliyunOrder(name); o.State != aliyuntest.StateCertificate || o.Product != "digicert-free-1-free" || o.Email != "pki@brands.test" {
				t.Errorf("Alibaba's order: state %s, product %s, contact %q", o.State, o.Product, o.Email)
			}
		})
		t.Run("dv via exec", func(t *testing.T) {
			name := "exec.aliyun.brands.test"
			dvOrder(t, "aliyun-dv-exec", name, roots)
			viaExec(t, name)
		})
		t.Run("ov held for review", func(t *testing.T) {
			name := "ov.aliyun.brands.test"
			ovOrder(t, "aliyun-ov", name, roots, func() bool {
				o, ok := aliyunOrder(name)
				return ok && o.State == aliyuntest.StateProcess && !o.Approved && o.Company == "Example Brands Ltd"
			}, func() {
				o, _ := aliyunOrder(name)
				if err := fakes.aliyun.Approve(o.ID); err != nil {
					t.Fatal(err)
				}
			})
		})
		t.Run("quota exceeded", func(t *testing.T) {
			fakes.aliyun.SetQuota("geotrust-dv-1-starter", 0)
			name := "quota.aliyun.brands.test"
			delegate(name)
			c := newBrandClient(t, gw, 30*time.Second, nil)
			csr, _ := brandCSR(t, name)
			_, err := c.obtain(csr, "aliyun-starter")
			checkRefusal(t, c, err, "rateLimited", "quota for this product is used up")
		})
		t.Run("review rejected", func(t *testing.T) {
			name := "rejected.aliyun.brands.test"
			refusedWhileWaiting(t, "aliyun-ov", name, func() bool {
				_, ok := aliyunOrder(name)
				return ok
			}, func() {
				o, _ := aliyunOrder(name)
				if err := fakes.aliyun.Reject(o.ID, "the business licence does not match the company name"); err != nil {
					t.Error(err)
				}
			}, "rejectedIdentifier", "the business licence does not match the company name")
		})
		t.Run("revocation reaches Alibaba", func(t *testing.T) {
			if dv == nil {
				t.Skip("no DV certificate")
			}
			revokeAtBrand(t, dvClient, dv, func() bool {
				o, _ := aliyunOrder("dv.aliyun.brands.test")
				return o.State == aliyuntest.StateRevoked
			})
		})
	})

	digicertOrder := func(name string) (digicerttest.Order, bool) {
		for _, id := range slices.Backward(fakes.digicert.Orders()) {
			if o, ok := fakes.digicert.Order(id); ok && o.CommonName == name {
				return o, true
			}
		}
		return digicerttest.Order{}, false
	}
	t.Run("digicert", func(t *testing.T) {
		roots := brandRoots(fakes.digicert.Root())
		var dv *certificate.Resource
		var dvClient *brandClient
		var dvLeaf *x509.Certificate
		t.Run("dv via delegated zone", func(t *testing.T) {
			name := "dv.digicert.brands.test"
			delegate(name)
			dvClient, dv, dvLeaf = dvOrder(t, "digicert-dv", name, roots)
			viaZone(t, name)
			if o, _ := digicertOrder(name); o.Status != "issued" || o.Product != "ssl_dv_geotrust" || len(o.Validated) == 0 {
				t.Errorf("DigiCert's order: status %s, product %s, validated %v", o.Status, o.Product, o.Validated)
			}
		})
		t.Run("dv via exec", func(t *testing.T) {
			name := "exec.digicert.brands.test"
			dvOrder(t, "digicert-dv-exec", name, roots)
			viaExec(t, name)
		})
		t.Run("ov held for review", func(t *testing.T) {
			name := "ov.digicert.brands.test"
			ovOrder(t, "digicert-ov", name, roots, func() bool {
				o, ok := digicertOrder(name)
				return ok && o.Status == "needs_approval" && o.Organization == 112233
			}, func() {
				o, _ := digicertOrder(name)
				if err := fakes.digicert.Approve(o.ID); err != nil {
					t.Fatal(err)
				}
			})
		})
		t.Run("review rejected", func(t *testing.T) {
			name := "rejected.digicert.brands.test"
			refusedWhileWaiting(t, "digicert-ov", name, func() bool {
				o, ok := digicertOrder(name)
				return ok && o.Status == "needs_approval"
			}, func() {
				o, _ := digicertOrder(name)
				if err := fakes.digicert.Reject(o.ID, "organization validation failed: registration number unknown"); err != nil {
					t.Error(err)
				}
			}, "rejectedIdentifier", "organization validation failed: registration number unknown")
		})
		t.Run("revocation reaches DigiCert", func(t *testing.T) {
			if dv == nil {
				t.Skip("no DV certificate")
			}
			revokeAtBrand(t, dvClient, dv, func() bool {
				o, _ := digicertOrder("dv.digicert.brands.test")
				return o.Status == "revoked"
			})
			serial := fmt.Sprintf("%x", dvLeaf.SerialNumber)
			if !slices.ContainsFunc(fakes.digicert.Revocations(), func(r digicerttest.Revocation) bool {
				return strings.EqualFold(strings.TrimLeft(r.Serial, "0"), serial) && r.Reason == "superseded" && r.Approved
			}) {
				t.Errorf("DigiCert's revocations %+v do not include serial %s (superseded, approved)", fakes.digicert.Revocations(), serial)
			}
		})
	})
}

// checkRefusal checks that the client's order ended invalid with the
// brand's reason in its error, as the client received it.
func checkRefusal(t *testing.T, c *brandClient, err error, wantType, wantDetail string) {
	t.Helper()
	if err == nil {
		t.Fatal("the order was issued, want it refused")
	}
	if !strings.Contains(err.Error(), "invalid order") || !strings.Contains(err.Error(), wantDetail) {
		t.Errorf("client's error %q, want an invalid order mentioning %q", err, wantDetail)
	}
	if wantType != "" && legoProblem(err) != wantType {
		t.Errorf("problem type %q, want %s", legoProblem(err), wantType)
	}
	last := c.rec.last(t)
	if last.Status != "invalid" || !strings.Contains(last.Detail, wantDetail) {
		t.Errorf("last order the client saw: %+v, want invalid with %q", last, wantDetail)
	}
}

// revokeAtBrand revokes res through the gateway with lego and waits for the
// brand to show it revoked; revoking again is alreadyRevoked.
func revokeAtBrand(t *testing.T, c *brandClient, res *certificate.Resource, revokedAtBrand func() bool) {
	t.Helper()
	reason := uint(4) // superseded
	if err := c.Certificate.RevokeWithReason(res.Certificate, &reason); err != nil {
		t.Fatalf("revoking through acmegw: %v", err)
	}
	eventually(t, 30*time.Second, "the brand showing the certificate revoked", revokedAtBrand)
	if err := c.Certificate.RevokeWithReason(res.Certificate, &reason); legoProblem(err) != "alreadyRevoked" {
		t.Errorf("revoking again: %v, want alreadyRevoked", err)
	}
}

// TestCommercialBrandConfigErrors: a commercial brand the gateway cannot
// build stops it at start with a message naming what to fix.
func TestCommercialBrandConfigErrors(t *testing.T) {
	base := `brands:
  local: {type: local}
%s
profiles:
  default: {brand: local}
`
	for _, c := range []struct {
		name, brands string
		env          []string
		want         string
	}{
		{"secret unset", `  tc: {type: tencent, secret_id_env: E2E_UNSET_ID, secret_key_env: E2E_UNSET_KEY, product: 104, contact_email: a@b.test, dcv: {method: prevalidated}}`,
			nil, "environment variable E2E_UNSET_ID (named by secret_id_env) is empty or unset"},
		{"no dcv method", `  dc: {type: digicert, api_key_env: E2E_SET, product: ssl_basic}`,
			[]string{"E2E_SET=x"}, `brand "dc": dcv.method is required`},
		{"key of another type", `  al: {type: aliyun, access_key_id_env: E2E_SET, access_key_secret_env: E2E_SET, product: digicert-free-1-free, api_key_env: E2E_SET, dcv: {method: prevalidated}}`,
			[]string{"E2E_SET=x"}, `key "api_key_env" does not apply to type aliyun`},
		{"unknown dcv setting", `  dc: {type: digicert, api_key_env: E2E_SET, product: ssl_basic, dcv: {method: exec, command: /bin/true, zone: x.test}}`,
			[]string{"E2E_SET=x"}, `unknown setting "zone"`},
		{"one zone defined twice", `  a: {type: digicert, api_key_env: E2E_SET, product: ssl_basic, dcv: {method: delegated, zone: z.test, ns: [ns1.z.test], listen: "127.0.0.1:0"}}
  b: {type: digicert, api_key_env: E2E_SET, product: ssl_basic, dcv: {method: delegated, zone: z.test, ns: [ns2.z.test], listen: "127.0.0.1:0"}}`,
			[]string{"E2E_SET=x"}, `brands "a" and "b" define the delegated zone z.test differently`},
		{"tencent product", `  tc: {type: tencent, secret_id_env: E2E_SET, secret_key_env: E2E_SET, product: trustasia, contact_email: a@b.test, dcv: {method: prevalidated}}`,
			[]string{"E2E_SET=x"}, `product "trustasia" is not a Tencent ProductId number`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "acmegw.yaml")
			if err := os.WriteFile(path, []byte(fmt.Sprintf(base, c.brands)), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, "serve", "--config", path, "--listen", "127.0.0.1:0", "--data-dir", dir)
			cmd.Env = append(os.Environ(), "ACMEGW_REDIS=", "ACMEGW_CONFIG=")
			cmd.Env = append(cmd.Env, c.env...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || !strings.Contains(string(out), c.want) {
				t.Errorf("acmegw serve: %v\n%s\nwant a failed start mentioning %q", err, out, c.want)
			}
		})
	}
}
