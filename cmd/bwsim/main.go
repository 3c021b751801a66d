// Command bwsim simulates and profiles the memory-bandwidth trade-offs of
// dense and sparse (SparQ and others) attention in LLM decoding.
//
// The commands are thin: they parse flags and config, call the library
// packages (kernels, traces, hwmodel, roofline, plots) and write results.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the process exit code: 0 on
// success, 2 for bad input (flags, values, config files), 1 for failures
// during the work.
func run(ctx context.Context, args []string, stdout, stderr *os.File) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "bwsim: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) || isCobraUsageError(err) {
		return 2
	}
	return 1
}
