package dcv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// DefaultExecTimeout bounds one run of an Exec script when ExecConfig sets
// none: long enough for a DNS API call and a propagation wait, short enough
// that a hung script does not hold a brand job for long.
const DefaultExecTimeout = 2 * time.Minute

// execWaitDelay is how long a killed script's children may keep its output
// pipes open before acmegw stops waiting for them.
const execWaitDelay = 5 * time.Second

// execOutputLimit keeps the tail of a script's output for the error, enough
// to see why it failed without filling logs.
const execOutputLimit = 2048

// ExecConfig configures an Exec Publisher.
type ExecConfig struct {
	// Command is the path of the operator's program.
	Command string
	// Timeout bounds each run; DefaultExecTimeout if 0.
	Timeout time.Duration
	// Env is added to acmegw's own environment for the program, as
	// "KEY=value" entries (e.g. the DNS API credential's variable names).
	Env []string
}

// Exec is a dns-provider Publisher that runs an operator's program, the way
// lego's exec provider does, but with the brand's record verbatim:
//
//	<command> present <name> <type> <value>
//	<command> cleanup <name> <type> <value>
//
// name is fully qualified without the trailing dot (_dnsauth.example.com),
// type is TXT or CNAME, value is the brand's token (or, for CNAME, the target
// name without the trailing dot). ACMEGW_DCV_DOMAIN holds the domain being
// validated. The program must exit 0 once the record is in place (or gone),
// and should succeed when asked to add a record that exists or remove one
// that does not, since a brand job may retry. Arguments go straight to the
// program, no shell: a value cannot inject commands. The tail of the
// program's output goes into the error when it fails, so it should print no
// secrets.
type Exec struct {
	cfg ExecConfig
}

var _ Publisher = (*Exec)(nil)

// NewExec checks cfg and returns the Publisher.
func NewExec(cfg ExecConfig) (*Exec, error) {
	if cfg.Command == "" {
		return nil, errors.New("dcv: exec: command is required")
	}
	// Looked up now so a wrong path fails at start-up, not at the first order.
	if _, err := exec.LookPath(cfg.Command); err != nil {
		return nil, fmt.Errorf("dcv: exec: command %s: %w", cfg.Command, err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultExecTimeout
	}
	return &Exec{cfg: cfg}, nil
}

// Method implements Publisher.
func (e *Exec) Method() string { return MethodDNSProvider }

// String describes the Publisher for logs.
func (e *Exec) String() string { return fmt.Sprintf("exec(%s)", e.cfg.Command) }

// Publish implements Publisher by running "<command> present ...".
func (e *Exec) Publish(ctx context.Context, r Record) error { return e.run(ctx, "present", r) }

// Unpublish implements Publisher by running "<command> cleanup ...".
func (e *Exec) Unpublish(ctx context.Context, r Record) error { return e.run(ctx, "cleanup", r) }

func (e *Exec) run(ctx context.Context, action string, r Record) error {
	rec, err := normalize(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.cfg.Command, action, rec.Name, rec.Type, rec.Value)
	cmd.Env = append(append(os.Environ(), e.cfg.Env...), "ACMEGW_DCV_DOMAIN="+rec.Domain)
	cmd.WaitDelay = execWaitDelay
	killProcessGroup(cmd)
	out := &tailBuffer{max: execOutputLimit}
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	if err == nil {
		return nil
	}
	what := fmt.Sprintf("dcv: exec: %s %s %s %s", e.cfg.Command, action, rec.Name, rec.Type)
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("no result within %s: %w", e.cfg.Timeout, ctx.Err())
		} else {
			err = ctx.Err()
		}
	}
	if o := strings.TrimSpace(out.String()); o != "" {
		return fmt.Errorf("%s: %w; output: %s", what, err, o)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// tailBuffer keeps the last max bytes written to it; the end of a failing
// script's output is where its error is.
type tailBuffer struct {
	max int

	mu        sync.Mutex
	buf       []byte
	truncated bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.truncated = true
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.truncated {
		return "…" + string(b.buf)
	}
	return string(b.buf)
}
