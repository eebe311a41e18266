package issuer

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestError(t *testing.T) {
	refusal := &Error{Type: "rejectedIdentifier", Detail: "brand X refuses .bank names", Permanent: true}
	wrapped := fmt.Errorf("submit: %w", refusal)
	if got := wrapped.Error(); got != "submit: brand X refuses .bank names" {
		t.Errorf("Error() = %q", got)
	}
	if e, ok := AsError(wrapped); !ok || e != refusal || !IsPermanent(wrapped) {
		t.Errorf("AsError(wrapped) = %v, %v; IsPermanent %v", e, ok, IsPermanent(wrapped))
	}
	busy := &Error{Type: "rateLimited", RetryAfter: time.Minute}
	if busy.Error() != "rateLimited" || IsPermanent(busy) {
		t.Errorf("transient error: %q permanent %v", busy.Error(), IsPermanent(busy))
	}
	if _, ok := AsError(errors.New("connection reset")); ok || IsPermanent(errors.New("x")) {
		t.Error("a plain error counts as an *Error")
	}
}
