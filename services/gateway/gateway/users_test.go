package gateway_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/herald-ws/herald/shared/signing"
)

// signin sends pusher:signin for userData, signed for app.
func (c *client) signin(app *appconf.App, userData string) {
	c.t.Helper()
	c.send("pusher:signin", "", map[string]string{
		"auth":      signing.SigninAuth(app.Key, app.Secret, c.socketID, userData),
		"user_data": userData,
	})
}

func (c *client) expectSigninSuccess(userData string) {
	c.t.Helper()
	f := c.expect("pusher:signin_success")
	var d struct {
		UserData string `json:"user_data"`
	}
	if err := json.Unmarshal([]byte(f.str(c.t)), &d); err != nil {
		c.t.Fatalf("signin_success data %s: %v", f.raw, err)
	}
	if d.UserData != userData {
		c.t.Fatalf("signin_success user_data %q, want %q", d.UserData, userData)
	}
}

// signedIn connects to app on hs, signs in as userID and subscribes to the
// user's #server-to-user- channel without auth, as pusher-js does.
func signedIn(t *testing.T, app *appconf.App, hs *httptest.Server, userID string) *client {
	t.Helper()
	c := connect(t, hs, app.Key)
	ud := `{"id":"` + userID + `","name":"someone"}`
	c.signin(app, ud)
	c.expectSigninSuccess(ud)
	ch := protocol.ServerToUserPrefix + userID
	c.send("pusher:subscribe", "", map[string]string{"channel": ch, "auth": ""})
	c.expectSucceeded(ch)
	return c
}

// expectQuiet checks that nothing reached c before the answer to a ping.
func (c *client) expectQuiet() {
	c.t.Helper()
	if got := c.ping(); len(got) > 0 {
		c.t.Fatalf("unexpected frames: %v", got)
	}
}

func TestSignin(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-1")
	tests := []struct {
		name     string
		userData string
		auth     func(c *client, ud string) string
		code     int // 0 = signed in
	}{
		{"string id", `{"id":"42","name":"x"}`, nil, 0},
		{"number id", `{"id":42}`, nil, 0},
		{"bad signature", `{"id":"42"}`, func(*client, string) string { return app.Key + ":00" }, protocol.CodeUnauthorized},
		{"signed for another socket", `{"id":"42"}`, func(_ *client, ud string) string {
			return signing.SigninAuth(app.Key, app.Secret, "1.1", ud)
		}, protocol.CodeUnauthorized},
		{"signed by another app", `{"id":"42"}`, func(c *client, ud string) string {
			o := e.app("app-rate")
			return signing.SigninAuth(o.Key, o.Secret, c.socketID, ud)
		}, protocol.CodeUnauthorized},
		{"no id", `{"name":"x"}`, nil, protocol.CodeUnauthorized},
		{"empty id", `{"id":""}`, nil, protocol.CodeUnauthorized},
		{"id not a string or number", `{"id":true}`, nil, protocol.CodeUnauthorized},
		{"user_data not JSON", `nope`, nil, protocol.CodeUnauthorized},
		{"id over the limit", `{"id":"` + strings.Repeat("u", 129) + `"}`, nil, protocol.CodeUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connect(t, e.hs, app.Key)
			auth := signing.SigninAuth(app.Key, app.Secret, c.socketID, tt.userData)
			if tt.auth != nil {
				auth = tt.auth(c, tt.userData)
			}
			c.send("pusher:signin", "", map[string]string{"auth": auth, "user_data": tt.userData})
			if tt.code != 0 {
				c.expectClose(tt.code)
				return
			}
			c.expectSigninSuccess(tt.userData)
			c.ping()
		})
	}
	t.Run("malformed data keeps the connection", func(t *testing.T) {
		c := connect(t, e.hs, app.Key)
		c.sendRaw(`{"event":"pusher:signin","data":7}`)
		c.expectError(protocol.CodeGenericReconnect)
		c.ping()
	})
}

func TestServerToUserChannel(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-1")
	me := signedIn(t, app, e.hs, "me")
	anon := connect(t, e.hs, app.Key)
	tests := []struct {
		name    string
		c       *client
		channel string
	}{
		{"another user's channel", me, "#server-to-user-you"},
		{"a longer id with the user's as prefix", me, "#server-to-user-me2"},
		{"not signed in", anon, "#server-to-user-me"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.send("pusher:subscribe", "", map[string]string{"channel": tt.channel})
			f := tt.c.expect("pusher:subscription_error")
			var d struct {
				Type   string `json:"type"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal(f.Data, &d); err != nil || d.Type != "AuthError" || d.Status != 401 || f.Channel != tt.channel {
				t.Fatalf("got %s, want AuthError/401 for %s", f.raw, tt.channel)
			}
		})
	}
	t.Run("signing in as another user leaves the former user's channel", func(t *testing.T) {
		c := signedIn(t, app, e.hs, "first")
		ud := `{"id":"second"}`
		c.signin(app, ud)
		c.expectSigninSuccess(ud)
		c.send("pusher:subscribe", "", map[string]string{"channel": "#server-to-user-second"})
		c.expectSucceeded("#server-to-user-second")
		c.send("pusher:subscribe", "", map[string]string{"channel": "#server-to-user-first"})
		c.expect("pusher:subscription_error")
		e.publish(events.Event{AppID: app.ID, Channel: "#server-to-user-first", Name: "notice", Data: "old"})
		e.publish(events.Event{AppID: app.ID, Channel: "#server-to-user-second", Name: "notice", Data: "new"})
		c.expectEvent("notice", "#server-to-user-second", "new")
		c.expectQuiet()
	})
}

func TestSendToUserAcrossGateways(t *testing.T) {
	e := newEnv(t)
	_, hs2, _ := e.startGateway()
	app := e.app("app-1")
	tabs := []*client{signedIn(t, app, e.hs, "u1"), signedIn(t, app, hs2, "u1")}
	other := signedIn(t, app, hs2, "u2")
	anon := connect(t, e.hs, app.Key)
	e.publish(events.Event{AppID: app.ID, Channel: "#server-to-user-u1", Name: "notice", Data: `{"text":"hi"}`})
	for _, c := range tabs {
		c.expectEvent("notice", "#server-to-user-u1", `{"text":"hi"}`)
	}
	e.publish(events.Event{AppID: app.ID, Channel: "#server-to-user-u2", Name: "notice", Data: "yours"})
	other.expectEvent("notice", "#server-to-user-u2", "yours")
	for _, c := range tabs {
		c.expectQuiet()
	}
	anon.expectQuiet()
}

func TestTerminateAcrossGateways(t *testing.T) {
	e := newEnv(t)
	_, hs2, _ := e.startGateway()
	app := e.app("app-1")
	tabs := []*client{signedIn(t, app, e.hs, "gone"), signedIn(t, app, hs2, "gone")}
	stays := signedIn(t, app, e.hs, "stays")
	anon := connect(t, hs2, app.Key)
	// The same user id in another app is another user.
	otherApp := e.app("app-rate")
	elsewhere := signedIn(t, otherApp, hs2, "gone")

	if err := e.nc.Publish(names.UserTerminateSubject(app.ID), []byte("gone")); err != nil {
		t.Fatal(err)
	}
	for _, c := range tabs {
		c.expectClose(protocol.CodeUnauthorized)
	}
	stays.expectQuiet()
	anon.expectQuiet()
	elsewhere.expectQuiet()
}
