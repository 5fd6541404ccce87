package deploy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/signing"
)

// render returns src with each old string replaced, failing the test when
// one is not there: the deployment file must keep what the test relies on.
func render(t *testing.T, name string, src []byte, pairs ...string) []byte {
	t.Helper()
	s := string(src)
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("%s no longer contains %q", name, pairs[i])
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	return []byte(s)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSupervisorRunsHerald runs Debian's supervisord with the program block
// of deploy/supervisor/herald.conf and the minfds it documents, and nginx
// with deploy/nginx/herald.conf (TLS, Reverb's location /app) in front:
// Herald generates its app, inherits the file-descriptor limit, serves a
// WebSocket and the HTTP API through nginx over TLS, and stops cleanly
// through supervisorctl.
func TestSupervisorRunsHerald(t *testing.T) {
	supervisord := needTool(t, "supervisord", "supervisor")
	supervisorctl := needTool(t, "supervisorctl", "supervisor")
	bins := binaries(t)
	dir := t.TempDir()
	for _, d := range []string{"data", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	port := natstest.FreePort(t)
	src := repoFile(t, "deploy", "supervisor", "herald.conf")
	minfds := regexp.MustCompile(`(?m)^;\s*minfds=(\d+)$`).FindSubmatch(src)
	if minfds == nil {
		t.Fatal("deploy/supervisor/herald.conf no longer documents minfds")
	}
	// Paths and port moved into the test's folder; `user=herald` dropped, as
	// no such user exists here (supervisord runs as the test's user).
	program := render(t, "herald.conf", src,
		"command=/usr/local/bin/herald", "command="+filepath.Join(bins, "herald"),
		"/var/lib/herald", filepath.Join(dir, "data"),
		"/var/log/herald", filepath.Join(dir, "log"),
		`REVERB_SERVER_PORT="8080"`, fmt.Sprintf(`REVERB_SERVER_PORT="%d"`, port),
		"\nuser=herald\n", "\n",
	)
	if err := os.WriteFile(filepath.Join(dir, "herald.conf"), program, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "supervisord.conf")
	sock := filepath.Join(dir, "supervisor.sock")
	err := os.WriteFile(conf, fmt.Appendf(nil, `[unix_http_server]
file=%[1]s

[supervisord]
nodaemon=true
logfile=%[2]s/supervisord.log
pidfile=%[2]s/supervisord.pid
childlogdir=%[2]s/log
minfds=%[3]s

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%[1]s

[include]
files=%[2]s/herald.conf
`, sock, dir, minfds[1]), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	sup := startProc(t, exec.Command(supervisord, "-n", "-c", conf))
	defer func() {
		sup.stop(syscall.SIGTERM, 40*time.Second)
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "log", "herald.log"))
			t.Logf("supervisord:\n%s\nherald.log:\n%s", sup.out.String(), log)
		}
	}()
	ctl := func(args ...string) string {
		out, _ := exec.Command(supervisorctl, append([]string{"-c", conf}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out))
	}

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, "herald under supervisord to answer /up", 60*time.Second, func() error {
		select {
		case <-sup.done:
			return fmt.Errorf("supervisord exited: %v", sup.err)
		default:
		}
		res, err := http.Get(base + "/up")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		return nil
	})
	// RUNNING once it has stayed up for startsecs.
	waitFor(t, "supervisorctl status herald to say RUNNING", 30*time.Second, func() error {
		if st := ctl("status", "herald"); !strings.Contains(st, "RUNNING") {
			return fmt.Errorf("%s", st)
		}
		return nil
	})

	// The limit Supervisor was told to ensure reaches Herald.
	pid, err := strconv.Atoi(ctl("pid", "herald"))
	if err != nil {
		t.Fatalf("supervisorctl pid: %v", err)
	}
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Max open files\s+(\d+)`).FindSubmatch(limits)
	want, _ := strconv.Atoi(string(minfds[1]))
	if got, _ := strconv.Atoi(string(m[1])); m == nil || got < want {
		t.Errorf("herald's open-files limit %s, want at least minfds=%d", m[1], want)
	}

	// The app Herald generated, and the .env lines it logged for Laravel.
	var app struct{ ID, Key, Secret string }
	appJSON, err := os.ReadFile(filepath.Join(dir, "data", "app.json"))
	if err != nil {
		t.Fatalf("no generated app: %v", err)
	}
	if err := json.Unmarshal(appJSON, &app); err != nil {
		t.Fatal(err)
	}
	heraldLog, _ := os.ReadFile(filepath.Join(dir, "log", "herald.log"))
	if !bytes.Contains(heraldLog, []byte("REVERB_APP_KEY="+app.Key)) {
		t.Errorf("the log does not show the generated app's .env lines")
	}

	if nginx := nginxPath(); nginx != "" || os.Getenv("CI") != "" {
		if nginx == "" {
			t.Fatal("nginx is not installed (.ci/run installs it)")
		}
		t.Run("nginx TLS in front", func(t *testing.T) {
			throughNginxTLS(t, nginx, port, app.ID, app.Key, app.Secret)
		})
	}

	// A stop through Supervisor is Herald's graceful stop.
	if out := ctl("stop", "herald"); !strings.Contains(out, "stopped") {
		t.Errorf("supervisorctl stop herald: %s", out)
	}
	if st := ctl("status", "herald"); !strings.Contains(st, "STOPPED") {
		t.Errorf("after stop: %s", st)
	}
}

func nginxPath() string {
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, _ := exec.LookPath("nginx")
	return p
}

// throughNginxTLS runs nginx with deploy/nginx/herald.conf (its listen
// ports, certificate and upstream port moved to the test's) and checks a
// WebSocket and a signed event through it over TLS.
func throughNginxTLS(t *testing.T, nginx string, heraldPort int, appID, key, secret string) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSignedCert(t, dir, "ws.example.com")
	httpPort, httpsPort := natstest.FreePort(t), natstest.FreePort(t)
	src := repoFile(t, "deploy", "nginx", "herald.conf")
	site := render(t, "herald.conf", src,
		"    listen [::]:80;\n", "",
		"    listen [::]:443 ssl;\n", "",
		"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", httpPort),
		"listen 443 ssl;", fmt.Sprintf("listen 127.0.0.1:%d ssl;", httpsPort),
		"/etc/letsencrypt/live/ws.example.com/fullchain.pem", certFile,
		"/etc/letsencrypt/live/ws.example.com/privkey.pem", keyFile,
		"http://127.0.0.1:8080", fmt.Sprintf("http://127.0.0.1:%d", heraldPort),
	)
	stop := runNginx(t, nginx, dir, site)
	defer stop()

	tlsConf := &tls.Config{RootCAs: pool, ServerName: "ws.example.com"}
	d := websocket.Dialer{TLSClientConfig: tlsConf, HandshakeTimeout: 5 * time.Second}
	var ws *websocket.Conn
	waitFor(t, "nginx to proxy the WebSocket", 20*time.Second, func() error {
		c, _, err := d.Dial(fmt.Sprintf("wss://127.0.0.1:%d/app/%s?protocol=7&client=go&version=1", httpsPort, key), nil)
		ws = c
		return err
	})
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	readEvent := func(want string) map[string]any {
		for {
			var f map[string]any
			if err := ws.ReadJSON(&f); err != nil {
				t.Fatalf("waiting for %s: %v", want, err)
			}
			if f["event"] == want {
				return f
			}
		}
	}
	readEvent("pusher:connection_established")
	if err := ws.WriteJSON(map[string]any{"event": "pusher:subscribe", "data": map[string]string{"channel": "orders"}}); err != nil {
		t.Fatal(err)
	}
	readEvent("pusher_internal:subscription_succeeded")

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}
	body := []byte(`{"name":"shipped","channels":["orders"],"data":"{\"id\":7}"}`)
	path := "/apps/" + appID + "/events"
	sum := md5.Sum(body)
	q := url.Values{
		"auth_key":       {key},
		"auth_timestamp": {strconv.FormatInt(time.Now().Unix(), 10)},
		"auth_version":   {"1.0"},
		"body_md5":       {hex.EncodeToString(sum[:])},
	}
	q.Set("auth_signature", signing.HMAC(secret, signing.StringToSign("POST", path, q)))
	res, err := client.Post(fmt.Sprintf("https://127.0.0.1:%d%s?%s", httpsPort, path, q.Encode()), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("POST %s through nginx: %d %s", path, res.StatusCode, answer)
	}
	if ev := readEvent("shipped"); ev["data"] != `{"id":7}` {
		t.Errorf("event data %v", ev["data"])
	}

	// Plain HTTP is sent to HTTPS.
	noRedirect := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err = noRedirect.Get(fmt.Sprintf("http://127.0.0.1:%d/app/x", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMovedPermanently || !strings.HasPrefix(res.Header.Get("Location"), "https://") {
		t.Errorf("plain HTTP: %d to %q, want 301 to https", res.StatusCode, res.Header.Get("Location"))
	}
}

// runNginx runs Debian's nginx in the foreground with site in an http block
// and every path of its own in dir; the returned func stops it.
func runNginx(t *testing.T, nginx, dir string, site []byte) func() {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "site.conf"), site, 0o644); err != nil {
		t.Fatal(err)
	}
	main := fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 1024; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/site.conf;
}
`, dir)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, exec.Command(nginx, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf")))
	return func() {
		p.stop(syscall.SIGQUIT, 10*time.Second)
		if t.Failed() {
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx:\n%s\n%s", p.out.String(), errLog)
		}
	}
}

// proc is a program the test runs in the foreground, its output in out.
type proc struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{} // closed once it has exited
	err  error         // how it exited, once done is closed
}

func startProc(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p
}

// stop sends sig and kills the process if it is still running after grace;
// it returns once the process has exited.
func (p *proc) stop(sig os.Signal, grace time.Duration) {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// selfSignedCert writes a certificate for host and its key into dir.
func selfSignedCert(t *testing.T, dir, host string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
