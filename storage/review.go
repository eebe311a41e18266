package storage

import "time"

// Review decisions.
const (
	ReviewApproved = "approved"
	ReviewRejected = "rejected"
)

// Review is an operator's decision on an order held for manual review: the
// manual brand in review mode issues once it reads ReviewApproved and
// refuses the order on ReviewRejected, with Reason shown to the client.
type Review struct {
	Decision string    `json:"decision"` // ReviewApproved or ReviewRejected
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}
