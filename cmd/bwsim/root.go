package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// usageError marks bad input: a flag value, a config key, a file that does
// not parse. It maps to exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// badInput wraps err as a usage error.
func badInput(format string, a ...any) error {
	return &usageError{fmt.Errorf(format, a...)}
}

// asUsage marks an existing error as bad input.
func asUsage(err error) error {
	if err == nil {
		return nil
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return err
	}
	return &usageError{err}
}

// isCobraUsageError recognises cobra's and pflag's own parse errors, which
// are plain errors.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown flag", "unknown shorthand flag", "unknown command", "invalid argument", "flag needs an argument", "accepts ", "requires at least", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "bwsim",
		Short: "simulate and profile memory-bandwidth trade-offs of sparse attention",
		Long: `bwsim runs real dense and sparse (SparQ, ...) attention decode kernels on the
host CPU, records exactly which bytes of which tensor each stage moves, and
prices those bytes on models of A100, H100, H200, Graphcore IPU and host
memory hierarchies.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(newRunCmd())
	for _, add := range extraCommands {
		root.AddCommand(add())
	}
	return root
}

// extraCommands lets each command file register its constructor without
// editing root.go (devices, calibrate, sweep, ...).
var extraCommands []func() *cobra.Command
