package aliyun

// Answers of the CAS 2020-04-07 operations the adapter calls, as far as it
// reads them. Field names are Alibaba's; testdata/aliyun holds recorded
// examples of each, checked by the fixture test.

// createResponse answers CreateCertificateForPackageRequest.
type createResponse struct {
	RequestID string `json:"RequestId"`
	OrderID   int64  `json:"OrderId"`
}

// Order states (DescribeCertificateState Type).
const (
	statePayed        = "payed"         // paid, application not yet with the CA
	stateDomainVerify = "domain_verify" // the CA waits for the DCV record or file
	stateProcess      = "process"       // the CA reviews
	stateCertificate  = "certificate"   // issued
	stateVerifyFail   = "verify_fail"   // the review failed
)

// describeResponse answers DescribeCertificateState.
type describeResponse struct {
	RequestID string `json:"RequestId"`
	Type      string `json:"Type"`
	// ValidateType is DNS or FILE, in domain_verify.
	ValidateType string `json:"ValidateType"`
	// RecordType (TXT or CNAME), RecordDomain (the host record, e.g.
	// "_dnsauth") and RecordValue describe the DNS record, in
	// domain_verify with DNS.
	RecordType   string `json:"RecordType"`
	RecordDomain string `json:"RecordDomain"`
	RecordValue  string `json:"RecordValue"`
	// Domain, Uri and Content describe the file, in domain_verify with
	// FILE.
	Domain  string `json:"Domain"`
	URI     string `json:"Uri"`
	Content string `json:"Content"`
	// Certificate is the PEM chain, leaf first, in certificate.
	Certificate string `json:"Certificate"`
	// PrivateKey is set only when Alibaba generated the key, never for a
	// CSR the gateway sent.
	PrivateKey string `json:"PrivateKey"`
	CertID     string `json:"CertId"`
	// Reason is not in Alibaba's published model, which gives no reason for
	// verify_fail; an answer that carries one (the fake does) has it shown
	// to the client.
	Reason string `json:"Reason"`
}

// listResponse answers ListUserCertificateOrder.
type listResponse struct {
	RequestID            string       `json:"RequestId"`
	TotalCount           int64        `json:"TotalCount"`
	CurrentPage          int64        `json:"CurrentPage"`
	ShowSize             int64        `json:"ShowSize"`
	CertificateOrderList []orderEntry `json:"CertificateOrderList"`
}

// orderEntry is one row of ListUserCertificateOrder. With OrderType CPACK
// (the default) rows are applications and carry OrderId but no serial;
// SerialNo comes only with OrderType CERT, whose rows lack the OrderId.
type orderEntry struct {
	OrderID     int64  `json:"OrderId"`
	InstanceID  string `json:"InstanceId"`
	Domain      string `json:"Domain"`
	ProductCode string `json:"ProductCode"`
	Status      string `json:"Status"`
	SerialNo    string `json:"SerialNo"`
	CertEndTime int64  `json:"CertEndTime"`
}

// requestIDResponse answers the operations that return nothing else.
type requestIDResponse struct {
	RequestID string `json:"RequestId"`
}
