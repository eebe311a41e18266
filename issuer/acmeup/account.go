package acmeup

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/go-acme/lego/v4/registration"
)

// accountFile is the name of the persisted account inside Config.KeyDir.
const accountFile = "account.json"

// accountState is what account.json holds. Directory records which upstream
// the registration belongs to: pointing the brand at another CA keeps the key
// but registers again.
type accountState struct {
	Directory    string                 `json:"directory"`
	Email        string                 `json:"email,omitempty"`
	Key          string                 `json:"key"` // PKCS#8 PEM
	Registration *registration.Resource `json:"registration,omitempty"`
}

// user is the registration.User lego asks for.
type user struct {
	email string
	key   crypto.Signer
	reg   *registration.Resource
}

func (u *user) GetEmail() string                        { return u.email }
func (u *user) GetRegistration() *registration.Resource { return u.reg }
func (u *user) GetPrivateKey() crypto.PrivateKey        { return u.key }

// account returns the upstream account key and URL, registering the account
// first if this process has not got one yet. Registration holds b.mu, so
// concurrent first calls register once; after that, account costs a lock.
func (b *Brand) account(ctx context.Context) (crypto.Signer, string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.regURI != "" {
		return b.key, b.regURI, nil
	}
	if b.key == nil {
		st, err := b.loadOrCreateKey()
		if err != nil {
			return nil, "", err
		}
		b.key = st.key
		if st.regURI != "" {
			b.regURI = st.regURI
			return b.key, b.regURI, nil
		}
	}
	reg, err := b.register(ctx, b.key)
	if err != nil {
		return nil, "", err
	}
	if err := b.saveRegistration(reg); err != nil {
		return nil, "", err
	}
	b.regURI = reg.URI
	return b.key, b.regURI, nil
}

// forgetAccount drops the registration when the upstream says the account no
// longer exists, so the next call registers the same key again.
func (b *Brand) forgetAccount(uri string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.regURI == uri {
		b.regURI = ""
	}
}

type loaded struct {
	key    crypto.Signer
	regURI string
}

// loadOrCreateKey reads account.json, or creates it with a fresh key. The key
// is saved before registering, so a crash between the upstream creating the
// account and the registration being saved loses nothing: registering the
// same key again returns the existing account.
func (b *Brand) loadOrCreateKey() (loaded, error) {
	if b.cfg.KeyDir == "" {
		k, err := newAccountKey()
		return loaded{key: k}, err
	}
	path := filepath.Join(b.cfg.KeyDir, accountFile)
	for range 2 {
		st, err := readAccount(path)
		if err == nil {
			k, err := parseKey(st.Key)
			if err != nil {
				return loaded{}, fmt.Errorf("%s: %w", path, err)
			}
			l := loaded{key: k}
			if st.Registration != nil && st.Directory == b.cfg.Directory {
				l.regURI = st.Registration.URI
			}
			return l, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return loaded{}, err
		}
		k, err := newAccountKey()
		if err != nil {
			return loaded{}, err
		}
		keyPEM, err := encodeKey(k)
		if err != nil {
			return loaded{}, err
		}
		data, err := json.MarshalIndent(accountState{Directory: b.cfg.Directory, Email: b.cfg.Email, Key: keyPEM}, "", "  ")
		if err != nil {
			return loaded{}, err
		}
		if err := os.MkdirAll(b.cfg.KeyDir, 0o700); err != nil {
			return loaded{}, fmt.Errorf("account directory: %w", err)
		}
		err = createExclusive(path, data)
		if err == nil {
			return loaded{key: k}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return loaded{}, err
		}
		// Another process sharing KeyDir created it first: use theirs.
	}
	return loaded{}, fmt.Errorf("%s keeps changing", path)
}

// register creates the upstream account for key (or finds it, if the key is
// already registered), agreeing to the upstream's terms of service: the
// operator who configured the brand has accepted them.
func (b *Brand) register(ctx context.Context, key crypto.Signer) (*registration.Resource, error) {
	core, err := b.core(ctx, key, "")
	if err != nil {
		return nil, err
	}
	u := &user{email: b.cfg.Email, key: key}
	r := registration.NewRegistrar(core, u)
	var reg *registration.Resource
	if b.cfg.EAB != nil {
		reg, err = r.RegisterWithExternalAccountBinding(registration.RegisterEABOptions{
			TermsOfServiceAgreed: true,
			Kid:                  b.cfg.EAB.KID,
			HmacEncoded:          b.cfg.EAB.HMAC,
		})
	} else {
		reg, err = r.Register(registration.RegisterOptions{TermsOfServiceAgreed: true})
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("register account: %w", ctx.Err())
		}
		return nil, fmt.Errorf("register account: %w", classify(err))
	}
	if reg == nil || reg.URI == "" {
		return nil, errors.New("register account: no account URL in the response")
	}
	return reg, nil
}

// saveRegistration records reg next to the key, replacing account.json
// atomically.
func (b *Brand) saveRegistration(reg *registration.Resource) error {
	if b.cfg.KeyDir == "" {
		return nil
	}
	keyPEM, err := encodeKey(b.key)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(accountState{
		Directory:    b.cfg.Directory,
		Email:        b.cfg.Email,
		Key:          keyPEM,
		Registration: reg,
	}, "", "  ")
	if err != nil {
		return err
	}
	if err := replaceFile(filepath.Join(b.cfg.KeyDir, accountFile), data); err != nil {
		return err
	}
	return nil
}

func readAccount(path string) (*accountState, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st accountState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &st, nil
}

// newAccountKey makes a P-256 key: ES256 is what every ACME CA accepts.
func newAccountKey() (crypto.Signer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("account key: %w", err)
	}
	return k, nil
}

func encodeKey(k crypto.Signer) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", fmt.Errorf("account key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

func parseKey(s string) (crypto.Signer, error) {
	blk, _ := pem.Decode([]byte(s))
	if blk == nil {
		return nil, errors.New("account key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("account key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("account key: %T cannot sign", k)
	}
	return signer, nil
}

// writeTemp writes data to a new 0600 file beside path and syncs it, so that
// a rename or link can then publish it whole.
func writeTemp(path string, data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp") // created 0600
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return tmp, nil
}

// createExclusive publishes data at path only if nothing is there yet (a
// hard link fails on an existing name), returning an fs.ErrExist error
// otherwise.
func createExclusive(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// replaceFile publishes data at path, replacing any previous content in one
// rename.
func replaceFile(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// syncDir makes a rename durable. Some platforms cannot sync a directory;
// the file itself is already synced, so errors are ignored.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
