//go:build unix

package dcv

import (
	"os/exec"
	"syscall"
)

// killProcessGroup makes a timeout kill the script together with whatever
// it started (a shell script's sleep, curl, ...): killing only the shell
// would leave its children running, holding the output pipes open.
func killProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
