// Command harmony is the desktop CLI of the engine: adapter information and
// a kernel self-check, model packing, and subject-driven generation.
//
// Each subcommand lives in its own file and registers itself in init.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"

	"harmony/engine/pipeline"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: harmony <command> [flags]\n\ncommands:")
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nrun 'harmony <command> -h' for a command's flags")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run runs the command line args and returns the exit status: 0, 1 for a
// failure, 2 for a bad command line (help asked for is no failure).
func run(ctx context.Context, args []string) int {
	if len(args) < 1 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) < 1 {
			usage(os.Stderr)
			return 2
		}
		usage(os.Stdout)
		return 0
	}
	c := commands[args[0]]
	if c == nil {
		fmt.Fprintf(os.Stderr, "harmony: unknown command %q\n\n", args[0])
		usage(os.Stderr)
		return 2
	}
	err := c.run(ctx, args[1:])
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	msg := err.Error()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) && !strings.Contains(msg, "interrupted") {
		// The stage that noticed the interrupt is no failure of its own
		// (a command that says what an interrupt kept says so itself).
		msg = "harmony " + c.name + ": interrupted, nothing written (" + msg + ")"
	}
	if !strings.HasPrefix(msg, "harmony") {
		msg = "harmony " + c.name + ": " + msg
	}
	fmt.Fprintln(os.Stderr, msg)
	var ue *usageError
	var oe *pipeline.OptionError
	if errors.As(err, &ue) || errors.As(err, &oe) {
		fmt.Fprintf(os.Stderr, "run 'harmony %s -h' for its flags\n", c.name)
		return 2
	}
	return 1
}

// errHelp is returned by a command whose usage was asked for (-h, --help)
// and has been printed.
var errHelp = flag.ErrHelp

// usageError is a bad command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(f string, a ...any) error { return &usageError{fmt.Sprintf(f, a...)} }

// errUsage is a bad command line whose details are printed already.
var errUsage = usageErrorf("harmony: bad arguments")

// parseFlags parses a command's flags. -h and --help print the usage to
// stdout and give errHelp; anything else the flag package refuses (an
// unknown flag, a bad value) gives a usageError with its message, without
// the whole usage text that the flag package would print.
func parseFlags(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(out)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(os.Stdout)
		if fs.Usage != nil {
			fs.Usage()
		} else {
			fmt.Fprintf(os.Stdout, "usage: harmony %s [flags]\n\nflags:\n", fs.Name())
			fs.PrintDefaults()
		}
		fs.SetOutput(out)
		return errHelp
	}
	return usageErrorf("harmony %s: %v", fs.Name(), err)
}
