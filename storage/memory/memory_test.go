package memory_test

import (
	"testing"

	"github.com/acmegw/acmegw/storage"
	"github.com/acmegw/acmegw/storage/memory"
	"github.com/acmegw/acmegw/storage/storagetest"
)

func newStore(t *testing.T) storage.Store {
	s := memory.New()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, newStore)
}

func BenchmarkNonce(b *testing.B) {
	s := memory.New()
	defer s.Close()
	storagetest.BenchNonce(b, s)
}
