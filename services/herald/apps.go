package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/herald-ws/herald/shared/appconf"
)

// resolveApps reads the configured apps. With none configured it uses the
// app kept in the data directory, generating it on the first start, so that
// `go run ./services/herald` works on a fresh machine and restarts keep the
// same credentials. The .env lines for Laravel, secret included, are printed
// only when the app is generated; later starts name the app in the log.
func resolveApps(cfg *config, out io.Writer, log *slog.Logger) (*appconf.Registry, error) {
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
	path := generatedAppPath(cfg)
	a, created, err := loadOrCreateApp(path)
	if err != nil {
		return nil, err
	}
	r, err := appconf.NewRegistry([]appconf.App{e.App(a)})
	if err != nil {
		return nil, fmt.Errorf("generated app: %w", err)
	}
	if created {
		fmt.Fprintf(out, "Generated an app, kept in %s (set REVERB_APP_ID, REVERB_APP_KEY and REVERB_APP_SECRET to choose your own).\n\nLaravel .env:\n", path)
		printEnv(out, a, laravelHost(cfg.Server.Host), cfg.Server.Port, "http", "  ")
		fmt.Fprintln(out)
	} else {
		log.Info("using the app kept in the data directory (its secret is in the file)", "file", path, "app_id", a.ID, "app_key", a.Key)
	}
	return r, nil
}

func generatedAppPath(cfg *config) string { return filepath.Join(cfg.DataDir, "app.json") }

// storedApp is the generated app as the data directory keeps it.
type storedApp struct {
	ID     string `json:"id"`
	Key    string `json:"key"`
	Secret string `json:"secret"`
}

// readStoredApp reads the generated app; fs.ErrNotExist when there is none.
func readStoredApp(path string) (appconf.App, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return appconf.App{}, err
	}
	var s storedApp
	if err := json.Unmarshal(b, &s); err != nil {
		return appconf.App{}, fmt.Errorf("reading generated app %s: %w (delete it to generate a new one)", path, err)
	}
	return appconf.App{ID: s.ID, Key: s.Key, Secret: s.Secret}, nil
}

func loadOrCreateApp(path string) (appconf.App, bool, error) {
	a, err := readStoredApp(path)
	if err == nil {
		return a, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return appconf.App{}, false, fmt.Errorf("reading generated app: %w", err)
	}
	a = appconf.Generate()
	b, _ := json.MarshalIndent(storedApp{a.ID, a.Key, a.Secret}, "", "  ")
	if err := writeNew(path, append(b, '\n')); err != nil {
		return appconf.App{}, false, fmt.Errorf("saving generated app: %w", err)
	}
	return a, true, nil
}

// writeNew creates path (and its directory) readable by its owner only; it
// fails with fs.ErrExist when the file exists.
func writeNew(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// laravelHost is the host browsers reach a server listening on host.
func laravelHost(host string) string {
	if host == "0.0.0.0" || host == "" || host == "::" {
		return "localhost"
	}
	return host
}

// printEnv prints the .env lines of app for Laravel, which Herald reads
// too (REVERB_APP_*), as `php artisan reverb:install` writes them.
func printEnv(w io.Writer, a appconf.App, host string, port int, scheme, indent string) {
	for _, l := range []string{
		"BROADCAST_CONNECTION=reverb",
		"REVERB_APP_ID=" + a.ID,
		"REVERB_APP_KEY=" + a.Key,
		"REVERB_APP_SECRET=" + a.Secret,
		"REVERB_HOST=" + host,
		fmt.Sprintf("REVERB_PORT=%d", port),
		"REVERB_SCHEME=" + scheme,
		"",
		`VITE_REVERB_APP_KEY="${REVERB_APP_KEY}"`,
		`VITE_REVERB_HOST="${REVERB_HOST}"`,
		`VITE_REVERB_PORT="${REVERB_PORT}"`,
		`VITE_REVERB_SCHEME="${REVERB_SCHEME}"`,
	} {
		if l == "" {
			fmt.Fprintln(w)
			continue
		}
		fmt.Fprintln(w, indent+l)
	}
}
