package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/herald-ws/herald/shared/appconf"
)

// resolveApps reads the configured apps. With none configured it uses the
// app kept in the data directory, generating it on the first start, so that
// `go run ./services/herald` works on a fresh machine and restarts keep the
// same credentials. It prints the .env lines for Herald and for Laravel.
func resolveApps(cfg config, out io.Writer) (*appconf.Registry, error) {
	e, err := appconf.ParseEnv()
	if err != nil {
		return nil, err
	}
	if e.HasApp() {
		r, err := e.Registry()
		if err != nil {
			return nil, fmt.Errorf("app settings: %w", err)
		}
		return r, nil
	}
	a, created, err := loadOrCreateApp(filepath.Join(cfg.DataDir, "app.json"))
	if err != nil {
		return nil, err
	}
	r, err := appconf.NewRegistry([]appconf.App{e.App(a)})
	if err != nil {
		return nil, fmt.Errorf("generated app: %w", err)
	}
	printEnv(out, cfg, a, created)
	return r, nil
}

type storedApp struct {
	ID     string `json:"id"`
	Key    string `json:"key"`
	Secret string `json:"secret"`
}

func loadOrCreateApp(path string) (appconf.App, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		var s storedApp
		if err := json.Unmarshal(b, &s); err != nil {
			return appconf.App{}, false, fmt.Errorf("reading generated app %s: %w (delete it to generate a new one)", path, err)
		}
		return appconf.App{ID: s.ID, Key: s.Key, Secret: s.Secret}, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return appconf.App{}, false, fmt.Errorf("reading generated app: %w", err)
	}
	a := appconf.Generate()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return appconf.App{}, false, fmt.Errorf("creating data directory: %w", err)
	}
	b, _ = json.MarshalIndent(storedApp{a.ID, a.Key, a.Secret}, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return appconf.App{}, false, fmt.Errorf("saving generated app: %w", err)
	}
	return a, true, nil
}

func printEnv(w io.Writer, cfg config, a appconf.App, created bool) {
	verb := "Using"
	if created {
		verb = "Generated"
	}
	host := cfg.Host
	if host == "0.0.0.0" || host == "" || host == "::" {
		host = "localhost"
	}
	fmt.Fprintf(w, `%s the app kept in %s (set REVERB_APP_ID, REVERB_APP_KEY and REVERB_APP_SECRET to choose your own).

Laravel .env:
  BROADCAST_CONNECTION=reverb
  REVERB_APP_ID=%s
  REVERB_APP_KEY=%s
  REVERB_APP_SECRET=%s
  REVERB_HOST=%s
  REVERB_PORT=%d
  REVERB_SCHEME=http
  VITE_REVERB_APP_KEY="${REVERB_APP_KEY}"
  VITE_REVERB_HOST="${REVERB_HOST}"
  VITE_REVERB_PORT="${REVERB_PORT}"
  VITE_REVERB_SCHEME="${REVERB_SCHEME}"

`, verb, filepath.Join(cfg.DataDir, "app.json"), a.ID, a.Key, a.Secret, host, cfg.Port)
}
