package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// certbot drives the Debian certbot (python-acme) against one gateway, with
// all of its state in temp dirs.
type certbot struct {
	gw                      *gateway
	bin                     string
	config, work, logs, dir string
}

func newCertbot(t *testing.T, gw *gateway) *certbot {
	t.Helper()
	dir := t.TempDir()
	c := &certbot{
		gw:     gw,
		bin:    requireCommand(t, "certbot"),
		dir:    dir,
		config: filepath.Join(dir, "config"),
		work:   filepath.Join(dir, "work"),
		logs:   filepath.Join(dir, "logs"),
	}
	t.Cleanup(func() {
		if t.Failed() {
			logTree(t, c.logs)
		}
	})
	return c
}

func (c *certbot) cmd(args ...string) clientRun {
	return clientRun{
		Dir:  c.dir,
		Path: c.bin,
		Env: []string{
			"REQUESTS_CA_BUNDLE=" + c.gw.RootPath,
			"HOME=" + c.dir,
			"XDG_CONFIG_HOME=" + filepath.Join(c.dir, "xdg"),
		},
		Args: append(args,
			"--server", c.gw.DirURL,
			"--config-dir", c.config,
			"--work-dir", c.work,
			"--logs-dir", c.logs,
			"--non-interactive",
		),
	}
}

func (c *certbot) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return c.cmd(args...).run(t)
}

func (c *certbot) must(t *testing.T, args ...string) string {
	t.Helper()
	return c.cmd(args...).mustRun(t, nil)
}

// mustFail runs certbot expecting it to fail, and returns its console output
// followed by its debug log. Debian's certbot 2.1 with its josepy reports
// every ACME error as "AttributeError: can't set attribute" on the console
// (certbot re-raises the immutable acme.messages.Error), so the server's
// problem document is only in the log.
func (c *certbot) mustFail(t *testing.T, args ...string) string {
	t.Helper()
	if err := os.RemoveAll(c.logs); err != nil {
		t.Fatal(err)
	}
	out, err := c.run(t, args...)
	logs, _ := os.ReadFile(filepath.Join(c.logs, "letsencrypt.log"))
	if err == nil {
		t.Fatalf("certbot %s succeeded, want a failure:\n%s", strings.Join(args, " "), out)
	}
	return out + "\n" + string(logs)
}

func (c *certbot) live(name, file string) string {
	return filepath.Join(c.config, "live", name, file)
}

// standalone is certbot's own http-01 responder on the port the gateway checks.
func (c *certbot) standalone() []string {
	return []string{"--standalone", "--preferred-challenges", "http",
		"--http-01-port", strconv.Itoa(c.gw.HTTPPort), "--http-01-address", "127.0.0.1"}
}

var accountURLRE = regexp.MustCompile(`Account URL: (\S+)`)

// TestCertbot runs certbot 2.x end to end: registration, http-01 issuance with
// its standalone server, renewal, revocation, dns-01 through manual hooks,
// account update and deactivation.
func TestCertbot(t *testing.T) {
	requireCommand(t, "certbot")
	forEachStore(t, func(t *testing.T, gw *gateway) {
		t.Run("http01-renew-revoke", func(t *testing.T) {
			const name = "www.certbot.test"
			gw.DNS.AddA(name, "127.0.0.1")
			cb := newCertbot(t, gw)

			cb.must(t, append([]string{"certonly", "--agree-tos", "-m", "t@example.com", "--no-eff-email",
				"-d", name}, cb.standalone()...)...)
			first := verifyIssued(t, gw, cb.live(name, "fullchain.pem"), []string{name})
			verifyIssued(t, gw, cb.live(name, "cert.pem"), []string{name}, cb.live(name, "chain.pem"))

			// Forced renewal of the lineage from its renewal configuration (the
			// standalone flags are repeated so the port cannot come from elsewhere).
			cb.must(t, append([]string{"renew", "--force-renewal", "--no-random-sleep-on-renew",
				"--cert-name", name}, cb.standalone()...)...)
			renewed := verifyIssued(t, gw, cb.live(name, "fullchain.pem"), []string{name})
			if renewed.SerialNumber.Cmp(first.SerialNumber) == 0 {
				t.Fatalf("renew --force-renewal kept serial %x", first.SerialNumber)
			}
			if target, err := os.Readlink(cb.live(name, "cert.pem")); err != nil || !strings.HasSuffix(target, "cert2.pem") {
				t.Fatalf("live cert.pem after renewal points to %q (%v), want …/cert2.pem", target, err)
			}

			// Revoke with the account key, keeping the files for a second attempt.
			cb.must(t, "revoke", "--cert-path", cb.live(name, "cert.pem"), "--reason", "keycompromise",
				"--no-delete-after-revoke")
			waitForLog(t, gw, `msg="certificate revoked"`, "serial="+serialHexOf(renewed), "reason=keyCompromise")

			// A second revocation, signed this time with the certificate's own
			// key (the jwk form of RFC 8555 §7.6), must be refused as already revoked.
			out := cb.mustFail(t, "revoke", "--cert-path", cb.live(name, "cert.pem"),
				"--key-path", cb.live(name, "privkey.pem"), "--reason", "superseded", "--no-delete-after-revoke")
			if !strings.Contains(out, "urn:ietf:params:acme:error:alreadyRevoked") {
				t.Fatalf("second revoke failed without alreadyRevoked:\n%s", out)
			}

			// The first certificate is still valid; revoke it by its key, and let certbot delete the lineage.
			cb.must(t, "revoke", "--cert-path", filepath.Join(cb.config, "archive", name, "cert1.pem"),
				"--key-path", filepath.Join(cb.config, "archive", name, "privkey1.pem"), "--delete-after-revoke")
			waitForLog(t, gw, `msg="certificate revoked"`, "serial="+serialHexOf(first), "reason=unspecified")
			if _, err := os.Stat(cb.live(name, "cert.pem")); !os.IsNotExist(err) {
				t.Fatalf("certbot kept %s after --delete-after-revoke (%v)", cb.live(name, "cert.pem"), err)
			}
		})

		t.Run("dns01-manual-hooks", func(t *testing.T) {
			const name = "dns.certbot.test"
			hook := startTXTHook(t, gw.DNS)
			cb := newCertbot(t, gw)
			auth := writeScript(t, filepath.Join(cb.dir, "auth.sh"),
				hook.curlCommand("add", "_acme-challenge.$CERTBOT_DOMAIN", "$CERTBOT_VALIDATION"))
			cleanup := writeScript(t, filepath.Join(cb.dir, "cleanup.sh"),
				hook.curlCommand("remove", "_acme-challenge.$CERTBOT_DOMAIN", "$CERTBOT_VALIDATION"))
			dnsArgs := []string{"--manual", "--preferred-challenges", "dns",
				"--manual-auth-hook", auth, "--manual-cleanup-hook", cleanup,
				"-d", name, "-d", "*." + name, "--key-type", "rsa", "--rsa-key-size", "3072"}

			cb.must(t, append([]string{"certonly", "--agree-tos", "-m", "t@example.com", "--no-eff-email"}, dnsArgs...)...)
			first := verifyIssued(t, gw, cb.live(name, "fullchain.pem"), []string{name, "any." + name})
			added := hook.Added()
			if len(added) != 2 || !strings.HasPrefix(added[0], "_acme-challenge."+name+" ") ||
				!strings.HasPrefix(added[1], "_acme-challenge."+name+" ") || added[0] == added[1] {
				t.Fatalf("auth hook published %q, want two distinct values for _acme-challenge.%s", added, name)
			}
			if removed := hook.Removed(); !sameSet(removed, added) {
				t.Fatalf("cleanup hook withdrew %q, want %q", removed, added)
			}

			// certonly --force-renewal on the same lineage (the hooks run again
			// unless the gateway reuses the account's valid authorizations).
			cb.must(t, append([]string{"certonly", "--force-renewal", "--cert-name", name}, dnsArgs...)...)
			second := verifyIssued(t, gw, cb.live(name, "fullchain.pem"), []string{name, "other." + name})
			if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
				t.Fatalf("certonly --force-renewal kept serial %x", first.SerialNumber)
			}
			cb.must(t, "revoke", "--cert-name", name, "--reason", "cessationofoperation", "--delete-after-revoke")
			waitForLog(t, gw, `msg="certificate revoked"`, "serial="+serialHexOf(second), "reason=cessationOfOperation")
		})

		t.Run("register-update-unregister", func(t *testing.T) {
			cb := newCertbot(t, gw)
			cb.must(t, "register", "--agree-tos", "-m", "t@example.com", "--no-eff-email")
			out := cb.must(t, "show_account")
			m := accountURLRE.FindStringSubmatch(out)
			if m == nil || !strings.HasPrefix(m[1], gw.BaseURL()+"/acme/acct/") || !strings.Contains(out, "t@example.com") {
				t.Fatalf("show_account after register:\n%s", out)
			}
			acctURL := m[1]

			cb.must(t, "update_account", "-m", "u@example.com,v@example.com")
			out = cb.must(t, "show_account")
			if !strings.Contains(out, "u@example.com") || !strings.Contains(out, "v@example.com") || strings.Contains(out, "t@example.com") {
				t.Fatalf("show_account after update_account:\n%s", out)
			}

			// Keep the account key: after unregister certbot forgets it locally,
			// and only the server can still say the account is deactivated.
			accounts := filepath.Join(cb.config, "accounts")
			backup := filepath.Join(cb.dir, "accounts-backup")
			if err := os.CopyFS(backup, os.DirFS(accounts)); err != nil {
				t.Fatal(err)
			}
			cb.must(t, "unregister")
			waitForLog(t, gw, `msg="account deactivated"`, "account="+filepath.Base(acctURL))
			if out, err := cb.run(t, "show_account"); err == nil {
				t.Fatalf("show_account found an account after unregister:\n%s", out)
			}

			if err := os.RemoveAll(accounts); err != nil {
				t.Fatal(err)
			}
			if err := os.CopyFS(accounts, os.DirFS(backup)); err != nil {
				t.Fatal(err)
			}
			out = cb.mustFail(t, "show_account")
			if !strings.Contains(out, "urn:ietf:params:acme:error:unauthorized") || !strings.Contains(out, "deactivated") {
				t.Fatalf("show_account with the deactivated account's key: want the server to refuse it as deactivated:\n%s", out)
			}
		})
	})
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
