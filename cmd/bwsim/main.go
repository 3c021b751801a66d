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
	"io"
	"os"
	"os/signal"
	"runtime/debug"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the process exit code: 0 on
// success, 2 for bad input (flags, values, config files), 1 for failures
// during the work. Commands that draw on a terminal (the sweep's progress
// bar) do so only when stderr is an *os.File. A panic in the command is a
// bug: it is reported in one line (with the stack when $BWSIM_DEBUG is
// set) and exits with 1.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "bwsim: internal error: %v (a bug in bwsim: please report it with the command line)\n", r)
			if os.Getenv("BWSIM_DEBUG") != "" {
				stderr.Write(debug.Stack())
			}
			code = 1
		}
	}()
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
