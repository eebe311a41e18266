// Package testlog provides a log buffer for tests. It exists because tests
// capture output that other goroutines or child processes write while the
// test reads it, and a plain bytes.Buffer is not safe for that.
package testlog

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer guarded by a mutex, so a logger or a child
// process can write to it while a test reads it without a data race. The
// zero value is an empty buffer ready to use; a Buffer must not be copied
// after first use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the buffer; it implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Len returns the number of bytes written so far, to pass to From later.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// From returns what was written from byte offset off on, so a test can show
// only the output since it started; an offset past the end gives "".
func (b *Buffer) From(off int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf.Bytes()[min(off, b.buf.Len()):])
}
