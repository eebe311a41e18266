package local

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func openCA(t testing.TB, dir string, opts Options) *CA {
	t.Helper()
	ca, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return ca
}

func TestOpenCreatesThenReloads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca") // does not exist yet
	ca := openCA(t, dir, Options{})

	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode = %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	for name, want := range map[string]os.FileMode{
		rootFile: 0o644, rootKeyFile: 0o600, interFile: 0o644, interKeyFile: 0o600,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode = %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	if entries, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(entries) != 0 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(dir, altRootFile)); err == nil {
		t.Errorf("alternate root created without Options.AlternateChain")
	}

	root, inter := ca.Root(), ca.Intermediate()
	if !strings.HasPrefix(root.Subject.CommonName, "acmegw Root CA ") {
		t.Errorf("root CN = %q", root.Subject.CommonName)
	}
	if !root.IsCA || root.MaxPathLen != 1 || root.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("root: IsCA=%v MaxPathLen=%d KeyUsage=%v", root.IsCA, root.MaxPathLen, root.KeyUsage)
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Errorf("root not self-signed: %v", err)
	}
	if d := root.NotAfter.Sub(root.NotBefore); d != rootLifetime {
		t.Errorf("root lifetime = %v", d)
	}
	if !inter.IsCA || inter.MaxPathLen != 0 || !inter.MaxPathLenZero {
		t.Errorf("intermediate: IsCA=%v MaxPathLen=%d zero=%v", inter.IsCA, inter.MaxPathLen, inter.MaxPathLenZero)
	}
	if len(inter.SubjectKeyId) == 0 || !bytes.Equal(inter.AuthorityKeyId, root.SubjectKeyId) {
		t.Errorf("intermediate SKI %x AKI %x, root SKI %x", inter.SubjectKeyId, inter.AuthorityKeyId, root.SubjectKeyId)
	}
	if err := inter.CheckSignatureFrom(root); err != nil {
		t.Errorf("intermediate not signed by root: %v", err)
	}
	if d := inter.NotAfter.Sub(inter.NotBefore); d != interLifetime {
		t.Errorf("intermediate lifetime = %v", d)
	}

	if want := filepath.Join(dir, rootFile); ca.RootPath() != want || !filepath.IsAbs(ca.RootPath()) {
		t.Errorf("RootPath = %q, want %q", ca.RootPath(), want)
	}
	onDisk, _ := os.ReadFile(ca.RootPath())
	if !bytes.Equal(onDisk, ca.RootPEM()) {
		t.Errorf("RootPEM differs from root.pem")
	}

	again := openCA(t, dir, Options{KeyType: "rsa"}) // key type only applies to new keys
	if !bytes.Equal(again.Root().Raw, root.Raw) || !bytes.Equal(again.Intermediate().Raw, inter.Raw) {
		t.Fatalf("reopened CA has a different root or intermediate")
	}
}

func TestOpenRSA(t *testing.T) {
	ca := openCA(t, t.TempDir(), Options{KeyType: "rsa", Name: "Example Corp"})
	for _, c := range []*x509.Certificate{ca.Root(), ca.Intermediate()} {
		k, ok := c.PublicKey.(*rsa.PublicKey)
		if !ok || k.N.BitLen() != 3072 {
			t.Errorf("%s: key %T, want RSA-3072", c.Subject.CommonName, c.PublicKey)
		}
		if !strings.HasPrefix(c.Subject.CommonName, "Example Corp ") || c.Subject.Organization[0] != "Example Corp" {
			t.Errorf("subject = %v", c.Subject)
		}
	}
}

func TestOpenBadKeyType(t *testing.T) {
	if _, err := Open(t.TempDir(), Options{KeyType: "ed25519"}); err == nil {
		t.Fatal("Open accepted key type ed25519")
	}
}

func TestOpenPartialDir(t *testing.T) {
	dir := t.TempDir()
	ca := openCA(t, dir, Options{})
	if err := os.Remove(filepath.Join(dir, interKeyFile)); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), interKeyFile) {
		t.Fatalf("Open of a partial dir: err = %v, want one naming %s", err, interKeyFile)
	}
	onDisk, _ := os.ReadFile(filepath.Join(dir, rootFile))
	if !bytes.Equal(onDisk, ca.RootPEM()) {
		t.Fatal("root.pem was overwritten")
	}
	if _, err := os.Stat(filepath.Join(dir, interKeyFile)); err == nil {
		t.Fatal("missing key was recreated")
	}

	// A lone root.pem someone copied in is not a CA either.
	lone := t.TempDir()
	if err := os.WriteFile(filepath.Join(lone, rootFile), ca.RootPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(lone, Options{}); err == nil {
		t.Fatal("Open accepted a dir holding only root.pem")
	}
}

func TestOpenPartialAlternate(t *testing.T) {
	dir := t.TempDir()
	openCA(t, dir, Options{AlternateChain: true})
	if err := os.Remove(filepath.Join(dir, altInterFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{AlternateChain: true}); err == nil || !strings.Contains(err.Error(), altInterFile) {
		t.Fatalf("err = %v, want one naming %s", err, altInterFile)
	}
	// Without the alternate chain the leftover alternate files do not matter.
	openCA(t, dir, Options{})
}

func TestOpenRejectsMismatchedFiles(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	openCA(t, a, Options{})
	openCA(t, b, Options{})
	// An intermediate from another CA: not signed by this root.
	data, _ := os.ReadFile(filepath.Join(b, interFile))
	if err := os.WriteFile(filepath.Join(a, interFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(a, Options{}); err == nil {
		t.Fatal("Open accepted an intermediate signed by another root")
	}

	c := t.TempDir()
	openCA(t, c, Options{})
	data, _ = os.ReadFile(filepath.Join(b, interKeyFile))
	if err := os.WriteFile(filepath.Join(c, interKeyFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(c, Options{}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("Open with a foreign intermediate key: err = %v", err)
	}

	d := t.TempDir()
	openCA(t, d, Options{})
	if err := os.WriteFile(filepath.Join(d, rootFile), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(d, Options{}); err == nil {
		t.Fatal("Open accepted a garbage root.pem")
	}
}

func TestOpenIgnoresLeftoverTemps(t *testing.T) {
	dir := t.TempDir()
	// What a crash before the renames leaves behind.
	if err := os.WriteFile(filepath.Join(dir, "."+rootFile+".123.tmp"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	openCA(t, dir, Options{})
}

func TestOpenConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	const n = 8
	roots := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ca, err := Open(dir, Options{})
			errs[i] = err
			if err == nil {
				roots[i] = ca.Root().Raw
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Open #%d: %v", i, errs[i])
		}
		if !bytes.Equal(roots[i], roots[0]) {
			t.Fatalf("Open #%d got a different root", i)
		}
	}
}

// TestOpenConcurrentProcesses starts several copies of the test binary that
// Open one empty directory at the same moment, as tests of the whole gateway
// do with several instances.
func TestOpenConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := filepath.Join(t.TempDir(), "ca")
	const n = 4
	cmds := make([]*exec.Cmd, n)
	outs := make([]bytes.Buffer, n)
	for i := range n {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^TestHelperOpen$")
		cmds[i].Env = append(os.Environ(), "LOCALCA_HELPER_DIR="+dir)
		cmds[i].Stdout = &outs[i]
		cmds[i].Stderr = &outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if err := cmds[i].Wait(); err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, outs[i].String())
		}
	}
	ca := openCA(t, dir, Options{})
	sum := sha256.Sum256(ca.Root().Raw)
	want := "root " + hex.EncodeToString(sum[:])
	for i := range n {
		if !strings.Contains(outs[i].String(), want) {
			t.Errorf("process %d saw another root:\n%s", i, outs[i].String())
		}
	}
}

// TestHelperOpen is the child side of TestOpenConcurrentProcesses.
func TestHelperOpen(t *testing.T) {
	dir := os.Getenv("LOCALCA_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	ca, err := Open(dir, Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	sum := sha256.Sum256(ca.Root().Raw)
	fmt.Println("root", hex.EncodeToString(sum[:]))
	os.Exit(0)
}

func TestAlternateFilesAddedToExistingCA(t *testing.T) {
	dir := t.TempDir()
	plain := openCA(t, dir, Options{})
	if plain.AlternateRoot() != nil {
		t.Fatal("AlternateRoot set without Options.AlternateChain")
	}
	alt := openCA(t, dir, Options{AlternateChain: true})
	if !bytes.Equal(alt.Root().Raw, plain.Root().Raw) {
		t.Fatal("enabling the alternate chain changed the root")
	}
	if alt.AlternateRoot() == nil || !strings.HasPrefix(alt.AlternateRoot().Subject.CommonName, "acmegw Alternate Root CA ") {
		t.Fatalf("AlternateRoot = %v", alt.AlternateRoot())
	}
	again := openCA(t, dir, Options{AlternateChain: true})
	if !bytes.Equal(again.AlternateRoot().Raw, alt.AlternateRoot().Raw) {
		t.Fatal("reopened CA has a different alternate root")
	}
	if fi, err := os.Stat(filepath.Join(dir, altRootKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v %v", altRootKeyFile, fi.Mode().Perm(), err)
	}
}
