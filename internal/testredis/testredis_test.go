package testredis

import (
	"bufio"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestStartServerRestart(t *testing.T) {
	s := StartServer(t)
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("fresh server: %v", err)
	}
	s.Stop()
	if err := ping(s.Addr()); err == nil {
		t.Fatal("stopped server still answers")
	}
	s.Restart()
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("restarted server: %v", err)
	}
}

func TestStartUsesEnv(t *testing.T) {
	t.Setenv(EnvURL, "redis://example.invalid:6379/3")
	if got := Start(t); got != os.Getenv(EnvURL) {
		t.Fatalf("Start = %q, want the %s value", got, EnvURL)
	}
}

func TestAppendOnlySurvivesRestart(t *testing.T) {
	s := StartServer(t, AppendOnly())
	if got := inline(t, s.Addr(), "SET k v"); got != "+OK" {
		t.Fatalf("SET: %q", got)
	}
	s.Restart()
	if got := inline(t, s.Addr(), "GET k"); got != "$1" {
		t.Fatalf("GET after restart: %q, want the value back", got)
	}

	plain := StartServer(t)
	inline(t, plain.Addr(), "SET k v")
	plain.Restart()
	if got := inline(t, plain.Addr(), "GET k"); got != "$-1" {
		t.Fatalf("GET after restart without persistence: %q, want nil", got)
	}
}

// inline sends one inline command and returns the first line of the reply.
func inline(t *testing.T, addr, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}
