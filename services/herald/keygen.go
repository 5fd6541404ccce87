package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/process"
)

const (
	keygenArgs    = "[-apps-file PATH [-if-missing]] [-host HOST] [-port PORT] [-scheme http|https]"
	keygenSummary = "generate an app id, key and secret; print the .env lines for Herald and Laravel, or write an apps file (0600)"
)

// keygen generates an app: a random id, key and secret. It prints the .env
// lines for Herald and Laravel, or writes an apps file (HERALD_APPS_FILE)
// and prints Laravel's lines once.
func keygen(args []string, stdout, stderr io.Writer) int {
	fl := process.NewFlagSet("herald keygen", keygenArgs, keygenSummary, stderr)
	appsFile := fl.String("apps-file", "", "write the app to this apps file (mode 0600) instead of printing Herald's lines; refused if it exists, unless -if-missing")
	ifMissing := fl.Bool("if-missing", false, "with -apps-file: keep an existing file and exit 0 without printing its secret again; "+
		"generate nothing either when REVERB_APP_* or another HERALD_APPS_FILE is set")
	host := fl.String("host", "localhost", "REVERB_HOST: where browsers and Laravel reach Herald")
	port := fl.Int("port", 8080, "REVERB_PORT")
	scheme := fl.String("scheme", "http", "REVERB_SCHEME: http or https")
	if code, ok := process.ParseFlags(fl, args); !ok {
		return code
	}
	if fl.NArg() > 0 || (*ifMissing && *appsFile == "") || (*scheme != "http" && *scheme != "https") {
		fl.Usage()
		return 2
	}
	if *ifMissing {
		if from := appFromEnv(*appsFile); from != "" {
			fmt.Fprintf(stdout, "herald keygen: the app comes from %s: nothing generated\n", from)
			return 0
		}
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

// appFromEnv names the settings that configure the app instead of the
// apps file at path, or "": REVERB_APP_ID, _KEY or _SECRET, or a
// HERALD_APPS_FILE other than path. The services would serve that app, so a
// generated one would go unused.
func appFromEnv(path string) string {
	var set []string
	for _, name := range []string{"REVERB_APP_ID", "REVERB_APP_KEY", "REVERB_APP_SECRET"} {
		if os.Getenv(name) != "" {
			set = append(set, name)
		}
	}
	if f := os.Getenv("HERALD_APPS_FILE"); f != "" && filepath.Clean(f) != filepath.Clean(path) {
		set = append(set, "HERALD_APPS_FILE="+f)
	}
	return strings.Join(set, ", ")
}
