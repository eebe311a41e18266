// Package local is acmegw's built-in certificate authority, small and plain in
// the spirit of mkcert: a root and an intermediate kept as PEM files in one
// directory, created on first start and loaded on every later start so that
// clients' trust in the root survives restarts.
//
// Files under the directory:
//
//	root.pem               root certificate (the file to trust)
//	root-key.pem           root private key (0600)
//	intermediate.pem       intermediate certificate, signed by the root
//	intermediate-key.pem   intermediate private key (0600), signs every leaf
//	root-alt.pem           alternate root (only with Options.AlternateChain)
//	root-alt-key.pem       alternate root private key (0600)
//	intermediate-alt.pem   the same intermediate key and subject, signed by the alternate root
//	.lock                  lock file used only while files are being created
//
// A CA is read-only after Open and safe for concurrent use.
package local

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/acmegw/acmegw/issuer"
)

// File names inside the CA directory.
const (
	rootFile        = "root.pem"
	rootKeyFile     = "root-key.pem"
	interFile       = "intermediate.pem"
	interKeyFile    = "intermediate-key.pem"
	altRootFile     = "root-alt.pem"
	altRootKeyFile  = "root-alt-key.pem"
	altInterFile    = "intermediate-alt.pem"
	lockName        = ".lock"
	rootLifetime    = 10 * 365 * 24 * time.Hour
	interLifetime   = 5 * 365 * 24 * time.Hour
	caBackdate      = time.Hour // tolerates clients whose clocks run a little slow
	defaultValidity = 90 * 24 * time.Hour
	maxNames        = 100
)

var (
	baseFiles = []string{rootFile, rootKeyFile, interFile, interKeyFile}
	altFiles  = []string{altRootFile, altRootKeyFile, altInterFile}
)

// Options configures Open. The zero value is usable.
type Options struct {
	// KeyType is the key algorithm for newly created CA keys: "ecdsa" (the
	// default) makes P-256 keys, "rsa" makes RSA-3072 keys for the root and
	// intermediate (3072 because CA keys outlive leaf keys) and RSA-2048 keys
	// for ServerCertificate. It is ignored for files that already exist: the
	// keys on disk are what they are.
	KeyType string
	// Name prefixes the CA certificates' common names and is their
	// organization, e.g. "acmegw Root CA 1a2b3c". Default "acmegw".
	Name string
	// AlternateChain adds a second root that cross-signs the intermediate, so
	// every Result carries one alternate chain (leaf + cross-signed
	// intermediate) leading to that root. Missing alternate files are created
	// on the next Open, even in a directory that already holds a CA.
	AlternateChain bool
	// MaxValidity caps the lifetime of issued certificates; Submit refuses
	// longer ones. Zero means no cap.
	MaxValidity time.Duration
	// CAAIdentities are the issuer domains CAA records must allow for this CA,
	// reported by Describe. Nil means CAA is not checked for this brand.
	CAAIdentities []string
}

// CA is the built-in certificate authority. It implements issuer.Issuer.
type CA struct {
	dir  string
	opts Options

	root     *x509.Certificate
	rootPEM  []byte
	inter    *x509.Certificate
	interPEM []byte
	interKey crypto.Signer

	altRoot     *x509.Certificate // nil unless Options.AlternateChain
	altInterPEM []byte
}

var _ issuer.Issuer = (*CA)(nil)

// Open loads the CA kept in dir, creating dir (0700) and a new root and
// intermediate first if dir holds none. If only some of the CA files exist,
// Open fails rather than overwrite them. Several processes may Open the same
// empty dir at once: creation is serialized by a lock file and every file is
// written to a temporary name and renamed into place, so all of them end up
// with the same CA.
func Open(dir string, opts Options) (*CA, error) {
	if opts.KeyType == "" {
		opts.KeyType = "ecdsa"
	}
	if opts.KeyType != "ecdsa" && opts.KeyType != "rsa" {
		return nil, fmt.Errorf("local ca: unknown key type %q (want \"ecdsa\" or \"rsa\")", opts.KeyType)
	}
	if opts.Name == "" {
		opts.Name = "acmegw"
	}
	if opts.MaxValidity < 0 {
		return nil, fmt.Errorf("local ca: negative MaxValidity %v", opts.MaxValidity)
	}
	opts.CAAIdentities = append([]string(nil), opts.CAAIdentities...)
	// An absolute path, because RootPath is printed at start-up for people to
	// copy into their trust stores.
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local ca: directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("local ca: create directory: %w", err)
	}
	ca := &CA{dir: abs, opts: opts}

	if err := ensureFiles(abs, baseFiles, func() ([]file, error) { return newBaseFiles(opts) }); err != nil {
		return nil, err
	}
	if err := ca.loadBase(); err != nil {
		return nil, err
	}
	if opts.AlternateChain {
		if err := ensureFiles(abs, altFiles, func() ([]file, error) { return newAltFiles(opts, ca.inter) }); err != nil {
			return nil, err
		}
		if err := ca.loadAlt(); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

// RootPath returns the absolute path of root.pem, the certificate clients
// must trust.
func (ca *CA) RootPath() string { return filepath.Join(ca.dir, rootFile) }

// RootPEM returns the root certificate in PEM form. The slice is a copy.
func (ca *CA) RootPEM() []byte { return bytes.Clone(ca.rootPEM) }

// Root returns the root certificate. Callers must not modify it.
func (ca *CA) Root() *x509.Certificate { return ca.root }

// Intermediate returns the intermediate certificate that signs leaves.
// Callers must not modify it.
func (ca *CA) Intermediate() *x509.Certificate { return ca.inter }

// AlternateRoot returns the alternate root, or nil unless the CA was opened
// with Options.AlternateChain. Callers must not modify it.
func (ca *CA) AlternateRoot() *x509.Certificate { return ca.altRoot }

// loadBase reads and cross-checks the root and intermediate.
func (ca *CA) loadBase() error {
	root, err := readCert(ca.dir, rootFile)
	if err != nil {
		return err
	}
	if err := checkCA(root, root, rootFile); err != nil {
		return err
	}
	if err := checkKeyFile(ca.dir, rootKeyFile, root); err != nil {
		return err
	}
	inter, err := readCert(ca.dir, interFile)
	if err != nil {
		return err
	}
	if err := checkCA(inter, root, interFile); err != nil {
		return err
	}
	// Leaves get their AuthorityKeyId from the intermediate's SubjectKeyId;
	// without it clients (and ARI cert ids) cannot match issuer to leaf.
	if len(inter.SubjectKeyId) == 0 {
		return fmt.Errorf("local ca: %s has no subject key identifier", filepath.Join(ca.dir, interFile))
	}
	key, err := readKey(ca.dir, interKeyFile, inter)
	if err != nil {
		return err
	}
	ca.root, ca.rootPEM = root, encodeCert(root.Raw)
	ca.inter, ca.interPEM, ca.interKey = inter, encodeCert(inter.Raw), key
	return nil
}

// loadAlt reads the alternate root and the cross-signed intermediate, and
// checks the latter really is our intermediate under another issuer.
func (ca *CA) loadAlt() error {
	altRoot, err := readCert(ca.dir, altRootFile)
	if err != nil {
		return err
	}
	if err := checkCA(altRoot, altRoot, altRootFile); err != nil {
		return err
	}
	if err := checkKeyFile(ca.dir, altRootKeyFile, altRoot); err != nil {
		return err
	}
	cross, err := readCert(ca.dir, altInterFile)
	if err != nil {
		return err
	}
	if err := checkCA(cross, altRoot, altInterFile); err != nil {
		return err
	}
	if !bytes.Equal(cross.RawSubjectPublicKeyInfo, ca.inter.RawSubjectPublicKeyInfo) ||
		!bytes.Equal(cross.RawSubject, ca.inter.RawSubject) {
		return fmt.Errorf("local ca: %s does not certify the key and subject of %s",
			filepath.Join(ca.dir, altInterFile), interFile)
	}
	ca.altRoot, ca.altInterPEM = altRoot, encodeCert(cross.Raw)
	return nil
}

// checkCA verifies that cert is a CA certificate signed by parent.
func checkCA(cert, parent *x509.Certificate, name string) error {
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return fmt.Errorf("local ca: %s is not a CA certificate", name)
	}
	if err := cert.CheckSignatureFrom(parent); err != nil {
		return fmt.Errorf("local ca: %s is not signed by %s: %w", name, parent.Subject.CommonName, err)
	}
	return nil
}

// checkKeyFile makes sure a key file we do not otherwise need (the roots')
// still matches its certificate, so a mixed-up directory fails at start-up
// instead of years later when someone tries to re-sign with it.
func checkKeyFile(dir, name string, cert *x509.Certificate) error {
	_, err := readKey(dir, name, cert)
	return err
}

func readCert(dir, name string) (*x509.Certificate, error) {
	path := filepath.Join(dir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("local ca: read certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("local ca: %s: no PEM CERTIFICATE block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("local ca: %s: %w", path, err)
	}
	return cert, nil
}

// readKey loads a private key (PKCS#8, or the older SEC 1 and PKCS#1 forms so
// an existing mkcert-style CA can be dropped in) and checks it matches cert.
func readKey(dir, name string, cert *x509.Certificate) (crypto.Signer, error) {
	path := filepath.Join(dir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("local ca: read key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("local ca: %s: no PEM block", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		err = fmt.Errorf("unexpected PEM type %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("local ca: %s: %w", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("local ca: %s: key of type %T cannot sign", path, key)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("local ca: %s does not match the public key in its certificate", path)
	}
	return signer, nil
}

// newBaseFiles creates a root and an intermediate signed by it.
func newBaseFiles(opts Options) ([]file, error) {
	suffix := randomSuffix()
	rootKey, err := newCAKey(opts.KeyType)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	rootTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: opts.Name + " Root CA " + suffix, Organization: []string{opts.Name}},
		NotBefore:             now.Add(-caBackdate),
		NotAfter:              now.Add(-caBackdate + rootLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	rootDER, root, err := createCA(rootTmpl, nil, rootKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("local ca: create root: %w", err)
	}
	interKey, err := newCAKey(opts.KeyType)
	if err != nil {
		return nil, err
	}
	interTmpl := intermediateTemplate(now)
	interTmpl.Subject = pkix.Name{CommonName: opts.Name + " Intermediate CA " + suffix, Organization: []string{opts.Name}}
	interDER, _, err := createCA(interTmpl, root, interKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("local ca: create intermediate: %w", err)
	}
	rootKeyPEM, err := encodeKey(rootKey)
	if err != nil {
		return nil, err
	}
	interKeyPEM, err := encodeKey(interKey)
	if err != nil {
		return nil, err
	}
	// Certificates first, keys after: the order does not matter for
	// correctness (the set is checked as a whole) but reads naturally.
	return []file{
		{rootFile, encodeCert(rootDER), 0o644},
		{rootKeyFile, rootKeyPEM, 0o600},
		{interFile, encodeCert(interDER), 0o644},
		{interKeyFile, interKeyPEM, 0o600},
	}, nil
}

// newAltFiles creates the alternate root and cross-signs the existing
// intermediate with it: same subject, same key, same SubjectKeyId, so the
// leaves the intermediate signs chain to either root.
func newAltFiles(opts Options, inter *x509.Certificate) ([]file, error) {
	altKey, err := newCAKey(opts.KeyType)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	altTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: opts.Name + " Alternate Root CA " + randomSuffix(), Organization: []string{opts.Name}},
		NotBefore:             now.Add(-caBackdate),
		NotAfter:              now.Add(-caBackdate + rootLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	altDER, altRoot, err := createCA(altTmpl, nil, altKey.Public(), altKey)
	if err != nil {
		return nil, fmt.Errorf("local ca: create alternate root: %w", err)
	}
	crossTmpl := intermediateTemplate(now)
	crossTmpl.RawSubject = inter.RawSubject
	crossTmpl.SubjectKeyId = inter.SubjectKeyId
	crossTmpl.NotAfter = inter.NotAfter // both chains expire together
	crossDER, _, err := createCA(crossTmpl, altRoot, inter.PublicKey, altKey)
	if err != nil {
		return nil, fmt.Errorf("local ca: cross-sign intermediate: %w", err)
	}
	altKeyPEM, err := encodeKey(altKey)
	if err != nil {
		return nil, err
	}
	return []file{
		{altRootFile, encodeCert(altDER), 0o644},
		{altRootKeyFile, altKeyPEM, 0o600},
		{altInterFile, encodeCert(crossDER), 0o644},
	}, nil
}

// intermediateTemplate is the part of an intermediate shared by the primary
// and the cross-signed one. The serverAuth EKU marks it as a TLS issuing CA,
// as the CA/Browser Forum requires of subordinate CAs.
func intermediateTemplate(now time.Time) *x509.Certificate {
	return &x509.Certificate{
		NotBefore:             now.Add(-caBackdate),
		NotAfter:              now.Add(-caBackdate + interLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
}

// createCA signs tmpl (self-signed when parent is nil) with a fresh serial.
// Go fills SubjectKeyId for CA templates and AuthorityKeyId from the parent.
func createCA(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) ([]byte, *x509.Certificate, error) {
	tmpl.SerialNumber = newSerial()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return der, cert, nil
}

func newCAKey(keyType string) (crypto.Signer, error) {
	var (
		key crypto.Signer
		err error
	)
	switch keyType {
	case "rsa":
		key, err = rsa.GenerateKey(rand.Reader, 3072)
	default:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("local ca: generate %s key: %w", keyType, err)
	}
	return key, nil
}

// newSerial returns a random positive 128-bit serial. The top bit is always
// set so the lower-case hex form (Serial.Text(16)), used as the
// certificate id, is always 32 characters; 127 random bits remain.
func newSerial() *big.Int {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[0] |= 0x80
	return new(big.Int).SetBytes(b[:])
}

// randomSuffix tells apart the CAs of different installations in a trust
// store, as mkcert and Pebble do.
func randomSuffix() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("local ca: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ensureFiles makes sure every one of names exists in dir, calling create
// (under the directory lock) when none does. A partial set is an error: it
// means someone removed files or a crash hit between renames, and guessing
// which half to keep could silently replace a root that clients trust.
func ensureFiles(dir string, names []string, create func() ([]file, error)) error {
	present, err := presentFiles(dir, names)
	if err != nil {
		return err
	}
	if len(present) == len(names) {
		return nil // the common case, a restart: no lock taken
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	// Another process may have finished creating while we waited.
	if present, err = presentFiles(dir, names); err != nil {
		return err
	}
	switch len(present) {
	case len(names):
		return nil
	case 0:
		files, err := create()
		if err != nil {
			return err
		}
		return writeFiles(dir, files)
	default:
		return fmt.Errorf("local ca: %s holds %s but not %s; refusing to overwrite them: "+
			"restore the missing files, or move all of %s away to create a new CA",
			dir, strings.Join(present, ", "), strings.Join(missing(names, present), ", "),
			strings.Join(names, ", "))
	}
}

// presentFiles returns which of names exist in dir.
func presentFiles(dir string, names []string) ([]string, error) {
	var present []string
	for _, name := range names {
		_, err := os.Stat(filepath.Join(dir, name))
		switch {
		case err == nil:
			present = append(present, name)
		case errors.Is(err, fs.ErrNotExist):
		default:
			return nil, fmt.Errorf("local ca: %w", err)
		}
	}
	return present, nil
}

func missing(names, present []string) []string {
	var out []string
	for _, n := range names {
		found := false
		for _, p := range present {
			found = found || p == n
		}
		if !found {
			out = append(out, n)
		}
	}
	return out
}
