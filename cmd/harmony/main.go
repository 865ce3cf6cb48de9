// Command harmony is the desktop CLI of the engine: adapter information and
// a kernel self-check, model packing, and subject-driven generation.
//
// Each subcommand lives in its own file and registers itself in init.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

func usage() {
	fmt.Fprintln(os.Stderr, "usage: harmony <command> [flags]\n\ncommands:")
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(os.Stderr, "\nrun 'harmony <command> -h' for a command's flags")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	c := commands[os.Args[1]]
	if c == nil {
		fmt.Fprintf(os.Stderr, "harmony: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := c.run(ctx, os.Args[2:]); err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "harmony") {
			msg = "harmony " + c.name + ": " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		if err == errUsage {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// errUsage marks a bad command line (exit status 2); the flag package has
// already printed the details.
var errUsage = fmt.Errorf("harmony: bad arguments")
