package process

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"
)

// Command is a subcommand of a binary: `gateway health`, `herald keygen`.
type Command struct {
	Name    string
	Args    string // e.g. "CHANNEL EVENT DATA", for -h
	Summary string
	// Run gets the arguments after the command's name and returns the
	// exit code.
	Run func(args []string, stdout, stderr io.Writer) int
}

const healthArgs = "[-timeout D]"

const healthSummary = "GET this process's /ready (address from the same settings); exit 0 when it answers 200, else 1. For container healthchecks."

func (p Program[T]) commands() []Command {
	return append([]Command{
		{Name: "health", Args: healthArgs, Summary: healthSummary, Run: p.health},
		{Name: "version", Summary: "print the version (module version and VCS revision)", Run: p.version},
	}, p.Commands...)
}

func (p Program[T]) command(name string) (Command, bool) {
	switch name {
	case "-h", "-help", "--help", "help":
		return Command{}, true
	}
	for _, c := range p.commands() {
		if c.Name == name {
			return c, true
		}
	}
	return Command{}, false
}

func (p Program[T]) usage(w io.Writer) {
	fmt.Fprintf(w, "%s: %s\n\nUsage:\n  %s              serve (settings from the environment, see README.md)\n", p.Name, p.Summary, p.Name)
	for _, c := range p.commands() {
		fmt.Fprintf(w, "  %s %s\n", p.Name, strings.TrimSpace(c.Name+" "+c.Args))
		fmt.Fprintf(w, "      %s\n", c.Summary)
	}
	fmt.Fprintf(w, "\n%s COMMAND -h describes a command's flags.\n", p.Name)
}

// NewFlagSet is the flag set of a command: parse errors and -h print on
// stderr, -h as "Usage: <name> <args>", the summary, then the flags. name
// is the binary's and the command's: "herald keygen".
func NewFlagSet(name, args, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage:", strings.TrimSpace(name+" "+args))
		fmt.Fprintln(stderr, summary)
		fs.PrintDefaults()
	}
	return fs
}

// ParseFlags parses a command's flags. When it returns false the command
// ends with code: 0 after -h printed the usage, 2 for a flag error.
func ParseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		return 0, false
	}
	return 2, false
}

// health asks the local /ready.
func (p Program[T]) health(args []string, stdout, stderr io.Writer) int {
	fs := NewFlagSet(p.Name+" health", healthArgs, healthSummary, stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if code, ok := ParseFlags(fs, args); !ok {
		return code
	}
	cfg, err := Parse[T]()
	if err != nil {
		fmt.Fprintf(stderr, "%s health: %v\n", p.Name, err)
		return 1
	}
	url := "http://" + LocalAddr(p.Addr(&cfg)) + "/ready"
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "%s health: %v\n", p.Name, err)
		return 1
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "%s health: %v\n", p.Name, err)
		return 1
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "%s health: %s: %s %s\n", p.Name, url, res.Status, strings.TrimSpace(string(body)))
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", strings.TrimSpace(string(body)))
	return 0
}

// LocalAddr turns a listen address into one to reach it from the same
// host: an unspecified host (0.0.0.0, ::, "") becomes loopback.
func LocalAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func (p Program[T]) version(_ []string, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, p.Name+" "+Version())
	return 0
}

// Version describes the build: the main module's version, the VCS revision
// and time when built from a checkout, and the Go version.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown build)"
	}
	parts := []string{bi.Main.Version}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = " (modified)"
			}
		}
	}
	if rev != "" {
		parts = append(parts, "revision "+rev+dirty)
	}
	if at != "" {
		parts = append(parts, at)
	}
	parts = append(parts, bi.GoVersion)
	return strings.Join(parts, " ")
}
