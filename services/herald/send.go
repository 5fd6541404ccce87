package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/process"
	"github.com/herald-ws/herald/shared/signing"
)

const (
	sendArgs    = "[-app ID] [-url URL] [-timeout D] CHANNEL EVENT DATA"
	sendSummary = "publish one event through the HTTP API, signed with the configured app, as Laravel does; print the answer; exit 1 on an error"
)

// send publishes one event through the HTTP API, signed with the
// configured app's secret, and prints the answer.
func send(args []string, stdout, stderr io.Writer) int {
	fl := process.NewFlagSet("herald send", sendArgs, sendSummary, stderr)
	appID := fl.String("app", "", "the app id, when several are configured (default: the first)")
	base := fl.String("url", os.Getenv("HERALD_URL"), "Herald's base URL, path prefix included (default: HERALD_URL, else this host's REVERB_SERVER_PORT and REVERB_SERVER_PATH)")
	timeout := fl.Duration("timeout", 10*time.Second, "how long to wait for the answer")
	if code, ok := process.ParseFlags(fl, args); !ok {
		return code
	}
	if fl.NArg() != 3 {
		fl.Usage()
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "herald send: %v\n", err)
		return 1
	}
	cfg, err := process.Parse[config]()
	if err != nil {
		return fail(err)
	}
	app, err := sendingApp(&cfg, *appID)
	if err != nil {
		return fail(err)
	}
	if *base == "" {
		*base = "http://" + process.LocalAddr(cfg.Server.Addr()) + cfg.Process.Path
	}
	body, _ := json.Marshal(map[string]string{"name": fl.Arg(1), "channel": fl.Arg(0), "data": fl.Arg(2)})
	u, err := parseBase(*base)
	if err != nil {
		return fail(err)
	}
	path := u.Path + "/apps/" + app.ID + "/events"
	q := signing.SignRequest(http.MethodPost, path, nil, body, app.Key, app.Secret, time.Now())
	client := &http.Client{Timeout: *timeout}
	res, err := client.Post(u.Scheme+"://"+u.Host+path+"?"+q, "application/json", bytes.NewReader(body))
	if err != nil {
		return fail(err)
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	fmt.Fprintf(stdout, "%s %s\n", res.Status, strings.TrimSpace(string(answer)))
	if res.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

// sendingApp is the app herald itself would serve: the configured one (by
// id when asked), or the generated one kept in the data directory.
func sendingApp(cfg *config, id string) (*appconf.App, error) {
	e, err := appconf.ParseEnv()
	if err != nil {
		return nil, err
	}
	var apps []appconf.App
	if e.HasApp() {
		if apps, err = e.Apps(); err != nil {
			return nil, err
		}
	} else {
		a, err := readStoredApp(generatedAppPath(cfg))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w (nor a generated app in %s)", appconf.ErrNoApp, generatedAppPath(cfg))
		}
		if err != nil {
			return nil, err
		}
		apps = []appconf.App{a}
	}
	for i := range apps {
		if id == "" || apps[i].ID == id {
			return &apps[i], nil
		}
	}
	return nil, fmt.Errorf("no app %q among the configured apps", id)
}

// parseBase checks a base URL and drops a trailing slash from its path.
func parseBase(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("URL %q: want http(s)://host[:port][/prefix]", s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}
