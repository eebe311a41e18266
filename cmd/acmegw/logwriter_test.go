package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is an io.Writer that counts its Write calls.
type lockedBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	return b.buf.Write(p)
}

// TestCoalescingWriterKeepsLines checks that concurrent writers' lines all
// arrive, whole and in each writer's order, in fewer writes than lines,
// and that Close writes what is queued and lets later lines through.
func TestCoalescingWriterKeepsLines(t *testing.T) {
	out := new(lockedBuffer)
	w := newCoalescingWriter(out)
	const writers, lines = 16, 2000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				if _, err := fmt.Fprintf(w, "writer=%d line=%d %s\n", g, i, strings.Repeat("x", i%50)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(w, "after close\n")

	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(out.buf.String(), "\n"), "\n")
	if len(got) != writers*lines+1 || got[len(got)-1] != "after close" {
		t.Fatalf("%d lines, the last %q; want %d and \"after close\"", len(got), got[len(got)-1], writers*lines+1)
	}
	for _, l := range got[:len(got)-1] {
		var g int
		if _, err := fmt.Sscanf(l, "writer=%d ", &g); err != nil || g < 0 || g >= writers {
			t.Fatalf("torn line %q", l)
		}
		if want := fmt.Sprintf("writer=%d line=%d %s", g, next[g], strings.Repeat("x", next[g]%50)); l != want {
			t.Fatalf("line %q, want %q (torn or out of order)", l, want)
		}
		next[g]++
	}
	if out.writes >= writers*lines {
		t.Errorf("%d writes for %d lines: nothing was coalesced", out.writes, writers*lines)
	}
}

// blockedWriter stands for a stderr nobody reads: its writes wait for
// release.
type blockedWriter struct {
	release chan struct{}
	lockedBuffer
}

func (b *blockedWriter) Write(p []byte) (int, error) {
	<-b.release
	return b.lockedBuffer.Write(p)
}

// TestCoalescingWriterBackpressure checks that lines pile up only to
// maxPendingLog while out is stuck: past it, Write waits.
func TestCoalescingWriterBackpressure(t *testing.T) {
	out := &blockedWriter{release: make(chan struct{})}
	w := newCoalescingWriter(out)
	line := strings.Repeat("y", 1023) + "\n"
	const n = 3 * maxPendingLog / 1024
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			_, _ = w.Write([]byte(line))
		}
	}()
	select {
	case <-done:
		t.Fatalf("%d KiB written while the output was stuck; want Write to wait past %d KiB", n, maxPendingLog/1024)
	case <-time.After(200 * time.Millisecond):
	}
	close(out.release)
	<-done
	_ = w.Close()
	if got := out.buf.Len(); got != n*len(line) {
		t.Errorf("%d bytes out, want %d", got, n*len(line))
	}
}
