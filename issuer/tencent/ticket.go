package tencent

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/acmegw/acmegw/issuer/dcv"
)

// ticketVersion lets a later release read tickets an older one stored.
const ticketVersion = 1

// The steps of an order at Tencent, as the ticket records them.
const (
	// stepBought: CreateCertificate succeeded; the CSR and names are still
	// to be submitted (CertificateInfoSubmit, CertificateOrderSubmit).
	stepBought = "bought"
	// stepSubmitted: the order is with the CA; Poll follows its status.
	stepSubmitted = "submitted"
)

// ticket is the state of one order between Submit and the Polls. It is
// stored by the gateway as JSON, so everything Poll needs after a restart
// is here, and nothing secret.
type ticket struct {
	V int `json:"v"`
	// ID is Tencent's CertificateId.
	ID   string `json:"id"`
	Step string `json:"step"`
	// CSR is the PEM CSR, kept only until it is submitted (stepBought).
	CSR string `json:"csr,omitempty"`
	// Names are the names the certificate must carry, the common name
	// first.
	Names []string `json:"names"`
	// SPKI is the hex SHA-256 of the CSR's public key: the issued leaf must
	// carry that key, or it is of no use to the ACME client.
	SPKI string `json:"spki"`
	// Published are the DCV records published so far, to be removed once
	// the order leaves validation.
	Published []record `json:"published,omitempty"`
	// Checked is when CompleteCertificate last succeeded (Unix seconds).
	Checked int64 `json:"checked,omitempty"`
}

func (t *ticket) encode() string {
	b, err := json.Marshal(t)
	if err != nil {
		// A struct of strings and slices of strings always marshals.
		panic(fmt.Sprintf("tencent: encoding ticket: %v", err))
	}
	return string(b)
}

// decodeTicket parses a ticket; one it cannot read is a permanent problem,
// since no later Poll will read it either.
func decodeTicket(s string) (*ticket, error) {
	var t ticket
	if err := json.Unmarshal([]byte(s), &t); err != nil {
		return nil, refuse("serverInternal", "unreadable ticket: %v", err)
	}
	if t.V != ticketVersion || t.ID == "" || (t.Step != stepBought && t.Step != stepSubmitted) {
		return nil, refuse("serverInternal", "ticket is not a version %d Tencent Cloud ticket with a certificate id and a step", ticketVersion)
	}
	if t.Step == stepBought && t.CSR == "" {
		return nil, refuse("serverInternal", "ticket for certificate %s lost its CSR before submission", t.ID)
	}
	return &t, nil
}

// record is a dcv.Record as the ticket stores it: with its own JSON names,
// so that stored tickets do not depend on how package dcv evolves.
type record struct {
	Domain string `json:"domain"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	Value  string `json:"value"`
}

func toRecord(r dcv.Record) record {
	return record{Domain: r.Domain, Name: r.Name, Type: r.Type, Value: r.Value}
}

func (r record) dcv() dcv.Record {
	return dcv.Record{Domain: r.Domain, Name: r.Name, Type: r.Type, Value: r.Value}
}

// published reports whether r is among the records already published.
func (t *ticket) published(r dcv.Record) bool {
	return slices.Contains(t.Published, toRecord(r))
}
