package dcv_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer/dcv"
)

// script writes an executable shell script into a temp directory.
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dns-hook.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExecPresentCleanup(t *testing.T) {
	log := filepath.Join(t.TempDir(), "calls.log")
	// One line per call: the arguments, '|'-separated so that a value with
	// a space shows as one argument, then the extra environment.
	cmd := script(t, `printf '%s|' "$@" >> "$CALLS_LOG"; printf '%s %s\n' "$ACMEGW_DCV_DOMAIN" "$EXTRA" >> "$CALLS_LOG"`)
	p, err := dcv.NewExec(dcv.ExecConfig{Command: cmd, Env: []string{"CALLS_LOG=" + log, "EXTRA=from-config"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Method() != "dns-provider" {
		t.Errorf("Method = %q", p.Method())
	}
	rec := dcv.Record{Domain: "*.Example.com", Name: "_DNSAuth.example.com.", Type: "txt", Value: "tok with space; $(rm -rf /)"}
	cn := dcv.Record{Domain: "example.com", Name: "x7k2.example.com", Type: "CNAME", Value: "dcv.digicert.com."}
	ctx := t.Context()
	for _, step := range []func() error{
		func() error { return p.Publish(ctx, rec) },
		func() error { return p.Publish(ctx, cn) },
		func() error { return p.Unpublish(ctx, rec) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := "present|_dnsauth.example.com|TXT|tok with space; $(rm -rf /)|example.com from-config\n" +
		"present|x7k2.example.com|CNAME|dcv.digicert.com|example.com from-config\n" +
		"cleanup|_dnsauth.example.com|TXT|tok with space; $(rm -rf /)|example.com from-config\n"
	if string(got) != want {
		t.Errorf("script saw:\n%s\nwant:\n%s", got, want)
	}
}

func TestExecFailure(t *testing.T) {
	cmd := script(t, `echo "dnsapi: 403 token expired for $2" >&2; exit 3`)
	p, err := dcv.NewExec(dcv.ExecConfig{Command: cmd})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Publish(t.Context(), txt("example.com", "_dnsauth.example.com", "tok"))
	if err == nil {
		t.Fatal("a failing script reported success")
	}
	for _, w := range []string{"present _dnsauth.example.com TXT", "exit status 3", "dnsapi: 403 token expired for _dnsauth.example.com"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

func TestExecTimeout(t *testing.T) {
	cmd := script(t, "sleep 30\n")
	p, err := dcv.NewExec(dcv.ExecConfig{Command: cmd, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = p.Publish(t.Context(), txt("example.com", "_dnsauth.example.com", "tok"))
	if err == nil || !strings.Contains(err.Error(), "no result within 200ms") {
		t.Fatalf("hung script: %v", err)
	}
	// The script's own child (sleep) dies too, so the wait is not
	// stretched by it holding the output pipe.
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a 200ms timeout took %s", d)
	}
}

func TestNewExecRejects(t *testing.T) {
	if _, err := dcv.NewExec(dcv.ExecConfig{}); err == nil {
		t.Error("no command accepted")
	}
	if _, err := dcv.NewExec(dcv.ExecConfig{Command: filepath.Join(t.TempDir(), "missing.sh")}); err == nil {
		t.Error("missing command accepted")
	}
}
