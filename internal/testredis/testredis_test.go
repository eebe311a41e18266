package testredis

import (
	"os"
	"testing"
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
