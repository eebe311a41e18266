package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
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

// firstBlockedWriter holds its first write until release; later writes
// go through at once.
type firstBlockedWriter struct {
	release chan struct{}
	started atomic.Bool
	lockedBuffer
}

func (b *firstBlockedWriter) Write(p []byte) (int, error) {
	if b.started.CompareAndSwap(false, true) {
		<-b.release
	}
	return b.lockedBuffer.Write(p)
}

// TestCoalescingWriterOrderAcrossClose checks that a line written while
// Close is under way comes after the lines queued before it, even when it
// could reach the output first.
func TestCoalescingWriterOrderAcrossClose(t *testing.T) {
	out := &firstBlockedWriter{release: make(chan struct{})}
	w := newCoalescingWriter(out)
	fmt.Fprintf(w, "queued 1\n")
	waitFor := func(cond func() bool) {
		for {
			w.mu.Lock()
			ok := cond()
			w.mu.Unlock()
			if ok {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(func() bool { return len(w.pending) == 0 }) // taken: the goroutine is stuck writing it
	fmt.Fprintf(w, "queued 2\n")
	closed := make(chan struct{})
	go func() { _ = w.Close(); close(closed) }()
	waitFor(func() bool { return w.closed })
	late := make(chan struct{})
	go func() { fmt.Fprintf(w, "late\n"); close(late) }()
	time.Sleep(20 * time.Millisecond) // time for "late" to overtake, if it could
	close(out.release)
	<-closed
	<-late
	if got, want := out.buf.String(), "queued 1\nqueued 2\nlate\n"; got != want {
		t.Errorf("out = %q, want %q", got, want)
	}
}
