package interop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The challenge responders a cell starts for clients that do not answer
// challenges themselves: a web server for http-01 files (webroot clients),
// a TLS server for tls-alpn-01 certificates, and an HTTP endpoint through
// which a client's hook script (a separate process) publishes dns-01 TXT
// records and tls-alpn-01 digests. All listen on 127.0.0.1 and stop when
// the cell ends.

const wellKnownPrefix = "/.well-known/acme-challenge/"

// serve runs srv on l until the cell ends.
func serve(c *Cell, l net.Listener, srv *http.Server) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	c.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
}

// listen binds 127.0.0.1:port, retrying for a moment: the previous cell's
// solver (a client process) may still be letting go of the port.
func listen(c *Cell, port int) net.Listener {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			return l
		}
		if time.Now().After(deadline) {
			c.Fatalf("listen %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ServeWebroot serves dir as /.well-known/acme-challenge/ on port, for
// clients that write http-01 files into a webroot.
func ServeWebroot(c *Cell, port int, dir string) {
	mux := http.NewServeMux()
	mux.Handle(wellKnownPrefix, http.StripPrefix(wellKnownPrefix, http.FileServer(http.Dir(dir))))
	serve(c, listen(c, port), &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second})
}

// HTTP01Server answers http-01 from tokens the cell adds.
type HTTP01Server struct {
	mu     sync.Mutex
	tokens map[string]string
}

// ServeHTTP01 starts an http-01 responder on port.
func ServeHTTP01(c *Cell, port int) *HTTP01Server {
	h := &HTTP01Server{tokens: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc(wellKnownPrefix, func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		ka, ok := h.tokens[strings.TrimPrefix(r.URL.Path, wellKnownPrefix)]
		h.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(ka))
	})
	serve(c, listen(c, port), &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second})
	return h
}

// cellHTTP01 is the cell's http-01 responder on s.HTTPPort, started on first use.
func cellHTTP01(c *Cell, s *Server) *HTTP01Server {
	return c.value("http01", func() any { return ServeHTTP01(c, s.HTTPPort) }).(*HTTP01Server)
}

// cellALPN is the cell's tls-alpn-01 responder on s.TLSPort, started on first use.
func cellALPN(c *Cell, s *Server) *ALPNServer {
	return c.value("alpn", func() any { return ServeALPN(c, s.TLSPort, "") }).(*ALPNServer)
}

// Set publishes a key authorization for a token.
func (h *HTTP01Server) Set(token, keyAuth string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tokens[token] = keyAuth
}

// ALPNServer answers tls-alpn-01 with the challenge certificate for the
// name the validator sends as SNI.
type ALPNServer struct {
	mu    sync.Mutex
	certs map[string]*tls.Certificate
	dir   string // also look for <dir>/<name>.crt.pem and .key.pem (dehydrated's ALPNCERTDIR)
}

// ServeALPN starts a tls-alpn-01 responder on port; dir, when not empty,
// is a directory of <name>.crt.pem/<name>.key.pem pairs to serve as well.
func ServeALPN(c *Cell, port int, dir string) *ALPNServer {
	a := &ALPNServer{certs: map[string]*tls.Certificate{}, dir: dir}
	l := listen(c, port)
	cfg := &tls.Config{
		NextProtos: []string{"acme-tls/1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return a.get(strings.ToLower(strings.TrimSuffix(hello.ServerName, ".")))
		},
	}
	tl := tls.NewListener(l, cfg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				_ = conn.(*tls.Conn).Handshake()
			}()
		}
	}()
	c.Cleanup(func() { l.Close(); <-done })
	return a
}

func (a *ALPNServer) get(name string) (*tls.Certificate, error) {
	a.mu.Lock()
	cert, ok := a.certs[name]
	a.mu.Unlock()
	if ok {
		return cert, nil
	}
	if a.dir != "" {
		crt, err := tls.LoadX509KeyPair(filepath.Join(a.dir, name+".crt.pem"), filepath.Join(a.dir, name+".key.pem"))
		if err == nil {
			return &crt, nil
		}
	}
	return nil, fmt.Errorf("no tls-alpn-01 certificate for %q", name)
}

// Set serves cert for the SNI name.
func (a *ALPNServer) Set(name string, cert *tls.Certificate) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.certs[strings.ToLower(name)] = cert
}

// Remove stops serving a name.
func (a *ALPNServer) Remove(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.certs, strings.ToLower(name))
}

var oidACMEIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}

// alpnCertFromDigest builds a tls-alpn-01 certificate (RFC 8737 §3) for a
// DNS name from the SHA-256 digest of the key authorization, which is what
// hook-driven clients (uacme) hand over.
func alpnCertFromDigest(name string, digest []byte) (*tls.Certificate, error) {
	value, err := asn1.Marshal(digest)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		BasicConstraintsValid: true,
		ExtraExtensions:       []pkix.Extension{{Id: oidACMEIdentifier, Critical: true, Value: value}},
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// HookServer is the loopback endpoint through which a client's hook
// script publishes challenge answers:
//
//	curl -d name=_acme-challenge.example.test -d value=… $URL/txt/add
//	curl -d name=example.test -d value=<base64url digest> $URL/alpn/add
type HookServer struct {
	URL string

	mu      sync.Mutex
	added   []string
	removed []string
}

// StartHookServer starts the endpoint; TXT records go into s.DNS, ALPN
// certificates into alpn (may be nil when the cell needs none).
func StartHookServer(c *Cell, s *Server, alpn *ALPNServer) *HookServer {
	lookPath(c, "curl") // the hook scripts post with curl
	h := &HookServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, value := r.PostFormValue("name"), r.PostFormValue("value")
		if r.Method != http.MethodPost || name == "" || value == "" {
			http.Error(w, "POST name and value", http.StatusBadRequest)
			return
		}
		var err error
		switch r.URL.Path {
		case "/txt/add":
			s.DNS.AddTXT(name, value)
			h.note(&h.added, name, value)
		case "/txt/remove":
			s.DNS.RemoveTXT(name, value)
			h.note(&h.removed, name, value)
		case "/alpn/add":
			var digest []byte
			if digest, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(value, "=")); err == nil {
				var cert *tls.Certificate
				if cert, err = alpnCertFromDigest(name, digest); err == nil && alpn != nil {
					alpn.Set(name, cert)
				}
			}
			h.note(&h.added, name, value)
		case "/alpn/remove":
			if alpn != nil {
				alpn.Remove(name)
			}
			h.note(&h.removed, name, value)
		default:
			http.NotFound(w, r)
			return
		}
		if err == nil && alpn == nil && strings.HasPrefix(r.URL.Path, "/alpn/") {
			err = errors.New("this cell serves no tls-alpn-01")
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = fmt.Fprintln(w, "ok")
	}))
	c.Cleanup(srv.Close)
	h.URL = srv.URL
	return h
}

func (h *HookServer) note(list *[]string, name, value string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	*list = append(*list, name+" "+value)
}

// Added and Removed list what the hooks published and withdrew.
func (h *HookServer) Added() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.added...)
}

// Removed: see Added.
func (h *HookServer) Removed() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.removed...)
}

// Curl is the shell command that posts name and value (shell words,
// usually variables) to path ("txt/add", "alpn/remove", ...).
func (h *HookServer) Curl(path, name, value string) string {
	return fmt.Sprintf(`curl -fsS --noproxy '*' --max-time 10 --data-urlencode "name=%s" --data-urlencode "value=%s" %s/%s`,
		name, value, h.URL, path)
}

// mkdir creates a directory under the cell's temp dir.
func mkdir(c *Cell, parts ...string) string {
	dir := filepath.Join(append([]string{c.TempDir()}, parts...)...)
	c.Must(os.MkdirAll(dir, 0o755), "mkdir "+dir)
	return dir
}

// SolverPort picks a free 127.0.0.1 port for a lane's solvers (where the
// server connects for http-01 or tls-alpn-01) outside the kernel's
// ephemeral range. Solvers bind their port only while a challenge is up;
// an ephemeral port could meanwhile be taken by one of the thousands of
// outgoing loopback connections the matrix makes (and stay taken in
// TIME_WAIT for a minute), and the next bind would fail.
func SolverPort(tb testing.TB) int {
	tb.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	const base = 10000
	if low <= base+1000 {
		// An unusual range: fall back to any free port.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	solverPorts.mu.Lock()
	defer solverPorts.mu.Unlock()
	for range 1000 {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(low-base)))
		if err != nil {
			tb.Fatal(err)
		}
		port := base + int(n.Int64())
		if solverPorts.taken[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		if solverPorts.taken == nil {
			solverPorts.taken = map[int]bool{}
		}
		solverPorts.taken[port] = true
		return port
	}
	tb.Fatalf("no free port in %d-%d", base, low-1)
	return 0
}

// solverPorts are the ports SolverPort handed out in this process.
var solverPorts struct {
	mu    sync.Mutex
	taken map[int]bool
}
