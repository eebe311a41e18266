// Package testredis gives tests a Redis to talk to: a private redis-server
// started on a free loopback port, or the server named by
// ACMEGW_TEST_REDIS_URL. Tests must not flush or otherwise assume they own a
// server given by URL, so they use fresh random ids for everything they write.
package testredis

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmegw/acmegw/internal/testlog"
)

// EnvURL names the environment variable that points tests at an existing
// Redis instead of starting one.
const EnvURL = "ACMEGW_TEST_REDIS_URL"

// EnvRequire names the environment variable that, set to 1, turns a missing
// redis-server into a test failure instead of a skip (CI sets it so that
// the Redis tests can never be skipped silently).
const EnvRequire = "ACMEGW_REQUIRE_REDIS"

// startTimeout bounds how long a fresh redis-server may take to answer PING.
const startTimeout = 10 * time.Second

// Start returns the URL of a Redis for this test: ACMEGW_TEST_REDIS_URL if
// set, otherwise a private redis-server stopped when the test ends.
func Start(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return StartServer(t).URL()
}

// WithOption returns the store URL rawURL (from Start) with the query
// option name=value set, whatever query it has already.
func WithOption(t testing.TB, rawURL, name, value string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("testredis: parse %q: %v", rawURL, err)
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// Server is a private redis-server process. Tests that exercise outages use
// Stop and Restart; the address stays the same across restarts, and the data
// does not survive them (persistence is off) unless the server was started
// with AppendOnly.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	// appendOnly turns on the append-only file (see AppendOnly).
	appendOnly bool
	// cluster runs the server as a Redis Cluster node (see StartCluster).
	cluster bool

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
}

// Option changes how StartServer runs redis-server.
type Option func(*Server)

// AppendOnly runs redis-server with its append-only file on and fsynced
// before every reply (appendfsync always), so that everything it
// acknowledged survives Stop (a kill) and Restart, as on a production Redis
// with persistence.
func AppendOnly() Option { return func(s *Server) { s.appendOnly = true } }

// StartServer starts a private redis-server on a free loopback port (even
// when ACMEGW_TEST_REDIS_URL is set, since callers want to control it) and
// stops it when the test ends. It skips the test, or fails it when
// ACMEGW_REQUIRE_REDIS=1, if redis-server is not installed.
func StartServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server not found on PATH; install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set " + EnvURL
		if os.Getenv(EnvRequire) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	for _, o := range opts {
		o(s)
	}
	t.Cleanup(s.Stop)

	// Picking a free port and binding it are two steps, so another process
	// can win the port in between; a few attempts make that a non-issue.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testredis: find a free port: %v", err)
		}
		s.port = port
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("testredis: %v", lastErr)
	return nil
}

// StartCluster starts a Redis Cluster of three private masters sharing
// the 16384 slots (redis-cli --cluster create) and returns its URL in the
// form storage/redis reads: the first node, the others as addr=. The
// nodes stop when the test ends. It skips or fails like StartServer.
func StartCluster(t testing.TB) string {
	t.Helper()
	var nodes []*Server
	for range 3 {
		nodes = append(nodes, StartServer(t, func(s *Server) { s.cluster = true }))
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("testredis: redis-cli (package redis-tools) is needed to create a cluster: %v", err)
	}
	args := []string{"--cluster", "create"}
	for _, n := range nodes {
		args = append(args, n.Addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("testredis: redis-cli --cluster create: %v: %s", err, out)
	}
	// Every node must agree the cluster is up before clients route to it.
	deadline := time.Now().Add(startTimeout)
	for _, n := range nodes {
		for {
			out, err := exec.Command(cli, "-h", "127.0.0.1", "-p", strconv.Itoa(n.port), "cluster", "info").Output()
			if err == nil && bytes.Contains(out, []byte("cluster_state:ok")) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("testredis: cluster node %s not ready: %v %s", n.Addr(), err, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	u := "redis://" + nodes[0].Addr() + "?addr=" + nodes[1].Addr() + "&addr=" + nodes[2].Addr()
	return u
}

// URL is the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Stop kills the server and waits for it to exit. Stopping a stopped server
// does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart stops the server if it runs and starts it again on the same port:
// empty, or with the data it had when started with AppendOnly.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	// The old process's port can take a moment to be reusable.
	for range 20 {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("testredis: restart: %v", err)
}

// start launches redis-server on s.port and waits until it answers PING.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := new(testlog.Buffer)
	appendOnly := "no"
	if s.appendOnly {
		appendOnly = "yes"
	}
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", appendOnly,
		"--appendfsync", "always",
		"--dir", s.dir,
		"--loglevel", "warning",
	}
	if s.cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000")
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	// One goroutine owns Wait; it also tells the start loop about an early
	// exit (e.g. port already in use).
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		if ping(s.Addr()) == nil {
			s.cmd, s.exited = cmd, exited
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server on port %d exited: %s", s.port, strings.TrimSpace(out.String()))
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on port %d did not answer PING within %v: %s", s.port, startTimeout, strings.TrimSpace(out.String()))
		}
	}
}

// ping sends an inline PING and expects +PONG, without a Redis client
// library, so this package stays independent of the code it helps test.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply to PING: %q", line)
	}
	return nil
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
