//go:build !unix

package dcv

import "os/exec"

// killProcessGroup leaves the default, killing the script alone, where
// process groups do not exist; WaitDelay still bounds the wait.
func killProcessGroup(*exec.Cmd) {}
