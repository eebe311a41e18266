package acme

// Issuance runs as durable jobs kept in the store (DESIGN.md, "Backends that
// take days"). Finalize enqueues the order's job before it moves the order
// to processing, then runs the job's first step itself and waits a little
// (Config.FinalizeWait), so a brand that signs at once is answered in the
// finalize response. Anything slower (a ticket to poll, a brand that is
// down) stays in the queue, and RunJobs on any instance sharing the store
// carries it on: a claim leases the job (Config.JobLease) so two instances
// never work on it at once, and a crashed instance's job is taken over when
// its lease runs out. Every order change is a compare-and-swap, so a job run
// twice never issues twice into the order.

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/storage"
)

const (
	defaultFinalizeWait = 5 * time.Second
	defaultJobLease     = 2 * time.Minute
	defaultBrandTimeout = 90 * time.Second
	defaultJobWorkers   = 4
	// jobIdle is how long RunJobs sleeps (±20%) when no job is due.
	jobIdle = 500 * time.Millisecond
	// defaultPollAfter is when to poll a ticket whose brand suggested nothing.
	defaultPollAfter = 5 * time.Second
	minPollAfter     = time.Second
	// maxBackoff caps the wait after repeated brand failures.
	maxBackoff = 10 * time.Minute
	// unknownBrandDelay is when a job whose brand this instance lacks is
	// tried again (by this or another instance), without counting an attempt.
	unknownBrandDelay = 5 * time.Second
	// maxOrderRetryAfter caps the Retry-After of a processing order.
	maxOrderRetryAfter = time.Hour
	// releaseTimeout bounds the store write that hands a job back on shutdown.
	releaseTimeout = 5 * time.Second
)

// jobState is what the job machinery adds to a Server.
type jobState struct {
	// wg tracks RunJobs and the finalize goroutines, for Close.
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
	runs   *prometheus.CounterVec
}

// initJobs fills in the job settings' defaults and registers the job metrics.
func (s *Server) initJobs() {
	c := &s.cfg
	if c.FinalizeWait == 0 {
		c.FinalizeWait = defaultFinalizeWait
	}
	if c.BrandTimeout <= 0 {
		c.BrandTimeout = defaultBrandTimeout
	}
	if c.JobLease <= 0 {
		c.JobLease = defaultJobLease
	}
	// A worker must finish its brand call and the store writes after it
	// within its lease, or a live worker would be taken over.
	if min := c.BrandTimeout + 10*time.Second; c.JobLease < min {
		s.log.Warn("job lease shorter than the brand timeout; lengthened", "lease", c.JobLease, "brand_timeout", c.BrandTimeout, "now", min)
		c.JobLease = min
	}
	if c.JobWorkers <= 0 {
		c.JobWorkers = defaultJobWorkers
	}
	s.jobs.runs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "acmegw_job_runs_total", Help: "Issuance job steps by brand and result (issued, pending, review, retry, failed, deadline, done, error, canceled).",
	}, []string{"brand", "result"})
	s.metrics.registry.MustRegister(s.jobs.runs, &jobStatsCollector{store: s.store, log: s.log})
}

// track adds one to the job wait group unless the server is closing.
func (s *Server) track() bool {
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	if s.jobs.closed {
		return false
	}
	s.jobs.wg.Add(1)
	return true
}

// closeJobs stops new job goroutines and waits for the running ones, which
// see s.baseCtx canceled.
func (s *Server) closeJobs() {
	s.jobs.mu.Lock()
	s.jobs.closed = true
	s.jobs.mu.Unlock()
	s.jobs.wg.Wait()
}

// RunJobs claims due jobs one at a time and runs up to Config.JobWorkers
// of them at once, until ctx is done or the Server closes; it returns once
// its jobs have stopped. Every instance sharing a store may run it.
func (s *Server) RunJobs(ctx context.Context) {
	if !s.track() {
		return
	}
	defer s.jobs.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.baseCtx, cancel)()

	slots := make(chan struct{}, s.cfg.JobWorkers)
	var running sync.WaitGroup
	defer running.Wait()
	failures := 0
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		j, err := s.store.ClaimJob(ctx, time.Now(), s.cfg.JobLease)
		if err != nil {
			<-slots
			idle := jobIdle
			if !errors.Is(err, storage.ErrNotFound) && ctx.Err() == nil {
				failures++
				idle = min(jobIdle<<min(failures, 6), 30*time.Second)
				s.log.Warn("claiming issuance jobs", "err", err)
			} else {
				failures = 0
			}
			if !sleep(ctx, jitter(idle)) {
				return
			}
			continue
		}
		failures = 0
		running.Go(func() {
			defer func() { <-slots }()
			s.runJob(ctx, j, nil)
		})
	}
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// retryStore runs op until it succeeds, fails with one of the store's
// verdicts (ErrConflict, ErrNotFound, ErrExists) or ctx ends, backing off
// from 100 ms to 1 s between tries. A job step holds its lease for the
// whole of ctx, so a brief store outage (a Redis restart or failover) only
// delays the step instead of leaving the order processing until the lease
// runs out. op must be safe to repeat after an error whose outcome is
// unknown: reads, compare-and-swaps, and storeIssued.
func retryStore(ctx context.Context, log *slog.Logger, what string, op func() error) error {
	wait := 100 * time.Millisecond
	for {
		err := op()
		if err == nil || errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) ||
			errors.Is(err, storage.ErrExists) || ctx.Err() != nil {
			return err
		}
		log.Warn(what+"; will retry", "err", err, "retry_in", wait)
		if !sleep(ctx, wait) {
			return err
		}
		wait = min(wait*2, time.Second)
	}
}

// jitter spreads d by ±20% so that instances do not poll in step.
func jitter(d time.Duration) time.Duration {
	return d*8/10 + rand.N(d*4/10+1)
}

// jobStart is what finalize hands the first step of the job it has just
// enqueued, so that the step reads back nothing the request already holds:
// the order as finalize stored it (processing, at its new version), the
// parsed CSR, and the limits to spend once the brand issues (issuedLimits,
// worked out by finalize's own rate-limit checks before the certificate
// exists). Every write of the step is still a compare-and-swap, so a
// change to the order since finalize stored it only costs a conflict and
// a reload, as when the step reads it itself.
type jobStart struct {
	order  *storage.Order
	csr    *x509.CertificateRequest
	limits []limitCheck
}

// runJob runs one step of a job the caller holds and counts it. start is
// nil unless finalize enqueued j a moment ago. It returns the order as the
// step left it (nil when the step did not get that far).
func (s *Server) runJob(ctx context.Context, j *storage.Job, start *jobStart) *storage.Order {
	growStack() // a job step runs on a goroutine of its own; see growStack
	// The whole step fits in the lease, brand call and store writes alike.
	ctx, cancel := context.WithTimeout(ctx, s.cfg.JobLease*9/10)
	defer cancel()
	brand, result, o := s.processJob(ctx, j, start)
	if brand == "" {
		brand = "unknown"
	}
	s.jobs.runs.WithLabelValues(brand, result).Inc()
	return o
}

// processJob is one step of the issuance state machine for the job j, which
// the caller holds. It returns the order's brand and what happened:
//
//   - the order is gone or no longer processing (done elsewhere, or the
//     instance that enqueued the job died before moving the order): "done";
//   - the deadline passed: the order becomes invalid: "deadline";
//   - no ticket yet: Submit; a ticket: Poll. A chain is stored and makes
//     the order valid: "issued". A ticket is kept and polled again after
//     the brand's RetryAfter: "pending". A permanent *issuer.Error makes
//     the order invalid with the brand's reason: "failed". Any other error
//     is retried with exponential backoff: "retry".
//
// A job whose holder lost it (ErrConflict on UpdateJob/CompleteJob) is left
// to the new holder. The order is returned as the step left it in memory
// (nil if it could not be loaded); start is runJob's.
func (s *Server) processJob(ctx context.Context, j *storage.Job, start *jobStart) (brandName, result string, o *storage.Order) {
	log := s.log.With("job", j.ID, "order", j.OrderID)
	var err error
	if start != nil && start.order != nil {
		c := *start.order
		o = &c
	} else {
		err = retryStore(ctx, log, "issuance job: loading order", func() (err error) {
			o, err = s.store.GetOrder(ctx, j.OrderID)
			return err
		})
	}
	if errors.Is(err, storage.ErrNotFound) {
		s.completeJob(ctx, log, j)
		return "", "done", nil
	}
	if err != nil {
		// The lease runs out and the job is tried again.
		log.Warn("issuance job: loading order", "err", err)
		return "", "error", nil
	}
	brandName, result = s.stepJob(ctx, log, j, o, start)
	return brandName, result, o
}

// stepJob is processJob's step once the order o is loaded.
func (s *Server) stepJob(ctx context.Context, log *slog.Logger, j *storage.Job, o *storage.Order, start *jobStart) (brandName, result string) {
	brandName = o.Brand
	log = log.With("brand", o.Brand)
	if o.Status != storage.StatusProcessing {
		s.completeJob(ctx, log, j)
		return brandName, "done"
	}
	now := time.Now()
	if !j.Deadline.IsZero() && !now.Before(j.Deadline) {
		why := j.LastError
		if why == "" {
			why = "the request was still pending at the brand"
		}
		p := &storage.Problem{Type: "serverInternal", Detail: fmt.Sprintf("brand %s did not issue by %s: %s",
			o.Brand, j.Deadline.UTC().Format(time.RFC3339), why)}
		s.finishJob(ctx, log, j, o, "", p, nil)
		return brandName, "deadline"
	}
	if j.Version > 1 && j.Ticket == "" {
		// A step that stored the certificate and died before recording it
		// on the order must not have the brand issue a second one.
		if c, ok := s.issuedFor(ctx, o); ok {
			s.finishJob(ctx, log, j, o, c.Serial, nil, nil)
			return brandName, "issued"
		}
	}
	if held, result := s.holdForReview(ctx, log, j, o, now); held {
		return brandName, result
	}
	brand, ok := s.cfg.Router.Issuer(o.Brand)
	if !ok {
		j.LastError = fmt.Sprintf("brand %q is not configured on this instance", o.Brand)
		log.Warn("issuance job: unknown brand; leaving it to an instance that has it")
		s.rescheduleJob(ctx, log, j, now.Add(unknownBrandDelay))
		return brandName, "retry"
	}

	var res issuer.Result
	var limits []limitCheck
	submitted := j.Ticket == ""
	bctx, cancel := context.WithTimeout(ctx, s.cfg.BrandTimeout)
	var err error
	if submitted {
		var csr *x509.CertificateRequest
		if start != nil {
			csr = start.csr
		}
		req, perr := s.jobRequest(o, j, csr)
		if perr != nil {
			cancel()
			s.finishJob(ctx, log, j, o, "", &storage.Problem{Type: "badCSR", Detail: perr.Error()}, nil)
			return brandName, "failed"
		}
		if start != nil {
			limits = start.limits
		} else {
			limits, err = s.issuedLimits(ctx, o)
		}
		if err == nil {
			res, err = brand.Submit(bctx, req)
		}
	} else {
		res, err = brand.Poll(bctx, j.Ticket)
	}
	cancel()
	if err == nil && len(res.Chain) == 0 && res.Ticket == "" {
		err = errors.New("the brand answered with neither a certificate nor a ticket")
	}
	if err != nil {
		if ctx.Err() != nil {
			// Shutting down (or out of lease): hand the job back now
			// rather than when the lease runs out.
			s.releaseJob(ctx, log, j)
			return brandName, "canceled"
		}
		if ie, ok := issuer.AsError(err); ok && ie.Permanent {
			typ := ie.Type
			if typ == "" {
				typ = "serverInternal"
			}
			log.Info("issuance refused by the brand", "type", typ, "detail", ie.Error())
			s.finishJob(ctx, log, j, o, "", &storage.Problem{Type: typ, Detail: ie.Error()}, nil)
			return brandName, "failed"
		}
		j.Attempts++
		j.LastError = err.Error()
		delay := backoff(j.Attempts)
		if ie, ok := issuer.AsError(err); ok && ie.RetryAfter > 0 {
			delay = ie.RetryAfter
		}
		log.Warn("issuance attempt failed; will retry", "attempt", j.Attempts, "retry_in", delay, "err", err)
		s.rescheduleJob(ctx, log, j, now.Add(delay))
		return brandName, "retry"
	}

	if len(res.Chain) > 0 {
		// Storing is idempotent (the serial is the key), so a brief
		// outage is waited out here, with the chain in hand, rather
		// than left to the lease.
		var serial string
		err := retryStore(ctx, log, "issuance job: storing certificate", func() (err error) {
			serial, err = s.storeIssued(ctx, o, res)
			return err
		})
		if err != nil {
			// The brand issued but the store failed: keep the job leased, so
			// the next attempt (after the lease) finds the certificate if it
			// was stored after all, or issues again.
			log.Error("issuance job: storing certificate", "err", err)
			return brandName, "error"
		}
		// The certificate limits are spent in the round trip that
		// records it (for a certificate this step had the brand issue).
		var spends []storage.RateSpend
		if submitted {
			spends = issuedSpends(limits)
		}
		s.finishJob(ctx, log, j, o, serial, nil, spends)
		return brandName, "issued"
	}
	j.Ticket = res.Ticket
	j.Attempts, j.LastError = 0, ""
	after := res.RetryAfter
	if after <= 0 {
		after = defaultPollAfter
	}
	s.rescheduleJob(ctx, log, j, now.Add(max(after, minPollAfter)))
	if submitted {
		// The brand accepted the order: it counts as issued for the limits.
		s.spendIssued(ctx, o, limits)
	}
	log.Debug("issuance pending at the brand", "poll_in", after)
	return brandName, "pending"
}

// backoff is 1s·2^attempts, capped at maxBackoff.
func backoff(attempts int) time.Duration {
	return min(time.Second<<min(attempts, 20), maxBackoff)
}

// jobRequest rebuilds the brand request from the job's CSR and the order;
// csr, when not nil, is j.CSR already parsed (by finalize). The CSR's
// signature was checked by finalize before the job was enqueued
// (issuer.Request says brands may rely on that).
func (s *Server) jobRequest(o *storage.Order, j *storage.Job, csr *x509.CertificateRequest) (issuer.Request, error) {
	if csr == nil {
		var err error
		if csr, err = x509.ParseCertificateRequest(j.CSR); err != nil {
			return issuer.Request{}, fmt.Errorf("stored CSR cannot be parsed: %w", err)
		}
	}
	profile, _ := s.cfg.Router.Profile(o.Profile)
	req := issuer.Request{
		OrderID:   o.ID,
		CSR:       csr,
		NotBefore: o.NotBefore,
		NotAfter:  o.NotAfter,
		Validity:  profile.Validity,
	}
	for _, id := range o.Identifiers {
		if id.Type == "ip" {
			req.IPs = append(req.IPs, id.Value)
		} else {
			req.DNSNames = append(req.DNSNames, id.Value)
		}
	}
	return req, nil
}

// issuedLimits are the certificatesPerRegisteredDomain checks (none for a
// renewal) and the profile's quotas to spend once the brand issues or
// accepts the order. They are worked out before the certificate exists,
// which would make the order look like a renewal of itself.
func (s *Server) issuedLimits(ctx context.Context, o *storage.Order) ([]limitCheck, error) {
	profile, _ := s.cfg.Router.Profile(o.Profile)
	quotas := quotaChecks(profile, o.AccountID, o.Identifiers)
	domains, on := s.domainChecks(o.AccountID, o.Identifiers)
	if !on {
		return quotas, nil
	}
	renewal, err := s.isRenewal(ctx, o.AccountID, o.Identifiers)
	if err != nil {
		return nil, err
	}
	if renewal {
		return quotas, nil
	}
	return append(domains, quotas...), nil
}

// issuedFor finds a certificate an earlier step stored for the order.
func (s *Server) issuedFor(ctx context.Context, o *storage.Order) (*storage.Certificate, bool) {
	names := make([]string, len(o.Identifiers))
	for i, id := range o.Identifiers {
		names[i] = id.Value
	}
	c, err := s.store.LatestCertificate(ctx, o.AccountID, names)
	if err != nil || c.OrderID != o.ID {
		return nil, false
	}
	return c, true
}

// storeIssued stores the brand's chain as the order's certificate and
// returns its serial. ErrExists on the serial means an earlier step of this
// job stored it already.
func (s *Server) storeIssued(ctx context.Context, o *storage.Order, res issuer.Result) (string, error) {
	leaf := res.Leaf
	if leaf == nil {
		block, _ := pem.Decode(res.Chain)
		if block == nil || block.Type != "CERTIFICATE" {
			return "", errors.New("the brand's chain holds no PEM certificate")
		}
		var err error
		if leaf, err = x509.ParseCertificate(block.Bytes); err != nil {
			return "", fmt.Errorf("the brand's leaf certificate: %w", err)
		}
	}
	cert := &storage.Certificate{
		Serial:          serialHex(leaf),
		AccountID:       o.AccountID,
		OrderID:         o.ID,
		Brand:           o.Brand,
		BrandRef:        res.Ref,
		ChainPEM:        res.Chain,
		AlternateChains: res.Alternates,
		Names:           append(leaf.DNSNames[:len(leaf.DNSNames):len(leaf.DNSNames)], ipStrings(leaf)...),
		NotBefore:       leaf.NotBefore,
		NotAfter:        leaf.NotAfter,
		Status:          storage.StatusValid,
		OrderReuseKey:   s.orderReuseKeyOf(o),
	}
	err := s.store.CreateCertificate(ctx, cert)
	if errors.Is(err, storage.ErrExists) {
		prev, gerr := s.store.GetCertificate(ctx, cert.Serial)
		if gerr != nil {
			return "", gerr
		}
		if prev.OrderID != o.ID {
			return "", fmt.Errorf("serial %s belongs to order %s", cert.Serial, prev.OrderID)
		}
		return cert.Serial, nil
	}
	return cert.Serial, err
}

// finishJob records the outcome on the order (valid with serial, or invalid
// with p), retrying the compare-and-swap on conflicts, then completes the
// job. It reports whether this call moved the order.
//
// The first try sends the order's move and the job's completion together
// (Store.FinishJob, one round trip). They are not atomic, so when the job
// went (or may have gone) while the order did not move, the job is queued
// again before anything else: an order left processing always has a job
// that finishes it, unless this instance dies before the job is back; the
// order's next poll finds it then (orphanState) and ends it as invalid.
//
// spends are the rate limits the certificate counts against, spent with the
// first try whatever its outcome (the certificate exists either way).
func (s *Server) finishJob(ctx context.Context, log *slog.Logger, j *storage.Job, o *storage.Order, serial string, p *storage.Problem, spends []storage.RateSpend) bool {
	moved, completed := false, false
	var spendAgain []storage.RateSpend
	for attempt := 0; attempt < 5 && o.Status == storage.StatusProcessing; attempt++ {
		next := *o
		if p != nil {
			next.Status, next.Error = storage.StatusInvalid, p
		} else {
			next.Status, next.CertSerial, next.Error = storage.StatusValid, serial, nil
		}
		var err error
		if attempt == 0 {
			var jobErr error
			err, jobErr = s.store.FinishJob(ctx, &next, j, spends)
			switch {
			case err == nil:
				completed = true
				logCompleted(log, jobErr)
			case jobErr == nil || !storeVerdict(jobErr):
				s.requeueJob(ctx, log, j)
			}
			if err != nil && !storeVerdict(err) {
				// An outage, or a lost reply: the move is retried as
				// below (a move that did happen then conflicts), and
				// the spends, whose fate is as unknown, are made again
				// once it is settled (counting a certificate twice
				// rather than a quota not at all).
				spendAgain = spends
				err = retryStore(ctx, log, "issuance job: recording the outcome on the order", func() error {
					return s.store.UpdateOrder(ctx, &next)
				})
			}
		} else {
			err = retryStore(ctx, log, "issuance job: recording the outcome on the order", func() error {
				return s.store.UpdateOrder(ctx, &next)
			})
		}
		if err == nil {
			moved = true
			*o = next
			s.metrics.orders.WithLabelValues(next.Status, next.Brand).Inc()
			if p != nil {
				log.Info("order invalid", "type", p.Type, "detail", p.Detail)
			} else {
				log.Info("certificate issued", "serial", serial)
			}
			break
		}
		if !errors.Is(err, storage.ErrConflict) {
			// Leave the job leased: it is tried again after the lease.
			log.Error("issuance job: recording the outcome on the order", "err", err)
			return false
		}
		var fresh *storage.Order
		err = retryStore(ctx, log, "issuance job: reloading order", func() (err error) {
			fresh, err = s.store.GetOrder(ctx, o.ID)
			return err
		})
		if err != nil {
			log.Error("issuance job: reloading order", "err", err)
			return false
		}
		*o = *fresh
	}
	if o.Status == storage.StatusProcessing {
		log.Error("issuance job: the order kept changing; will retry")
		return false
	}
	if !completed {
		s.completeJob(ctx, log, j)
	}
	if len(spendAgain) > 0 {
		if _, err := s.store.SpendRateLimits(ctx, spendAgain); err != nil {
			log.Warn("rate limits not spent for an issued certificate", "err", err)
		}
	}
	return moved
}

// storeVerdict reports whether err is one of the store's answers
// (ErrConflict, ErrNotFound, ErrExists) rather than a failure whose
// outcome is unknown.
func storeVerdict(err error) bool {
	return errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrExists)
}

// requeueJob stores j again, at its lease (Due) and with its content, after
// FinishJob removed it, or may have, while the order did not move. ErrExists
// means it was not removed after all; j keeps its version then.
func (s *Server) requeueJob(ctx context.Context, log *slog.Logger, j *storage.Job) {
	c := *j
	err := retryStore(ctx, log, "issuance job: queueing it again", func() error {
		return s.store.EnqueueJob(ctx, &c)
	})
	switch {
	case err == nil:
		j.Version = c.Version
	case errors.Is(err, storage.ErrExists):
	default:
		// The order stays processing and nothing else would ever finish
		// it (its deadline lives on the job): keep trying, past this
		// step's budget, until the store takes the job or the server
		// stops.
		log.Error("issuance job: removed while its order did not move, and queueing it again failed; will keep trying", "err", err)
		if !s.track() {
			return
		}
		go func() {
			defer s.jobs.wg.Done()
			err := retryStore(s.baseCtx, log, "issuance job: queueing it again", func() error {
				return s.store.EnqueueJob(s.baseCtx, &c)
			})
			if err == nil || errors.Is(err, storage.ErrExists) {
				log.Info("issuance job queued again")
			}
		}()
	}
}

// completeJob removes the job; a job that changed hands is the new holder's.
func (s *Server) completeJob(ctx context.Context, log *slog.Logger, j *storage.Job) {
	logCompleted(log, s.store.CompleteJob(ctx, j))
}

// logCompleted logs what is worth knowing about CompleteJob's err.
func logCompleted(log *slog.Logger, err error) {
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrConflict), errors.Is(err, storage.ErrNotFound):
		log.Info("issuance job was taken over; leaving it to its new holder")
	default:
		log.Warn("issuance job: completing", "err", err)
	}
}

// rescheduleJob stores the job to run again at due (never after its deadline).
func (s *Server) rescheduleJob(ctx context.Context, log *slog.Logger, j *storage.Job, due time.Time) {
	if !j.Deadline.IsZero() && due.After(j.Deadline) {
		due = j.Deadline
	}
	j.Due = due
	err := s.store.UpdateJob(ctx, j)
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrConflict), errors.Is(err, storage.ErrNotFound):
		log.Info("issuance job was taken over; leaving it to its new holder")
	default:
		log.Warn("issuance job: rescheduling", "err", err)
	}
}

// releaseJob makes a job whose step was cut short due at once, for another
// instance to take, even though ctx is done.
func (s *Server) releaseJob(ctx context.Context, log *slog.Logger, j *storage.Job) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	s.rescheduleJob(rctx, log, j, time.Now())
}

// enqueueFinalize queues the issuance job of an order that finalize is about
// to move to processing. The job comes first: if this instance dies before
// the order moves, the job finds the order not processing and just ends.
func (s *Server) enqueueFinalize(ctx context.Context, o *storage.Order, csr *x509.CertificateRequest) (*storage.Job, *Problem) {
	profile, _ := s.cfg.Router.Profile(o.Profile)
	deadline := profile.Deadline
	if deadline <= 0 {
		deadline = issuer.DefaultDeadline
	}
	now := time.Now().UTC()
	j := &storage.Job{
		ID:      o.ID,
		OrderID: o.ID,
		CSR:     csr.Raw,
		// Leased to this request until its own first step ends.
		Due:       now.Add(s.cfg.JobLease),
		Deadline:  now.Add(deadline),
		CreatedAt: now,
	}
	if err := s.store.EnqueueJob(ctx, j); err != nil {
		if errors.Is(err, storage.ErrExists) {
			return nil, orderNotReady("order is already being finalized")
		}
		// The job may have been stored all the same (its reply lost with
		// the connection); it would then refuse the client's retry until
		// its lease ends.
		s.dropUnsureJob(j)
		return nil, storeProblem("queueing issuance", err)
	}
	return j, nil
}

// runFinalizeJob runs the first step of a just-enqueued job in the
// background and waits up to Config.FinalizeWait for it, then returns the
// order as it is: valid, invalid, or still processing. start hands the
// step what finalize holds (start.order is the order it stored). An order
// the step itself made valid or invalid is returned as the step left it;
// otherwise (still processing, the step not done in time, or the order
// settled by someone else) it is read again from the store.
func (s *Server) runFinalizeJob(r *http.Request, j *storage.Job, start *jobStart) *storage.Order {
	done := make(chan struct{})
	var stepped *storage.Order
	if s.track() {
		go func() {
			defer s.jobs.wg.Done()
			defer close(done)
			stepped = s.runJob(s.baseCtx, j, start)
		}()
	}
	t := time.NewTimer(s.cfg.FinalizeWait)
	defer t.Stop()
	select {
	case <-done:
		// stepped is written before done closes.
		if stepped != nil && (stepped.Status == storage.StatusValid || stepped.Status == storage.StatusInvalid) {
			return stepped
		}
	case <-t.C:
	case <-r.Context().Done():
	}
	if fresh, err := s.store.GetOrder(r.Context(), start.order.ID); err == nil {
		return fresh
	}
	return start.order
}

// settleFinalize runs, in the background, the first step of a job whose
// finalize request could not tell whether it moved the order to processing.
// The step's store reads are retried (retryStore) until the store answers
// or the job's lease, counted from its enqueueing, is nearly spent; then it
// issues if the order is processing and ends the job if not. Without this a
// retried finalize would be refused ("already being finalized") and a moved
// order would stay processing until RunJobs took the job after its lease.
func (s *Server) settleFinalize(j *storage.Job) {
	if !s.track() {
		return
	}
	go func() {
		defer s.jobs.wg.Done()
		ctx, cancel := context.WithDeadline(s.baseCtx, j.CreatedAt.Add(s.cfg.JobLease*9/10))
		defer cancel()
		s.runJob(ctx, j, nil)
	}()
}

// dropUnsureJob removes, once the store answers again, the job j if its
// enqueueing failed with an unknown outcome yet did store it. The order was
// never moved (finalize gave up before that), so the job has nothing to do;
// it is recognised by its creation time and CSR, so that a job a retried
// finalize has enqueued since is left alone.
func (s *Server) dropUnsureJob(j *storage.Job) {
	if !s.track() {
		return
	}
	go func() {
		defer s.jobs.wg.Done()
		ctx, cancel := context.WithDeadline(s.baseCtx, j.CreatedAt.Add(s.cfg.JobLease*9/10))
		defer cancel()
		log := s.log.With("job", j.ID, "order", j.OrderID)
		var stored *storage.Job
		err := retryStore(ctx, log, "checking an issuance job whose enqueueing failed", func() (err error) {
			stored, err = s.store.GetJob(ctx, j.ID)
			return err
		})
		if err != nil || stored.Version != 1 || !stored.CreatedAt.Equal(j.CreatedAt) || !bytes.Equal(stored.CSR, j.CSR) {
			return // not stored, or not this one
		}
		if err := s.store.CompleteJob(ctx, stored); err == nil {
			log.Info("dropped the issuance job of a finalize whose enqueueing seemed to fail")
		}
	}()
}

// orderRetryAfter is the Retry-After of a processing order, in seconds:
// 1 during the first minute of issuance, then the time until its job is
// next due (1 s to an hour), so clients waiting on a days-long review
// do not poll every second. An order held for manual review (its
// profile's review words) gets the time until its job looks again at once:
// RFC 8555 has no field to say why, so Retry-After is all the client sees.
func (s *Server) orderRetryAfter(ctx context.Context, o *storage.Order) string {
	j, err := s.store.GetJob(ctx, o.ID)
	if err != nil {
		return "1"
	}
	now := time.Now()
	if now.Sub(j.CreatedAt) < time.Minute && !awaitingReview(o) {
		return "1"
	}
	wait := min(max(j.Due.Sub(now), time.Second), maxOrderRetryAfter)
	return strconv.Itoa(int((wait + time.Second - 1) / time.Second))
}

// jobStatsCollector reports the queue's size and age at each scrape.
type jobStatsCollector struct {
	store storage.Store
	log   *slog.Logger
}

var (
	jobsQueuedDesc = prometheus.NewDesc("acmegw_jobs_queued",
		"Issuance jobs in the store (all instances), due or not.", nil, nil)
	jobsOldestDesc = prometheus.NewDesc("acmegw_jobs_oldest_age_seconds",
		"Age of the oldest issuance job in the store; 0 when there is none.", nil, nil)
)

func (c *jobStatsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jobsQueuedDesc
	ch <- jobsOldestDesc
}

func (c *jobStatsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.store.JobStats(ctx)
	if err != nil {
		// A store outage shows in acmegw_storage_errors_total and /readyz;
		// the rest of the scrape stays useful.
		c.log.Warn("job stats for metrics", "err", err)
		return
	}
	age := 0.0
	if !st.OldestCreated.IsZero() {
		age = max(time.Since(st.OldestCreated).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(jobsQueuedDesc, prometheus.GaugeValue, float64(st.Queued))
	ch <- prometheus.MustNewConstMetric(jobsOldestDesc, prometheus.GaugeValue, age)
}
