package main

import (
	"io"
	"sync"
)

// maxPendingLog bounds the log lines a coalescingWriter holds: past it,
// Write waits for the writer, so a stalled stderr slows logging callers
// down instead of growing memory.
const maxPendingLog = 1 << 20

// coalescingWriter gives log lines to one goroutine that writes whatever
// has queued up meanwhile in one write to out. An idle server's line is
// written at once, as before; a busy one's lines share write system calls.
// Under load every request logs a line, and with one write per line the
// log was 8 of the ~35 write system calls a certificate costs the server.
//
// Each Write's bytes stay whole and in order. What a crash loses is only
// what the goroutine had not yet written, microseconds' worth; Close
// writes the rest.
type coalescingWriter struct {
	out io.Writer

	mu      sync.Mutex
	pending []byte        // lines the goroutine has not taken yet
	room    sync.Cond     // signalled when the goroutine takes pending
	wake    chan struct{} // holds a token while pending has lines
	closed  bool
	done    chan struct{} // closed when the goroutine has written all
}

func newCoalescingWriter(out io.Writer) *coalescingWriter {
	w := &coalescingWriter{out: out, wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.room.L = &w.mu
	go w.run()
	return w
}

// Write queues p for the goroutine; after Close it writes p to out itself.
// It reports no error of out's: log lines have nowhere else to go.
func (w *coalescingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.pending) >= maxPendingLog && !w.closed {
		w.room.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		<-w.done // lines queued before Close go first
		return w.out.Write(p)
	}
	w.pending = append(w.pending, p...)
	select {
	case w.wake <- struct{}{}:
	default: // a token is waiting already
	}
	w.mu.Unlock()
	return len(p), nil
}

func (w *coalescingWriter) run() {
	defer close(w.done)
	var batch []byte
	for range w.wake {
		w.mu.Lock()
		batch, w.pending = w.pending, batch[:0]
		w.room.Broadcast()
		w.mu.Unlock()
		if len(batch) > 0 { // a token can outlive the lines it announced
			_, _ = w.out.Write(batch)
		}
	}
	// Closed: what was queued before Close is still to write.
	w.mu.Lock()
	batch, w.pending = w.pending, nil
	w.room.Broadcast()
	w.mu.Unlock()
	if len(batch) > 0 {
		_, _ = w.out.Write(batch)
	}
}

// Close writes what is queued and waits until it is written; later
// Writes go straight to out.
func (w *coalescingWriter) Close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.wake)
	}
	w.mu.Unlock()
	<-w.done
	return nil
}
