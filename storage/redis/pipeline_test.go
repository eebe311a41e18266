package redis_test

import (
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/storage"
)

// flushScripts empties the server's script cache, as a restart does.
func flushScripts(t *testing.T, url string) {
	t.Helper()
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opt)
	defer c.Close()
	if err := c.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestCreateCertificateAfterScriptFlush: the name-set index, pipelined by
// hash with the certificate, is still written after the server's script
// cache was emptied.
func TestCreateCertificateAfterScriptFlush(t *testing.T) {
	url := testredis.Start(t)
	s := open(t, url)
	ctx := t.Context()
	id := time.Now().Format("150405.000000000")
	c := &storage.Certificate{Serial: "f1" + id, AccountID: "acct-" + id, OrderID: "o-" + id, Names: []string{"flush.example"},
		ChainPEM: []byte("x"), NotAfter: time.Now().Add(time.Hour).Truncate(time.Millisecond), Status: storage.StatusValid}
	flushScripts(t, url)
	if err := s.CreateCertificate(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := s.LatestCertificate(ctx, c.AccountID, c.Names)
	if err != nil || got.Serial != c.Serial {
		t.Fatalf("LatestCertificate after SCRIPT FLUSH = %+v, %v; want %s", got, err, c.Serial)
	}
}

// TestFinishJobAfterScriptFlush: FinishJob pipelines its scripts by hash;
// after the server's script cache is emptied (a restart) each is sent again
// in full, and both still run exactly once.
func TestFinishJobAfterScriptFlush(t *testing.T) {
	url := testredis.Start(t)
	s := open(t, url).WithJobQueue(t.Name() + "-" + time.Now().Format("150405.000000000"))
	ctx := t.Context()
	id := "flush-" + time.Now().Format("150405.000000000")
	o := &storage.Order{ID: id, AccountID: "acct-" + id, Status: storage.StatusProcessing, Expires: time.Now().Add(time.Hour)}
	if err := s.CreateOrder(ctx, o, nil); err != nil {
		t.Fatal(err)
	}
	j := &storage.Job{ID: id, OrderID: id, Due: time.Now(), CreatedAt: time.Now()}
	if err := s.EnqueueJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	flushScripts(t, url)
	o.Status = storage.StatusValid
	oerr, jerr := s.FinishJob(ctx, o, j, []storage.RateSpend{{Key: "finish-after-flush", Limit: storage.RateLimit{Count: 5, Period: time.Hour}, Cost: 1, BestEffort: true}})
	if oerr != nil || jerr != nil {
		t.Fatalf("FinishJob after SCRIPT FLUSH = %v, %v", oerr, jerr)
	}
	got, err := s.GetOrder(ctx, id)
	if err != nil || got.Status != storage.StatusValid || got.Version != 2 {
		t.Fatalf("order after FinishJob: %+v, %v; want valid at version 2", got, err)
	}
	if _, err := s.GetJob(ctx, id); err == nil {
		t.Fatal("job still queued after FinishJob")
	}
}
