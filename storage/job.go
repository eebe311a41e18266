package storage

import "time"

// Job is a durable unit of issuance work, kept in the store so that any
// instance may run it and a crashed instance's job is taken over once its
// lease runs out. There is one job per order; its ID is the order's ID.
type Job struct {
	ID      string `json:"id"`
	OrderID string `json:"orderID"`
	// CSR is the finalize request's DER, kept to (re)submit to the brand.
	CSR []byte `json:"csr"`
	// Ticket is the brand's handle once it accepted the request, for Poll.
	Ticket string `json:"ticket,omitempty"`
	// Due is when the job should run next. A claim moves it to the end of
	// the lease, so a claimed job becomes due again only if its worker dies.
	Due time.Time `json:"due"`
	// Deadline is when the order stops waiting for the brand and becomes invalid.
	Deadline  time.Time `json:"deadline"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"lastError,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	Version   int64     `json:"version"`
}

// JobStats describes the job queue, for metrics.
type JobStats struct {
	// Queued is the number of jobs in the store, due or not.
	Queued int
	// OldestCreated is the creation time of the oldest job; zero when empty.
	OldestCreated time.Time
}
