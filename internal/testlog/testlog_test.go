package testlog_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/acmegw/acmegw/internal/testlog"
)

// TestBufferConcurrent writes lines from several goroutines while others read;
// with -race it fails if the buffer is not locked, and it checks that no
// write is lost or torn.
func TestBufferConcurrent(t *testing.T) {
	const writers, lines = 8, 200
	var b testlog.Buffer
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			default:
				_ = b.String()
				_ = b.From(b.Len() / 2)
			}
		}
	}()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				fmt.Fprintf(&b, "writer %d line %d\n", w, i)
			}
		}()
	}
	wg.Wait()
	close(done)

	got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("got %d lines, want %d", len(got), writers*lines)
	}
	seen := make(map[string]bool, len(got))
	for _, l := range got {
		seen[l] = true
	}
	for w := range writers {
		for i := range lines {
			if l := fmt.Sprintf("writer %d line %d", w, i); !seen[l] {
				t.Fatalf("line %q missing or torn", l)
			}
		}
	}
	if b.Len() != len(b.String()) {
		t.Errorf("Len() = %d, want %d", b.Len(), len(b.String()))
	}
}

// TestBufferFrom checks that From returns only what came after an offset.
func TestBufferFrom(t *testing.T) {
	var b testlog.Buffer
	b.Write([]byte("before\n"))
	off := b.Len()
	b.Write([]byte("after\n"))
	if got := b.String(); got != "before\nafter\n" {
		t.Errorf("String() = %q", got)
	}
	if got := b.From(off); got != "after\n" {
		t.Errorf("From(%d) = %q, want %q", off, got, "after\n")
	}
	if got := b.From(1000); got != "" {
		t.Errorf("From past the end = %q, want empty", got)
	}
}
