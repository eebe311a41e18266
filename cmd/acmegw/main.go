// Command acmegw is the ACME certificate-authority gateway. With no
// subcommand it serves; see "acmegw help".
package main

import (
	"fmt"
	"os"
)

const usage = `acmegw: an ACME (RFC 8555) certificate-authority gateway

Usage:
  acmegw [serve] [flags]   serve ACME (the default); "acmegw serve -h" lists the flags
  acmegw ari reschedule [--redis URL] [--start T] [--end T] SERIAL...
                           move certificates' ARI renewal window (incident response)
  acmegw bench --directory URL --dns-listen ADDR [flags]   load-test an ACME server; "acmegw bench -h"
  acmegw eab add|list|revoke [--data-dir DIR | --redis URL] ...
                           manage External Account Binding keys without a restart
  acmegw preload --redis URL --orders N [--accounts M]   fill a Redis store with orders (growth benchmarks)
  acmegw review approve|reject ORDER-ID [--reason TEXT] [--redis URL]
                           decide an order held for manual review (brand type manual, review: true)
  acmegw help              this text
`

func main() {
	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args)
	case "ari":
		err = ariCommand(args)
	case "eab":
		err = eabCommand(args)
	case "bench":
		err = benchCommand(args)
	case "preload":
		err = preloadCommand(args)
	case "review":
		err = reviewCommand(args)
	case "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "acmegw: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "acmegw:", err)
		os.Exit(1)
	}
}
