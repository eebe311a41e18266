package aliyun

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/dcv"
)

// ticketPrefix marks this brand's tickets and their format version, so a
// ticket from another brand or an older format is recognised, not misread.
const ticketPrefix = "aliyun1."

// ticket is all Poll needs, since the issuance job keeps nothing else
// between calls and any instance may poll after a restart.
type ticket struct {
	// OrderID is Alibaba's application order.
	OrderID int64 `json:"o,string"`
	// Product is the product code the order bought, for messages.
	Product string `json:"p"`
	// Names are the order's DNS names, first the CN, as sent in Domain:
	// Alibaba's RecordDomain is relative to them.
	Names []string `json:"n"`
	// KeyHash is the base64url SHA-256 of the CSR's public key, to check
	// that the certificate Alibaba returns is for the key the client holds.
	KeyHash string `json:"k"`
	// Records are the DCV records published so far, to remove once the
	// order is decided, even by another instance.
	Records []record `json:"r,omitempty"`
}

// record is a published dcv.Record, with short keys to keep tickets small.
type record struct {
	Domain string `json:"d"`
	Name   string `json:"n"`
	Type   string `json:"t"`
	Value  string `json:"v"`
}

func (r record) dcv() dcv.Record {
	return dcv.Record{Domain: r.Domain, Name: r.Name, Type: r.Type, Value: r.Value}
}

func (t ticket) encode() string {
	b, err := json.Marshal(t)
	if err != nil {
		// Strings and an int64 always marshal.
		panic(fmt.Sprintf("aliyun: encoding ticket: %v", err))
	}
	return ticketPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// parseTicket decodes a ticket. A ticket this brand did not write can never
// be polled, so that is a permanent error.
func parseTicket(s string) (ticket, error) {
	var t ticket
	rest, ok := strings.CutPrefix(s, ticketPrefix)
	if !ok {
		return t, badTicket(s, "not an Alibaba Cloud CAS ticket")
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return t, badTicket(s, err.Error())
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, badTicket(s, err.Error())
	}
	if t.OrderID <= 0 {
		return t, badTicket(s, "no order id")
	}
	return t, nil
}

func badTicket(s, why string) error {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return &issuer.Error{Type: "serverInternal", Permanent: true,
		Detail: fmt.Sprintf("aliyun: ticket %q cannot be polled: %s", s, why)}
}
