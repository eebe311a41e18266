package interop

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// runTimeout bounds one run of an external client; certbot alone waits up
// to 90 s for a certificate.
const runTimeout = 3 * time.Minute

// Cmd is one run of an external client program.
type Cmd struct {
	Path string
	Args []string
	Env  []string // added to the environment; later entries win
	Dir  string   // working directory; default: a temp dir
}

// Run starts the program in its own process group and waits for it; the
// whole group (hooks, curl, openssl) is killed when the cell ends or the run
// times out, so nothing outlives the cell. It returns the combined output.
func (cmd Cmd) Run(c *Cell) (string, error) {
	var out bytes.Buffer
	err := cmd.run(c, &out, &out)
	return out.String(), err
}

// splitOutput is a run's standard output and error apart.
type splitOutput struct{ stdout, stderr string }

// runSplit is Run keeping standard output (a certificate) apart from the log.
func runSplit(c *Cell, cmd Cmd) (splitOutput, error) {
	var stdout, stderr bytes.Buffer
	err := cmd.run(c, &stdout, &stderr)
	return splitOutput{stdout.String(), stderr.String()}, err
}

func (cmd Cmd) run(c *Cell, stdout, stderr *bytes.Buffer) error {
	ctx, cancel := context.WithTimeout(c.Context(), runTimeout)
	defer cancel()
	x := exec.CommandContext(ctx, cmd.Path, cmd.Args...)
	x.Dir = cmd.Dir
	if x.Dir == "" {
		x.Dir = c.TempDir()
	}
	x.Env = append(cleanEnv(), cmd.Env...)
	x.Stdin = nil
	x.Stdout, x.Stderr = stdout, stderr
	x.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	x.Cancel = func() error { return syscall.Kill(-x.Process.Pid, syscall.SIGKILL) }
	x.WaitDelay = 5 * time.Second
	start := time.Now()
	err := x.Run()
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (killed after %s: %v)", err, time.Since(start).Round(time.Millisecond), ctx.Err())
	}
	out := stderr.String()
	if stdout != stderr {
		out = stdout.String() + out
	}
	c.Logf("$ %s %s  [%s, %s]\n%s", filepath.Base(cmd.Path), strings.Join(cmd.Args, " "),
		time.Since(start).Round(time.Millisecond), errText(err), out)
	return err
}

// Must runs the program and fails the cell unless it exits 0.
func (cmd Cmd) Must(c *Cell) string {
	out, err := cmd.Run(c)
	if err != nil {
		c.Fatalf("%s %s: %v\n%s", filepath.Base(cmd.Path), strings.Join(cmd.Args, " "), err, tail(out, 15))
	}
	return out
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// cleanEnv is the test's environment without proxy settings (everything
// here is on loopback) and without variables that would point a client at
// another trust store than the one its cell sets.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
			"REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "LEGO_CA_CERTIFICATES":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"…"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// writeScript writes an executable shell script.
func writeScript(c *Cell, path, body string) string {
	c.Must(os.WriteFile(path, []byte("#!/bin/sh\nset -eu\n"+body+"\n"), 0o755), "writing "+path)
	return path
}

// lookPath finds an installed client program; a missing one makes the cell
// fail (the matrix is meant to run every client; scripts/test installs them).
func lookPath(c *Cell, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		c.Fatalf("%s is not installed (./scripts/test installs it): %v", name, err)
	}
	return p
}

// commandOutput runs a short command (a version query) and returns its
// trimmed output, or "unknown".
func commandOutput(name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// debVersion is the installed version of a Debian package.
func debVersion(pkg string) string {
	v := commandOutput("dpkg-query", "-W", "-f", "${Version}", pkg)
	if v == "" || strings.Contains(v, "no packages found") {
		return "unknown"
	}
	return v + " (Debian package " + pkg + ")"
}
