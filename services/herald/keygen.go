package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"

	"github.com/herald-ws/herald/shared/appconf"
)

// keygen generates an app: a random id, key and secret. It prints the .env
// lines for Herald and Laravel, or writes an apps file (HERALD_APPS_FILE)
// and prints Laravel's lines once.
func keygen(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("herald keygen", flag.ContinueOnError)
	fl.SetOutput(stderr)
	appsFile := fl.String("apps-file", "", "write the app to this apps file (mode 0600) instead of printing Herald's lines; refused if it exists, unless -if-missing")
	ifMissing := fl.Bool("if-missing", false, "with -apps-file: keep an existing file and exit 0 without printing its secret again")
	host := fl.String("host", "localhost", "REVERB_HOST: where browsers and Laravel reach Herald")
	port := fl.Int("port", 8080, "REVERB_PORT")
	scheme := fl.String("scheme", "http", "REVERB_SCHEME: http or https")
	fl.Usage = func() {
		fmt.Fprintln(stderr, "Usage: herald keygen [-apps-file PATH [-if-missing]] [-host HOST] [-port PORT] [-scheme http|https]")
		fmt.Fprintln(stderr, "Generates an app id, key and secret and prints the .env lines for Herald and Laravel.")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fl.NArg() > 0 || (*ifMissing && *appsFile == "") || (*scheme != "http" && *scheme != "https") {
		fl.Usage()
		return 2
	}
	a := appconf.Generate()
	if *appsFile == "" {
		fmt.Fprintln(stdout, "# Herald and Laravel read the same REVERB_APP_* lines; append them to .env.")
		printEnv(stdout, a, *host, *port, *scheme, "")
		return 0
	}
	b, _ := json.MarshalIndent(struct {
		Apps []storedApp `json:"apps"`
	}{[]storedApp{{a.ID, a.Key, a.Secret}}}, "", "  ")
	err := writeNew(*appsFile, append(b, '\n'))
	switch {
	case errors.Is(err, fs.ErrExist) && *ifMissing:
		fmt.Fprintf(stderr, "herald keygen: %s exists: kept (its secret is not printed again)\n", *appsFile)
		return 0
	case errors.Is(err, fs.ErrExist):
		fmt.Fprintf(stderr, "herald keygen: %s exists: not overwritten (-if-missing keeps it without an error)\n", *appsFile)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "herald keygen: writing %s: %v\n", *appsFile, err)
		return 1
	}
	fmt.Fprintf(stdout, "# Wrote app %s to %s: give every Herald process HERALD_APPS_FILE=%s.\n# Laravel .env:\n", a.ID, *appsFile, *appsFile)
	printEnv(stdout, a, *host, *port, *scheme, "")
	return 0
}
