package main

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/lego"
	"github.com/go-acme/lego/v4/registration"

	"github.com/acmegw/acmegw/internal/testpebble"
	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/validation/validationtest"
)

// httpreqHook is the HTTP endpoint of lego's "httpreq" DNS provider, which
// the gateway's upstream brand uses to answer Pebble's dns-01 challenges:
// POST /present and /cleanup with {"fqdn": ..., "value": ...}. It writes the
// TXT records into the DNS server that Pebble and the gateway both query.
type httpreqHook struct {
	*httptest.Server
	mu    sync.Mutex
	calls []string // "present _acme-challenge.x.test." in arrival order
}

func startHTTPReqHook(t *testing.T, dns *validationtest.DNSServer) *httpreqHook {
	t.Helper()
	h := &httpreqHook{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			FQDN  string `json:"fqdn"`
			Value string `json:"value"`
		}
		if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&msg) != nil || msg.FQDN == "" || msg.Value == "" {
			http.Error(w, "want POST with {fqdn, value}", http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/present":
			dns.AddTXT(msg.FQDN, msg.Value)
		case "/cleanup":
			dns.RemoveTXT(msg.FQDN, msg.Value)
		default:
			http.NotFound(w, r)
			return
		}
		h.mu.Lock()
		h.calls = append(h.calls, strings.TrimPrefix(r.URL.Path, "/")+" "+msg.FQDN)
		h.mu.Unlock()
	}))
	t.Cleanup(h.Close)
	return h
}

// callsFor lists the calls that concerned the dns-01 record of name.
func (h *httpreqHook) callsFor(name string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, c := range h.calls {
		if strings.HasSuffix(c, " _acme-challenge."+name+".") {
			out = append(out, strings.Fields(c)[0])
		}
	}
	return out
}

// checkPebbleChain verifies a bundle the gateway handed out up to Pebble's
// root (read from its management API) and not to the gateway's own, and
// returns the leaf.
func checkPebbleChain(t *testing.T, gw *gateway, peb *testpebble.Pebble, res *certificate.Resource, name string) *x509.Certificate {
	t.Helper()
	certs, err := certcrypto.ParsePEMBundle(res.Certificate)
	if err != nil {
		t.Fatalf("parsing certificate bundle: %v", err)
	}
	if len(certs) < 2 {
		t.Fatalf("bundle has %d certificates, want the leaf and Pebble's intermediate", len(certs))
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	root, err := peb.Root(0)
	if err != nil {
		t.Fatal(err)
	}
	pebRoots := x509.NewCertPool()
	pebRoots.AddCert(root)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pebRoots, Intermediates: inter}); err != nil {
		t.Fatalf("chain does not verify to Pebble's root %q: %v", root.Subject.CommonName, err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: gw.RootPool(t), Intermediates: inter}); err == nil {
		t.Fatal("an upstream certificate verifies to the gateway's own root")
	}
	if !slices.Equal(leaf.DNSNames, []string{name}) {
		t.Errorf("leaf SANs %v, want [%s]", leaf.DNSNames, name)
	}
	key, err := certcrypto.ParsePEMPrivateKey(res.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.(crypto.Signer).Public()) {
		t.Error("leaf's public key is not the key the client generated: the gateway did not pass its CSR upstream")
	}
	if !strings.HasPrefix(res.CertURL, gw.BaseURL()+"/") {
		t.Errorf("certificate URL %q is not on the gateway", res.CertURL)
	}
	return leaf
}

// TestRouting runs the gateway on Redis with two brands, its built-in CA and
// an upstream ACME CA (a real Pebble, driven through issuer/acmeup and lego's
// httpreq DNS provider), and shows with the lego library that profiles and
// EAB entitlements pick the brand. The client only ever talks to acmegw: it
// trusts only the gateway's root, and Pebble's listener has a certificate
// from Pebble's own minica. Pebble, the gateway and the client all resolve
// through one DNS server: the client's dns-01 records prove control to the
// gateway, the gateway's (through httpreq) prove it to Pebble.
func TestRouting(t *testing.T) {
	redisURL := testredis.Start(t)
	dns := validationtest.NewDNSServer(t)
	peb := testpebble.Start(t, testpebble.Options{DNS: dns.Addr()})
	hook := startHTTPReqHook(t, dns)

	// The default profile is the upstream one, so that an EAB tenant
	// landing on local-dv without asking shows its own default at work.
	config := fmt.Sprintf(`default_profile: upstream-dv
profiles:
  local-dv: {brand: local, description: "built-in CA"}
  upstream-dv: {brand: pebble, description: "Pebble, an upstream ACME CA"}
brands:
  local: {type: local}
  pebble:
    type: acme
    directory: %q
    ca_certificates: %q
    dns_provider: httpreq
    dns_resolvers: [%q]
    skip_authoritative_check: true
eab:
  required: false
`, peb.DirURL(), peb.MinicaPath(), dns.Addr())
	cfgPath := filepath.Join(t.TempDir(), "acmegw.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, gatewayOptions{
		RedisURL: redisURL,
		DNS:      dns,
		Args:     []string{"--config", cfgPath},
		Env: []string{
			"HTTPREQ_ENDPOINT=" + hook.URL,
			"HTTPREQ_POLLING_INTERVAL=1",
			"HTTPREQ_PROPAGATION_TIMEOUT=30",
		},
	})

	// Upstream issuance takes a few seconds (the gateway's job solves
	// Pebble's challenge and polls it): give lego a minute, not 30 s.
	wait := func(c *lego.Config) { c.Certificate.Timeout = 60 * time.Second }
	newClient := func(t *testing.T) *lego.Client {
		c, _ := legoNew(t, gw, certcrypto.EC256, wait)
		legoDNS01(t, c, gw)
		return c
	}

	t.Run("directory", func(t *testing.T) {
		resp, err := gw.HTTPClient(t).Get(gw.DirURL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var dir struct {
			Meta struct {
				Profiles                map[string]string `json:"profiles"`
				ExternalAccountRequired bool              `json:"externalAccountRequired"`
			} `json:"meta"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"local-dv": "built-in CA", "upstream-dv": "Pebble, an upstream ACME CA"}
		if len(dir.Meta.Profiles) != 2 || dir.Meta.Profiles["local-dv"] != want["local-dv"] || dir.Meta.Profiles["upstream-dv"] != want["upstream-dv"] {
			t.Errorf("meta.profiles %v, want %v", dir.Meta.Profiles, want)
		}
		if dir.Meta.ExternalAccountRequired {
			t.Error("externalAccountRequired with eab.required false")
		}
	})

	t.Run("local-dv is the built-in CA", func(t *testing.T) {
		name := "local.routing.test"
		res := legoObtain(t, newClient(t), certificate.ObtainRequest{Domains: []string{name}, Profile: "local-dv"})
		leaf := legoCheckChain(t, gw, res, name)
		if _, err := peb.CertStatus(leaf.SerialNumber); !errors.Is(err, testpebble.ErrNotFound) {
			t.Errorf("Pebble knows the local certificate's serial: %v", err)
		}
		if calls := hook.callsFor(name); len(calls) != 0 {
			t.Errorf("the local brand wrote upstream challenge records: %v", calls)
		}
	})

	var upstream *certificate.Resource
	var upstreamClient *lego.Client
	t.Run("upstream-dv is Pebble", func(t *testing.T) {
		name := "upstream.routing.test"
		upstreamClient = newClient(t)
		upstream = legoObtain(t, upstreamClient, certificate.ObtainRequest{Domains: []string{name}, Profile: "upstream-dv"})
		leaf := checkPebbleChain(t, gw, peb, upstream, name)
		st, err := peb.CertStatus(leaf.SerialNumber)
		if err != nil || st.Status != "Valid" {
			t.Fatalf("Pebble's status of the certificate: %+v %v", st, err)
		}
		if calls := hook.callsFor(name); !slices.Equal(calls, []string{"present", "cleanup"}) {
			t.Errorf("httpreq calls for %s: %v, want present then cleanup", name, calls)
		}
	})

	t.Run("no profile is the default, upstream-dv", func(t *testing.T) {
		name := "default.routing.test"
		res := legoObtain(t, newClient(t), certificate.ObtainRequest{Domains: []string{name}})
		checkPebbleChain(t, gw, peb, res, name)
	})

	t.Run("EAB tenant limited to local-dv", func(t *testing.T) {
		kid, mac := eabAdd(t, "--redis", redisURL, "--profiles", "local-dv")
		c, user := legoClient(t, gw, nil, certcrypto.EC256, false, wait)
		reg, err := c.Registration.RegisterWithExternalAccountBinding(registration.RegisterEABOptions{
			TermsOfServiceAgreed: true, Kid: kid, HmacEncoded: base64.RawURLEncoding.EncodeToString(mac),
		})
		if err != nil {
			t.Fatalf("registration with EAB key %s: %v", kid, err)
		}
		user.reg = reg
		legoDNS01(t, c, gw)

		name := "tenant.routing.test"
		_, err = c.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{name}, Profile: "upstream-dv", Bundle: true})
		if legoProblem(err) != "unauthorized" || !strings.Contains(err.Error(), "upstream-dv") {
			t.Fatalf("tenant ordering upstream-dv: %v, want unauthorized naming the profile", err)
		}
		if calls := hook.callsFor(name); len(calls) != 0 {
			t.Errorf("a refused order reached the upstream: %v", calls)
		}
		res := legoObtain(t, c, certificate.ObtainRequest{Domains: []string{name}})
		legoCheckChain(t, gw, res, name)
	})

	t.Run("revoking upstream reaches Pebble", func(t *testing.T) {
		if upstream == nil {
			t.Skip("no upstream certificate")
		}
		leaf, err := x509.ParseCertificate(legoLeafDER(t, upstream))
		if err != nil {
			t.Fatal(err)
		}
		reason := uint(4) // superseded
		if err := upstreamClient.Certificate.RevokeWithReason(upstream.Certificate, &reason); err != nil {
			t.Fatalf("revoking through acmegw: %v", err)
		}
		// The gateway may revoke upstream in the request or in a job.
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, err := peb.CertStatus(leaf.SerialNumber)
			if err != nil {
				t.Fatal(err)
			}
			if st.Revoked() {
				if st.Reason == nil || *st.Reason != reason {
					t.Errorf("Pebble revoked with reason %v, want %d", st.Reason, reason)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Pebble still says %q 30 s after the gateway accepted the revocation", st.Status)
			}
			time.Sleep(100 * time.Millisecond)
		}
		err = upstreamClient.Certificate.RevokeWithReason(upstream.Certificate, &reason)
		if legoProblem(err) != "alreadyRevoked" {
			t.Errorf("revoking again: %v, want alreadyRevoked", err)
		}
	})
}
